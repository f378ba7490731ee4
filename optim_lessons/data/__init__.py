"""Fashion-MNIST and MNIST, prepared once and served fast.

- :mod:`~optim_lessons.data.files`: where the idx files come from (the cache, Debian's package,
  torchvision's download), how each is checked, and :func:`prepare`;
- :mod:`~optim_lessons.data.loaders`: the data as normalized tensors on the device,
  :class:`TensorLoader` and :func:`get_loaders`;
- :mod:`~optim_lessons.data.transforms`: batch transforms for training (:class:`AugmentedLoader`,
  :func:`standardize_pixels`).

Run ``python -m optim_lessons.data`` to prepare the cache (``make data`` does).
"""

from optim_lessons.data.files import (
    DATA_ENV_VAR,
    DEBIAN_DIRS,
    DEBIAN_PACKAGES,
    DEFAULT_ROOT,
    IDX_FILES,
    IMAGE_SIDE,
    NUM_CLASSES,
    PIXELS,
    TORCHVISION_CLASSES,
    DataUnavailableError,
    IdxFile,
    cache_problems,
    canonical_name,
    data_root,
    idx_problem,
    prepare,
    raw_folder,
)
from optim_lessons.data.loaders import (
    CLASS_NAMES,
    NORMALIZATION,
    TensorLoader,
    get_loaders,
    load_tensors,
    torchvision_dataset,
)
from optim_lessons.data.transforms import AugmentedLoader, standardize_pixels

__all__ = [
    "CLASS_NAMES",
    "DATA_ENV_VAR",
    "DEBIAN_DIRS",
    "DEBIAN_PACKAGES",
    "DEFAULT_ROOT",
    "IDX_FILES",
    "IMAGE_SIDE",
    "NORMALIZATION",
    "NUM_CLASSES",
    "PIXELS",
    "TORCHVISION_CLASSES",
    "AugmentedLoader",
    "DataUnavailableError",
    "IdxFile",
    "TensorLoader",
    "cache_problems",
    "canonical_name",
    "data_root",
    "get_loaders",
    "idx_problem",
    "load_tensors",
    "prepare",
    "raw_folder",
    "standardize_pixels",
    "torchvision_dataset",
]
