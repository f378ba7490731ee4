"""Execute notebooks top to bottom, each in a fresh kernel of a given Python, from a given folder.

``make test-compat`` runs every notebook on the oldest torch the package declares, and
``make test-colab`` runs them as Colab would (see the Makefile). Both ask one thing of each
notebook: that every cell runs without an error. Outputs are not compared (``make test`` does
that, on the pinned torch). Each executed copy is written to ``--workdir`` for inspection, and
each notebook's time is printed.

    python tests/run_notebooks.py --python VENV/bin/python --workdir /tmp/run notebooks/*.ipynb

The kernel runs ``--python`` (which needs only ipykernel), started in ``--workdir``; this
script itself needs nbclient, so it can drive a venv that has no notebook tools.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

KERNEL_NAME = "notebook-run"


def write_kernelspec(folder: Path, python: Path) -> None:
    """A kernel spec named :data:`KERNEL_NAME` that starts ``python -m ipykernel_launcher``."""
    spec_dir = folder / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({python})",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")


def run(path: Path, workdir: Path, timeout: int) -> tuple[bool, float, str]:
    """Execute ``path`` in ``workdir``; return (ok, seconds, first lines of the error)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(workdir)}},
    )
    start = time.perf_counter()
    ok, error = True, ""
    try:
        client.execute()
    except CellExecutionError as failure:
        ok, error = False, "\n".join(str(failure).strip().splitlines()[-12:])
    finally:
        nbformat.write(notebook, workdir / path.name)
    return ok, time.perf_counter() - start, error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--python", type=Path, required=True, help="the kernel's interpreter")
    parser.add_argument("--workdir", type=Path, required=True, help="where kernels start")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as specs:
        write_kernelspec(Path(specs), args.python.absolute())
        os.environ["JUPYTER_PATH"] = specs  # the spec is found there first
        failed, total = [], 0.0
        for path in args.notebooks:
            ok, seconds, error = run(path.resolve(), args.workdir.resolve(), args.timeout)
            total += seconds
            print(f"{path.name:<44} {'ok' if ok else 'FAILED':<7} {seconds:6.1f} s", flush=True)
            if not ok:
                failed.append(path.name)
                print("    " + error.replace("\n", "\n    "), flush=True)
    print(f"{len(args.notebooks) - len(failed)} of {len(args.notebooks)} notebooks ran "
          f"top to bottom in {total:.0f} s; executed copies in {args.workdir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
