"""Save a training run and resume it exactly where it stopped.

A run is more than its weights. To continue it as if it had never stopped you need:

- the model's ``state_dict`` (parameters and buffers);
- the optimizer's ``state_dict`` (per-parameter state such as momentum buffers or Adam's
  moments and step counts, and the hyperparameters of every param group, including the
  current ``lr``);
- the scheduler's ``state_dict`` (how many times it has stepped);
- every random number generator that decides something later on: torch's CPU generator,
  each CUDA device's generator, Python's :mod:`random`, NumPy's global generator when NumPy
  is installed, and the generator that shuffles the data loader.

:func:`save_checkpoint` writes all of these in one file with :func:`torch.save`;
:func:`load_checkpoint` puts them back. Everything saved is plain tensors, numbers, strings,
lists and dicts, so the file loads with ``torch.load(..., weights_only=True)``, the safe mode
that refuses to run arbitrary pickled code.

Save between epochs. A loader draws the whole shuffling order of a pass when the pass starts,
so the generator state saved in the middle of a pass already points to the next pass: a run
resumed there would see a different order for the rest of the interrupted pass.

The order of loading matters for the scheduler: creating a scheduler writes ``group["lr"]``,
so create it *before* calling ``optimizer.load_state_dict`` (as :func:`load_checkpoint`
assumes: you pass it objects that already exist).
"""

from __future__ import annotations

import os
import random
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

#: Bumped when the layout of the file changes.
CHECKPOINT_VERSION = 1


def _numpy_state() -> dict[str, Any] | None:
    try:
        import numpy
    except ImportError:  # NumPy is optional: torch runs without it
        return None
    name, keys, position, has_gauss, cached_gaussian = numpy.random.get_state()
    return {
        "name": name,
        "keys": torch.from_numpy(keys.astype("int64")),
        "position": int(position),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached_gaussian),
    }


def _set_numpy_state(state: dict[str, Any] | None) -> None:
    if state is None:
        return
    import numpy

    keys = state["keys"].numpy().astype("uint32")
    numpy.random.set_state(
        (state["name"], keys, state["position"], state["has_gauss"], state["cached_gaussian"])
    )


def _python_state_to_lists(state: tuple) -> list:
    version, internal, gauss_next = state
    return [version, list(internal), gauss_next]


def _python_state_from_lists(state: list) -> tuple:
    version, internal, gauss_next = state
    return (version, tuple(internal), gauss_next)


def rng_state(loader: Any = None) -> dict[str, Any]:
    """Every random generator a training run draws from, as a dict that torch.save can store.

    ``loader``: an object with a ``generator`` attribute (the book's ``TensorLoader``, or a
    ``DataLoader`` built with ``generator=...``), whose shuffling state is saved too.
    """
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": _python_state_to_lists(random.getstate()),
        "numpy": _numpy_state(),
        "loader": None,
    }
    generator = getattr(loader, "generator", None)
    if generator is not None:
        state["loader"] = generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], loader: Any = None) -> None:
    """Restore what :func:`rng_state` saved (the loader's generator only when ``loader`` is given).

    CUDA generators are restored only when this machine has as many devices as the saving one
    had; a checkpoint saved on a GPU machine still resumes on a CPU-only one, where no CUDA
    generator is used.
    """
    torch.set_rng_state(state["torch"].cpu())
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda_states):
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
    random.setstate(_python_state_from_lists(state["python"]))
    _set_numpy_state(state.get("numpy"))
    if loader is not None and state.get("loader") is not None:
        generator = getattr(loader, "generator", None)
        if generator is None:
            raise ValueError(
                "the checkpoint holds a loader's shuffling state, but this loader has no generator"
            )
        generator.set_state(state["loader"].cpu())


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: Optimizer,
    scheduler: Any = None,
    loader: Any = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write model, optimizer, scheduler, random state and ``extra`` (e.g. the epoch) to ``path``.

    The file is written under a temporary name and renamed into place, so a run killed while
    saving leaves the previous checkpoint intact.
    """
    checkpoint = {
        "version": CHECKPOINT_VERSION,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_state(loader),
        "extra": dict(extra or {}),
    }
    temporary = f"{os.fspath(path)}.partial"
    torch.save(checkpoint, temporary)
    os.replace(temporary, path)


def load_checkpoint(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: Optimizer,
    scheduler: Any = None,
    loader: Any = None,
    map_location: str | torch.device | None = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Load a file written by :func:`save_checkpoint` into existing objects; return its ``extra``.

    Build the model (on its final device), the optimizer over its parameters and the scheduler
    first, then call this. ``optimizer.load_state_dict`` moves every state tensor to the device
    and dtype of the parameter it belongs to, so a checkpoint saved on a GPU resumes on a CPU and
    back. ``map_location`` is passed to :func:`torch.load` (``"cpu"`` reads a GPU checkpoint on a
    machine without one).
    """
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if checkpoint.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path}: checkpoint version {checkpoint.get('version')}, expected {CHECKPOINT_VERSION}"
        )
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    if scheduler is not None:
        if checkpoint["scheduler"] is None:
            raise ValueError(f"{path} holds no scheduler state, but a scheduler was given")
        scheduler.load_state_dict(checkpoint["scheduler"])
    if restore_rng:
        set_rng_state(checkpoint["rng"], loader)
    return checkpoint["extra"]


def largest_difference(
    first: nn.Module | dict[str, torch.Tensor], second: nn.Module | dict[str, torch.Tensor]
) -> float:
    """The largest absolute difference between two models' (or state dicts') matching tensors.

    0.0 means bit-identical. Tensors are compared on the CPU in float64, so models on different
    devices can be compared.
    """
    first_state = first.state_dict() if isinstance(first, nn.Module) else first
    second_state = second.state_dict() if isinstance(second, nn.Module) else second
    if first_state.keys() != second_state.keys():
        raise ValueError(f"different tensors: {sorted(first_state)} vs {sorted(second_state)}")
    gap = 0.0
    for name, tensor in first_state.items():
        other = second_state[name]
        if tensor.shape != other.shape:
            raise ValueError(f"{name}: shape {tuple(tensor.shape)} vs {tuple(other.shape)}")
        if tensor.numel():
            difference = (
                (tensor.detach().cpu().double() - other.detach().cpu().double()).abs().max()
            )
            gap = max(gap, float(difference))
    return gap
