"""Transforms of the training data, applied to whole batches on the device.

- :class:`AugmentedLoader` wraps a loader and shifts and/or mirrors each batch at random;
- :func:`standardize_pixels` standardizes each pixel by its own mean and standard deviation
  over the training images.

Chapter 9's recipes (:mod:`optim_lessons.benchmarks.recipe`) use both.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from optim_lessons.data.loaders import NORMALIZATION, TensorLoader


class AugmentedLoader:
    """A training loader whose batches are randomly shifted and/or mirrored, batch by batch.

    - ``max_shift``: each image moves by up to this many pixels in each direction (the gap is
      filled with the background value, so nothing wraps around);
    - ``flip``: each image is mirrored left to right with probability one half. Fashion-MNIST's
      classes do not change in a mirror (a left shoe mirrored is a right shoe).

    The draws come from a generator of its own, rewound by :meth:`manual_seed` together with the
    wrapped loader, so runs repeat exactly.
    """

    def __init__(
        self,
        loader: TensorLoader,
        *,
        max_shift: int = 0,
        flip: bool = False,
        background: float | None = None,
        seed: int = 0,
    ) -> None:
        if max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {max_shift}")
        self.loader = loader
        self.max_shift = max_shift
        self.flip = flip
        mean, std = NORMALIZATION["fashion_mnist"]
        #: The value a black pixel has after normalization.
        self.background = (0.0 - mean) / std if background is None else background
        self.generator = torch.Generator()
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> AugmentedLoader:
        self.generator.manual_seed(seed + 1)
        self.loader.manual_seed(seed)
        return self

    @property
    def dataset_size(self) -> int:
        return self.loader.dataset_size

    @property
    def batch_size(self) -> int:
        return self.loader.batch_size

    def __len__(self) -> int:
        return len(self.loader)

    def augment(self, images: Tensor) -> Tensor:
        """A randomly shifted and/or mirrored copy of a batch ``[N, 1, H, W]``."""
        n, _, height, width = images.shape
        device = images.device
        if self.flip:
            mirror = (torch.rand(n, generator=self.generator) < 0.5).to(device)
            images = torch.where(mirror[:, None, None, None], images.flip(-1), images)
        if self.max_shift:
            s = self.max_shift
            padded = nn.functional.pad(images, (s, s, s, s), value=self.background)
            dy = torch.randint(0, 2 * s + 1, (n,), generator=self.generator).to(device)
            dx = torch.randint(0, 2 * s + 1, (n,), generator=self.generator).to(device)
            rows = (torch.arange(height, device=device)[None, :] + dy[:, None])[:, :, None]
            cols = (torch.arange(width, device=device)[None, :] + dx[:, None])[:, None, :]
            batch = torch.arange(n, device=device)[:, None, None]
            images = padded[batch, 0, rows, cols].unsqueeze(1)
        return images

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for images, labels in self.loader:
            yield self.augment(images), labels


def standardize_pixels(
    train_loader: TensorLoader, judge: TensorLoader, seed: int
) -> tuple[TensorLoader, TensorLoader]:
    """Both loaders with every pixel standardized by its mean and standard deviation over the
    training images (the judged images never enter the statistics)."""
    images = train_loader.images
    mean = images.mean(dim=0, keepdim=True)
    std = images.std(dim=0, keepdim=True).clamp_min(1e-2)  # some border pixels hardly vary

    def transform(loader: TensorLoader, shuffle: bool) -> TensorLoader:
        return TensorLoader(
            (loader.images - mean) / std, loader.labels, loader.batch_size, shuffle, seed
        )

    return transform(train_loader, True), transform(judge, False)
