"""``python -m optim_lessons.data``: prepare the cache and print where the data is."""

from __future__ import annotations

import argparse
import sys

from optim_lessons.data.files import (
    DATA_ENV_VAR,
    DEFAULT_ROOT,
    TORCHVISION_CLASSES,
    DataUnavailableError,
    canonical_name,
    prepare,
    raw_folder,
)


def main(argv: list[str] | None = None) -> int:
    """Prepare the cache; print where the data is. Exit status 1 with the reason when it fails."""
    parser = argparse.ArgumentParser(
        prog="python -m optim_lessons.data",
        description="Prepare the data sets used by the book (unpack Debian's copy or download).",
    )
    parser.add_argument(
        "names", nargs="*", default=["fashion_mnist"], help="fashion_mnist (default) and/or mnist"
    )
    parser.add_argument(
        "--root", default=None, help=f"data folder (default: ${DATA_ENV_VAR} or {DEFAULT_ROOT})"
    )
    args = parser.parse_args(argv)
    status = 0
    for name in args.names:
        try:
            root_path = prepare(name, args.root)
        except (DataUnavailableError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
            continue
        print(
            f"{TORCHVISION_CLASSES[canonical_name(name)]}: ready in {raw_folder(name, root_path)}"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
