"""Fashion-MNIST and MNIST files: found, unpacked or downloaded once, checked, cached.

Where the files come from, in this order:

1. the folder you name: the ``root`` argument, else the ``OPTIM_LESSONS_DATA`` environment
   variable, else ``~/.cache/optim_lessons``. If it already holds good files, nothing else runs;
2. Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``): its gzip
   bytes differ from upstream, so torchvision's checksum of the ``.gz`` fails, but the files
   inside are the originals, so they are unpacked into ``ROOT/FashionMNIST/raw/``;
3. torchvision's own download, when the machine is online.

When none works, :class:`DataUnavailableError` names the three ways out.

No file is ever written in place: each is written under a temporary name of its own in the
same folder, checked (idx magic number, item count, image size, exact byte length, and for the
labels, every label in 0..9) and only then renamed with :func:`os.replace`, which is atomic. A
truncated or corrupt file found in the cache fails the same check and is rebuilt. Temporary
files and download folders left behind by a process that was killed are removed by the next
call of :func:`prepare`.

Run ``python -m optim_lessons.data`` to prepare the cache (``make data`` does).
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optim_lessons._files import atomic_writer, owner_tag, remove_stale, temporary_prefix

#: The environment variable that names the data folder.
DATA_ENV_VAR = "OPTIM_LESSONS_DATA"

#: The folder used when neither ``root`` nor ``OPTIM_LESSONS_DATA`` is given.
DEFAULT_ROOT = Path.home() / ".cache" / "optim_lessons"

#: Where Debian's ``dataset-fashion-mnist`` package puts its files. A module constant, so that a
#: test can point it at an empty folder. MNIST has no such package.
DEBIAN_DIRS: dict[str, Path | None] = {
    "fashion_mnist": Path("/usr/share/datasets/fashion-mnist"),
    "mnist": None,
}

#: The Debian package that provides each data set, for the error message.
DEBIAN_PACKAGES: dict[str, str | None] = {"fashion_mnist": "dataset-fashion-mnist", "mnist": None}

#: torchvision's class name for each data set; it is also the folder name under ``ROOT``.
TORCHVISION_CLASSES = {"fashion_mnist": "FashionMNIST", "mnist": "MNIST"}

IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE
_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
NUM_CLASSES = 10
#: The prefix of the private folders a download is staged in (under ``ROOT/<Dataset>/``).
_STAGING_PREFIX = ".download-"


@dataclass(frozen=True)
class IdxFile:
    """One of the four files of an MNIST-style data set, with what it must contain."""

    name: str
    count: int
    is_images: bool

    @property
    def header_bytes(self) -> int:
        # magic + count, then rows + cols for images
        return 16 if self.is_images else 8

    @property
    def expected_bytes(self) -> int:
        return self.header_bytes + self.count * (PIXELS if self.is_images else 1)


#: The same four file names for both data sets.
IDX_FILES: tuple[IdxFile, ...] = (
    IdxFile("train-images-idx3-ubyte", 60_000, True),
    IdxFile("train-labels-idx1-ubyte", 60_000, False),
    IdxFile("t10k-images-idx3-ubyte", 10_000, True),
    IdxFile("t10k-labels-idx1-ubyte", 10_000, False),
)


class DataUnavailableError(RuntimeError):
    """The data set could not be found, unpacked or downloaded."""


def canonical_name(name: str) -> str:
    """``"fashion_mnist"`` or ``"mnist"`` for any common spelling (``"FashionMNIST"``, ...)."""
    key = name.lower().replace("-", "").replace("_", "").replace(" ", "")
    for canonical in TORCHVISION_CLASSES:
        if key == canonical.replace("_", ""):
            return canonical
    raise ValueError(f"Unknown data set {name!r}; choose one of {sorted(TORCHVISION_CLASSES)}")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$OPTIM_LESSONS_DATA``, else the default cache."""
    if root is not None:
        return Path(root).expanduser()
    from_env = os.environ.get(DATA_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    return DEFAULT_ROOT


def raw_folder(name: str = "fashion_mnist", root: str | os.PathLike | None = None) -> Path:
    """The folder where torchvision looks for the unpacked idx files."""
    return data_root(root) / TORCHVISION_CLASSES[canonical_name(name)] / "raw"


# ----------------------------------------------------------------------------------- checking


def idx_problem(path: Path, spec: IdxFile) -> str | None:
    """Why ``path`` is not a good copy of ``spec`` (``None`` when it is)."""
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != spec.expected_bytes:
        return f"{size} bytes, expected {spec.expected_bytes} (truncated or not an idx file)"
    try:
        with open(path, "rb") as f:
            header = f.read(spec.header_bytes)
            # a label file is small (60,000 bytes at most): read every label
            labels = b"" if spec.is_images else f.read()
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    magic = int.from_bytes(header[0:4], "big")
    count = int.from_bytes(header[4:8], "big")
    expected_magic = _IMAGES_MAGIC if spec.is_images else _LABELS_MAGIC
    if magic != expected_magic:
        return f"magic number {magic:#010x}, expected {expected_magic:#010x}"
    if count != spec.count:
        return f"header says {count} items, expected {spec.count}"
    if spec.is_images:
        rows = int.from_bytes(header[8:12], "big")
        cols = int.from_bytes(header[12:16], "big")
        if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
            return f"images of {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE}"
    elif labels and max(labels) >= NUM_CLASSES:
        return f"labels outside 0..{NUM_CLASSES - 1} (the largest is {max(labels)})"
    return None


def cache_problems(
    name: str = "fashion_mnist", root: str | os.PathLike | None = None
) -> dict[str, str]:
    """File name -> problem, for every file of the data set that is missing or bad."""
    folder = raw_folder(name, root)
    problems = {}
    for spec in IDX_FILES:
        problem = idx_problem(folder / spec.name, spec)
        if problem is not None:
            problems[spec.name] = problem
    return problems


# ----------------------------------------------------------------------------------- filling


def _install_checked(write: Callable[[Any], None], destination: Path, spec: IdxFile) -> None:
    """Write a file through ``write(file_object)`` to a temporary name, check it, rename it.

    If anything fails, the temporary file is removed and ``destination`` is left untouched.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(destination) as (out, temporary):
        write(out)
        out.flush()
        problem = idx_problem(temporary, spec)
        if problem is not None:
            raise DataUnavailableError(f"{destination.name}: {problem}")


def _unpack_gzip(source: Path, destination: Path, spec: IdxFile) -> None:
    def write(out: Any) -> None:
        with gzip.open(source, "rb") as compressed:
            shutil.copyfileobj(compressed, out, length=1 << 20)

    _install_checked(write, destination, spec)


def _copy_file(source: Path, destination: Path, spec: IdxFile) -> None:
    def write(out: Any) -> None:
        with open(source, "rb") as f:
            shutil.copyfileobj(f, out, length=1 << 20)

    _install_checked(write, destination, spec)


def _fill_from_debian(name: str, folder: Path, missing: list[IdxFile]) -> str | None:
    """Unpack what Debian's package provides; return why it could not, or ``None``."""
    debian_dir = DEBIAN_DIRS.get(name)
    if debian_dir is None:
        return "no Debian package provides this data set"
    reasons = []
    for spec in missing:
        source = Path(debian_dir) / f"{spec.name}.gz"
        if not source.is_file():
            reasons.append(f"{source} not found")
            continue
        try:
            _unpack_gzip(source, folder / spec.name, spec)
        except (OSError, EOFError, zlib.error, DataUnavailableError) as error:
            # zlib.error: a damaged archive whose gzip header still reads fine
            reasons.append(f"{source}: {type(error).__name__}: {error}")
    return "; ".join(reasons) or None


def _torchvision_download(name: str, destination_root: Path) -> None:
    """Let torchvision download and unpack the data set under ``destination_root``.

    Tests replace this function to simulate a machine with no network.
    """
    import torchvision

    dataset_class = getattr(torchvision.datasets, TORCHVISION_CLASSES[name])
    dataset_class(str(destination_root), train=True, download=True)


def _fill_from_download(name: str, folder: Path, missing: list[IdxFile]) -> str | None:
    """Download into a private temporary folder, then move the checked files into place."""
    staging: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(dir=folder.parent, prefix=f"{_STAGING_PREFIX}{owner_tag()}.")
        )
        _torchvision_download(name, staging)
        downloaded = staging / TORCHVISION_CLASSES[name] / "raw"
        for spec in missing:
            _copy_file(downloaded / spec.name, folder / spec.name, spec)
    except Exception as error:  # any failure (no network, bad mirror, bad file) means: not this way
        return f"{type(error).__name__}: {error}".strip()
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return None


