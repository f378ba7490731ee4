"""Fashion-MNIST and MNIST, prepared once and served fast.

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

The fast path, :class:`TensorLoader`, keeps the whole data set as one normalized float tensor on
the target device and cuts batches out of it by index: no PIL image, no per-sample Python call.

Run ``python -m optim_lessons.data`` to prepare the cache (``make data`` does).
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import shutil
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

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

#: Fashion-MNIST's ten classes, in label order.
CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Pixel mean and standard deviation over each training set (pixels scaled to [0, 1]).
NORMALIZATION: dict[str, tuple[float, float]] = {
    "fashion_mnist": (0.2860, 0.3530),
    "mnist": (0.1307, 0.3081),
}

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


# ----------------------------------------------------------------------------------- loading

_DEFAULT_TRANSFORM: Any = object()
_RAW_CACHE: dict[tuple[str, bool, str], tuple[Tensor, Tensor]] = {}


def torchvision_dataset(
    name: str = "fashion_mnist",
    train: bool = True,
    root: str | os.PathLike | None = None,
    transform: Any = _DEFAULT_TRANSFORM,
) -> Any:
    """The ordinary torchvision data set (PIL image per sample), prepared from the cache.

    The default ``transform`` is ``ToTensor()`` then ``Normalize`` with the data set's mean and
    standard deviation, so that its samples equal those of :func:`load_tensors`. Pass
    ``transform=None`` for the raw PIL images.
    """
    import torchvision
    from torchvision import transforms

    name = canonical_name(name)
    root_path = prepare(name, root)
    if transform is _DEFAULT_TRANSFORM:
        mean, std = NORMALIZATION[name]
        transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((mean,), (std,))]
        )
    dataset_class = getattr(torchvision.datasets, TORCHVISION_CLASSES[name])
    return dataset_class(str(root_path), train=train, transform=transform, download=False)


def _raw_tensors(name: str, train: bool, root: str | os.PathLike | None) -> tuple[Tensor, Tensor]:
    """uint8 images ``[N, 28, 28]`` and int64 labels ``[N]``, read once per process."""
    root_path = prepare(name, root)
    key = (name, train, str(root_path.resolve()))
    if key not in _RAW_CACHE:
        dataset = torchvision_dataset(name, train=train, root=root_path, transform=None)
        images, labels = dataset.data, dataset.targets.long()
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 9):
            raise DataUnavailableError(
                f"{dataset.raw_folder}: labels outside 0..9; delete the folder"
            )
        _RAW_CACHE[key] = (images, labels)
    return _RAW_CACHE[key]


def load_tensors(
    name: str = "fashion_mnist",
    train: bool = True,
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> tuple[Tensor, Tensor]:
    """The whole split as two tensors on ``device``.

    Returns ``images`` of shape ``[N, 1, 28, 28]`` (float32, scaled to [0, 1] and then
    normalized with the data set's mean and standard deviation) and ``labels`` of shape ``[N]``
    (int64, 0..9). ``N`` is 60,000 for ``train=True`` and 10,000 otherwise.
    """
    name = canonical_name(name)
    images_uint8, labels = _raw_tensors(name, train, root)
    mean, std = NORMALIZATION[name]
    images = images_uint8.to(device=device).unsqueeze(1).float().div_(255.0)
    images.sub_(mean).div_(std)
    return images, labels.to(device=device)


def _check_positive_integer(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class TensorLoader:
    """Batches cut from two tensors that already sit on the target device.

    Each pass (epoch) draws a fresh permutation from its own seeded :class:`torch.Generator`, so
    the sequence of epochs depends only on ``seed``, never on the global random state. The last
    batch may be smaller (``drop_last`` is False, as in ``DataLoader``'s default).

    Iterating yields ``(inputs, labels)`` pairs, just like a ``DataLoader``.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        batch_size: int = 64,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        _check_positive_integer(batch_size, "batch_size")
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"images and labels must have the same length, got {images.shape[0]} images "
                f"and {labels.shape[0]} labels"
            )
        if images.device != labels.device:
            raise ValueError(f"images are on {images.device} but labels on {labels.device}")
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.generator = torch.Generator()
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> TensorLoader:
        """Restart the shuffling sequence, as if the loader had just been built with ``seed``."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(
                f"seed must be an integer (it fixes the loader's shuffling order), got {seed!r}"
            )
        self.seed = seed
        self.generator.manual_seed(seed)
        return self

    @property
    def dataset_size(self) -> int:
        """How many samples one pass visits."""
        return int(self.labels.shape[0])

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __len__(self) -> int:
        """Batches per pass: ``ceil(dataset_size / batch_size)``."""
        return math.ceil(self.dataset_size / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = self.dataset_size
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.device)
            for start in range(0, n, self.batch_size):
                index = order[start : start + self.batch_size]
                yield self.images[index], self.labels[index]
        else:
            for start in range(0, n, self.batch_size):
                yield (
                    self.images[start : start + self.batch_size],
                    self.labels[start : start + self.batch_size],
                )

    def __repr__(self) -> str:
        return (
            f"TensorLoader({self.dataset_size} samples, batch_size={self.batch_size}, "
            f"{len(self)} batches, shuffle={self.shuffle}, seed={self.seed}, device={self.device})"
        )


def _subset(
    images: Tensor, labels: Tensor, size: int | None, generator: torch.Generator, what: str
) -> tuple[Tensor, Tensor]:
    if size is None:
        return images, labels
    available = labels.shape[0]
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= available:
        raise ValueError(f"{what} must be an integer from 1 to {available}, got {size!r}")
    chosen = torch.randperm(available, generator=generator)[:size].to(images.device)
    return images[chosen], labels[chosen]


def get_loaders(
    name: str = "fashion_mnist",
    batch_size: int = 64,
    device: str | torch.device | None = None,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    test_batch_size: int = 1000,
) -> tuple[TensorLoader, TensorLoader]:
    """A shuffled training loader and an ordered test loader, both on ``device``.

    ``device=None`` picks CUDA when it is available, else the CPU. ``train_size`` and
    ``test_size`` keep a random subset (chosen by ``seed``) for quick experiments. The test
    loader uses larger batches (``test_batch_size``): evaluation needs no gradient, and the mean
    loss and accuracy do not depend on the batch size.
    """
    from optim_lessons.training import default_device

    # Checked before the data is read, each under its own name.
    _check_positive_integer(batch_size, "batch_size")
    _check_positive_integer(test_batch_size, "test_batch_size")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(
            f"seed must be an integer (it fixes the subsets and the order), got {seed!r}"
        )
    device = default_device() if device is None else torch.device(device)
    train_images, train_labels = load_tensors(name, train=True, root=root, device=device)
    test_images, test_labels = load_tensors(name, train=False, root=root, device=device)
    subset_generator = torch.Generator().manual_seed(seed)
    train_images, train_labels = _subset(
        train_images, train_labels, train_size, subset_generator, "train_size"
    )
    test_images, test_labels = _subset(
        test_images, test_labels, test_size, subset_generator, "test_size"
    )
    train_loader = TensorLoader(
        train_images, train_labels, batch_size=batch_size, shuffle=True, seed=seed
    )
    test_loader = TensorLoader(
        test_images, test_labels, batch_size=test_batch_size, shuffle=False, seed=seed
    )
    return train_loader, test_loader


# ----------------------------------------------------------------------------------- command line


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
