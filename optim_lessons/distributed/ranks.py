"""Who am I, how many are we, and which device is mine: the same answers under ``launch`` and
under ``torchrun``.

``torchrun --nproc-per-node=N script.py`` starts N processes and tells each one its place in
environment variables: ``RANK`` (0 to N-1 over all machines), ``LOCAL_RANK`` (its index on this
machine, which picks its GPU) and ``WORLD_SIZE``, with ``MASTER_ADDR``/``MASTER_PORT`` for the
rendezvous. :func:`optim_lessons.distributed.launch` sets the same variables in the processes it
spawns and joins them into a gloo group itself. :func:`setup` joins the group where nobody has
yet (under ``torchrun``): NCCL when the process has a GPU, gloo otherwise.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

__all__ = ["device", "local_rank", "rank", "setup", "world_size"]


def rank() -> int:
    """This process's rank: from the process group if there is one, else ``RANK``, else 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", 0))


def world_size() -> int:
    """How many ranks: from the process group if there is one, else ``WORLD_SIZE``, else 1."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", 1))


def local_rank() -> int:
    """This process's index on its machine (``LOCAL_RANK``; 0 without one)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def device() -> torch.device:
    """The device this rank computes on: its own GPU under NCCL, the CPU under gloo."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


def setup(expected_world_size: int | None = None, timeout: float = 60.0) -> int:
    """Join the process group if this process has not yet, and check its size.

    Under ``launch`` the group already exists. Under ``torchrun`` the environment variables say
    where to meet: the backend is NCCL when CUDA is available (each rank on ``cuda:LOCAL_RANK``)
    and gloo otherwise. Returns the world size.

    Raises:
        ValueError: the group's size is not ``expected_world_size``, or ``RANK`` is outside
            ``[0, WORLD_SIZE)``.
    """
    if not dist.is_initialized():
        if "WORLD_SIZE" in os.environ:
            size, me = int(os.environ["WORLD_SIZE"]), int(os.environ.get("RANK", 0))
            if not 0 <= me < size:
                raise ValueError(f"RANK={me} is outside [0, WORLD_SIZE={size})")
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    size = dist.get_world_size()
    if expected_world_size is not None and size != expected_world_size:
        raise ValueError(
            f"world size mismatch: this run expects {expected_world_size} ranks, but the "
            f"process group has {size}"
        )
    return size