def _remove_leftovers(folder: Path) -> None:
    """Remove the temporary files and staging folders of killed runs (see ``_files``)."""
    for spec in IDX_FILES:
        remove_stale(folder, temporary_prefix(folder / spec.name))
    remove_stale(folder.parent, _STAGING_PREFIX)


def _unavailable_message(name: str, root: Path, attempts: list[str]) -> str:
    package = DEBIAN_PACKAGES.get(name)
    folder = root / TORCHVISION_CLASSES[name] / "raw"
    lines = [
        f"{TORCHVISION_CLASSES[name]} is not available: no good copy in {folder}.",
        "What was tried:",
        *[f"  - {attempt}" for attempt in attempts],
        "Three ways out:",
        f"  1. point {DATA_ENV_VAR} (or the root= argument) at a folder that holds "
        f"{TORCHVISION_CLASSES[name]}/raw/ with the four unpacked idx files;",
    ]
    if package:
        lines.append(
            f"  2. install Debian's copy: apt-get install {package} (files in {DEBIAN_DIRS[name]});"
        )
    else:
        lines.append("  2. (no Debian package provides this data set; use 1 or 3);")
    lines.append("  3. go online, so that torchvision can download it.")
    if folder.is_dir() and not os.access(folder, os.W_OK):
        lines.append(
            f"Note: {folder} is not writable by this user, so no good file could be put there: "
            f"make it writable, or point {DATA_ENV_VAR} (or root=) at a folder you can write to."
        )
    return "\n".join(lines)


