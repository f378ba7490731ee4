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

import copy
import errno
import io
import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from optim_lessons._files import atomic_writer

#: Bumped when the layout of the file changes. Version 2 adds the optimizer's and the
#: scheduler's class names, so that a checkpoint refuses to load into another algorithm.
CHECKPOINT_VERSION = 2

#: The versions this release reads (version 1 files have no class names to check).
_READABLE_VERSIONS = (1, 2)

#: What every version has.
_REQUIRED_KEYS = {"version", "model", "optimizer", "scheduler", "rng", "extra"}


class CheckpointError(ValueError):
    """A checkpoint file cannot be read, or does not fit the objects it is loaded into.

    The message names the file, what is wrong and what to do. (The file system's own failures,
    a read-only folder say, keep their ``OSError`` type, with a message that says the same.)
    """


def _os_error(error: OSError, message: str) -> OSError:
    """An error of the same ``OSError`` type as ``error`` (``PermissionError``, ...), with
    ``message``."""
    if error.errno is None:
        return OSError(message)
    return type(error)(error.errno, message)


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


def _weights_only_problem(value: Any) -> str | None:
    """Why ``value`` would not come back from ``torch.load(weights_only=True)`` (``None``: it
    would). Checked by the real thing: a save and a weights-only load in memory."""
    buffer = io.BytesIO()
    try:
        torch.save(value, buffer)
    except Exception as error:  # pickling can fail in many ways: a lambda, an open file...
        return f"cannot be saved at all ({type(error).__name__}: {error})"
    buffer.seek(0)
    try:
        torch.load(buffer, weights_only=True)
    except Exception as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        reason = f"it holds a {found[1]}" if found else f"{type(error).__name__}"
        return f"would not load back with torch.load(weights_only=True): {reason}"
    return None


def _check_extra(extra: Any) -> dict[str, Any]:
    if extra is None:
        return {}
    if not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict (or None), got a {type(extra).__name__}")
    for key, value in extra.items():
        problem = _weights_only_problem({key: value})
        if problem is not None:
            raise TypeError(
                f"extra[{key!r}] (a {type(value).__name__}) {problem}. Keep extra to numbers, "
                "strings, booleans, None, tensors, and lists, tuples and dicts of them (store a "
                "datetime as its isoformat() string, say): load_checkpoint reads the file in the "
                "safe weights-only mode."
            )
    return dict(extra)


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

    The file is written under a temporary name of its own in the same folder, then renamed into
    place with :func:`os.replace`. A run killed while saving therefore leaves the previous
    checkpoint intact, and two processes saving the same path at once leave one complete file,
    never a mixture. Temporary files of killed savers are removed by the next save.

    ``extra`` is checked first: anything that a weights-only load would refuse (a ``datetime``,
    an object of your own class) raises ``TypeError`` here, not at resume time.
    """
    destination = Path(path)
    extra_checked = _check_extra(extra)
    checkpoint = {
        "version": CHECKPOINT_VERSION,
        "model": model.state_dict(),
        "optimizer_class": type(optimizer).__name__,
        "optimizer": optimizer.state_dict(),
        "scheduler_class": type(scheduler).__name__ if scheduler is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_state(loader),
        "extra": extra_checked,
    }
    try:
        if not destination.parent.is_dir():
            raise FileNotFoundError(
                errno.ENOENT,
                f"Cannot save the checkpoint {destination}: the folder {destination.parent} does "
                "not exist. Create it first (Path(...).mkdir(parents=True)), or choose another "
                "path.",
            )
        with atomic_writer(destination) as (out, _):
            torch.save(checkpoint, out)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise _os_error(
            error,
            f"Cannot save the checkpoint {destination}: {error.strerror or error}. Make sure the "
            f"folder {destination.parent} is writable and its disk has room, or choose another "
            "path; the previous checkpoint there, if any, is untouched.",
        ) from error


def _damaged_message(path: Path, error: BaseException) -> str:
    said = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return (
        f"{path} is not a readable checkpoint (torch.load said: {said}). The file is damaged or "
        "not a torch file: resume from another checkpoint or start afresh."
    )


def _read(path: Path, map_location: Any) -> dict[str, Any]:
    """The checkpoint's dict, or an error that says what the file is and what to do."""
    if not path.exists():
        raise FileNotFoundError(
            errno.ENOENT, f"No checkpoint at {path}. Check the path, or start the run afresh."
        )
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file: give the file's path.")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{path} is empty (0 bytes): it was not written by save_checkpoint, which never "
            "leaves a partial file behind. Delete it, and resume from another checkpoint or "
            "start afresh."
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if found is None:
            raise CheckpointError(_damaged_message(path, error)) from error
        raise CheckpointError(
            f"{path} holds a {found[1]}, which the safe weights-only load refuses, so "
            "save_checkpoint did not write it. If you wrote it yourself and trust it, read it "
            "with torch.load(path, weights_only=False)."
        ) from error
    except PermissionError as error:
        raise _os_error(
            error,
            f"Cannot read the checkpoint {path}: {error.strerror or error}. Make the file "
            "readable, or copy it somewhere you can read it.",
        ) from error
    except Exception as error:  # a truncated or overwritten zip archive, an old format...
        raise CheckpointError(_damaged_message(path, error)) from error
    if not isinstance(checkpoint, dict) or not _REQUIRED_KEYS <= set(checkpoint):
        if (
            isinstance(checkpoint, dict)
            and checkpoint
            and all(isinstance(value, torch.Tensor) for value in checkpoint.values())
        ):
            kind = "a model's bare state_dict"
            hint = "load it with model.load_state_dict(torch.load(path))"
        else:
            kind = f"a {type(checkpoint).__name__}"
            hint = "read it with torch.load(path) and use what it holds"
        raise CheckpointError(
            f"{path} holds {kind}, not a checkpoint written by save_checkpoint (which holds the "
            f"model, the optimizer and the random state): {hint}."
        )
    if checkpoint["version"] not in _READABLE_VERSIONS:
        raise CheckpointError(
            f"{path}: checkpoint version {checkpoint['version']!r}, but this release reads "
            f"versions {list(_READABLE_VERSIONS)}. Load it with the release that wrote it."
        )
    return checkpoint


