"""The data as tensors on the target device, and the fast loader that serves them.

:class:`TensorLoader` keeps the whole data set as one normalized float tensor on the target
device and cuts batches out of it by index: no PIL image, no per-sample Python call.
:func:`get_loaders` builds the training and test loaders of every chapter. The files behind
them come from :func:`optim_lessons.data.files.prepare`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from optim_lessons.data.files import (
    TORCHVISION_CLASSES,
    DataUnavailableError,
    canonical_name,
    prepare,
)

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