def prepare(name: str = "fashion_mnist", root: str | os.PathLike | None = None) -> Path:
    """Make sure the four idx files are in ``ROOT/<Dataset>/raw/`` and good; return ``ROOT``.

    Raises :class:`DataUnavailableError` when neither Debian's files nor a download can fill the
    gaps. Whatever happens, no partial file is left where a good one is expected.
    """
    name = canonical_name(name)
    root_path = data_root(root)
    folder = raw_folder(name, root_path)
    _remove_leftovers(folder)
    problems = cache_problems(name, root_path)
    if not problems:
        return root_path
    attempts = [f"cache: {file}: {problem}" for file, problem in problems.items()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataUnavailableError(
            _unavailable_message(name, root_path, [*attempts, f"cannot create {folder}: {error}"])
        ) from error

    for source, fill in (("Debian", _fill_from_debian), ("download", _fill_from_download)):
        missing = [spec for spec in IDX_FILES if spec.name in cache_problems(name, root_path)]
        if not missing:
            break
        try:
            reason = fill(name, folder, missing)
        except Exception as error:  # whatever went wrong, the message below names the ways out
            reason = f"{type(error).__name__}: {error}"
        if reason:
            attempts.append(f"{source}: {reason}")

    remaining = cache_problems(name, root_path)
    if remaining:
        raise DataUnavailableError(_unavailable_message(name, root_path, attempts))
    return root_path