def _model_problems(saved: Any, model: nn.Module) -> list[str]:
    if not isinstance(saved, dict):
        return [f"the model entry is a {type(saved).__name__}, not a state_dict"]
    current = model.state_dict()
    problems = []
    missing = [name for name in current if name not in saved]
    unexpected = [name for name in saved if name not in current]
    if missing:
        problems.append(f"the checkpoint lacks {', '.join(missing)}")
    if unexpected:
        problems.append(f"the model has no {', '.join(unexpected)}")
    for name, tensor in current.items():
        other = saved.get(name)
        if isinstance(other, torch.Tensor) and other.shape != tensor.shape:
            problems.append(
                f"{name} has shape {tuple(other.shape)} in the checkpoint and "
                f"{tuple(tensor.shape)} in the model"
            )
    return problems


def _optimizer_problems(checkpoint: dict[str, Any], optimizer: Optimizer) -> list[str]:
    saved_class = checkpoint.get("optimizer_class")
    given_class = type(optimizer).__name__
    if saved_class is not None and saved_class != given_class:
        return [
            f"it holds the state of a {saved_class} optimizer, but a {given_class} was given: "
            f"build a {saved_class} over the same parameters to resume (its hyperparameters "
            "come from the checkpoint), or pass optimizer=None to load the model alone"
        ]
    saved = checkpoint["optimizer"]
    if not isinstance(saved, dict) or "param_groups" not in saved or "state" not in saved:
        return ["its optimizer entry is not an optimizer state_dict"]
    saved_sizes = [len(group["params"]) for group in saved["param_groups"]]
    given_sizes = [len(group["params"]) for group in optimizer.param_groups]
    if saved_sizes != given_sizes:
        return [
            f"its optimizer has {len(saved_sizes)} parameter group(s) of {saved_sizes} "
            f"parameters, the optimizer given has {len(given_sizes)} of {given_sizes}: build the "
            "optimizer with the same param groups as the run that saved it"
        ]
    return []


def _scheduler_problems(checkpoint: dict[str, Any], scheduler: Any) -> list[str]:
    if checkpoint["scheduler"] is None:
        return ["it holds no scheduler state, but a scheduler was given: pass scheduler=None"]
    saved_class = checkpoint.get("scheduler_class")
    given_class = type(scheduler).__name__
    if saved_class is not None and saved_class != given_class:
        return [f"it holds the state of a {saved_class} scheduler, but a {given_class} was given"]
    return []


def load_checkpoint(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: Optimizer | None,
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
    machine without one). ``optimizer=None`` loads the model (and the rest) without it.

    All or nothing: the file is read and everything is checked first (the model's tensor names
    and shapes, the optimizer's class and its groups, the scheduler's class) and only then is
    anything changed. If a check fails, :class:`CheckpointError` names the file, every problem
    found and what to do, and the model, optimizer, scheduler and random state are exactly as
    they were.
    """
    path = Path(path)
    checkpoint = _read(path, map_location)
    problems = _model_problems(checkpoint["model"], model)
    if optimizer is not None:
        problems += _optimizer_problems(checkpoint, optimizer)
    if scheduler is not None:
        problems += _scheduler_problems(checkpoint, scheduler)
    if restore_rng and loader is not None and checkpoint["rng"].get("loader") is not None:
        if getattr(loader, "generator", None) is None:
            problems.append(
                "it holds a loader's shuffling state, but the loader given has no generator"
            )
    if problems:
        raise CheckpointError(
            f"{path} does not fit the objects given, so nothing was loaded:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
        )

    # Everything fits; keep what is needed to put it all back if torch still refuses something.
    model_backup = {name: value.detach().clone() for name, value in model.state_dict().items()}
    optimizer_backup = optimizer.state_dict() if optimizer is not None else None
    scheduler_backup = copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None
    rng_backup = rng_state(loader)
    try:
        if optimizer is not None:
            optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        if restore_rng:
            set_rng_state(checkpoint["rng"], loader)
        model.load_state_dict(checkpoint["model"])
    except Exception as error:
        model.load_state_dict(model_backup)
        if optimizer is not None:
            optimizer.load_state_dict(optimizer_backup)
        if scheduler is not None:
            scheduler.load_state_dict(scheduler_backup)
        set_rng_state(rng_backup, loader)
        raise CheckpointError(
            f"{path} could not be loaded ({type(error).__name__}: {error}); the model, optimizer, "
            "scheduler and random state were put back as they were."
        ) from error
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
