"""Start N ranks on this machine, run one function on each, and collect what each returns.

``launch(fn, world_size=2)`` spawns ``world_size`` processes, joins them into one process group
(gloo over 127.0.0.1, on a free port), calls ``fn(*args)`` in every rank and returns the list of
their results, rank 0 first. It is meant for notebooks and tests, so it fails loudly and cleanly:

- a rank that raises stops the whole run; the error raised in the parent, :class:`RankError`,
  carries that rank's traceback, and every other rank is terminated;
- a run that takes longer than ``timeout`` seconds is killed (:class:`TimeoutError`);
- a port that is already taken, or a world size that is not a positive whole number, is
  refused before anything starts;
- no process outlives the call, whatever happens.

``fn`` must be importable by the children (a function of a module, not one defined in a
notebook cell): spawned processes start a fresh interpreter and find ``fn`` by its module and
name. Inside ``fn``, :func:`optim_lessons.distributed.ranks.rank` and ``world_size`` say who is
who. The same ``fn`` runs unchanged under ``torchrun``: see :mod:`optim_lessons.distributed.ranks`.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import queue
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

__all__ = ["RankError", "free_port", "launch", "port_is_free"]

#: How long a terminated rank gets to exit before it is killed.
_GRACE_SECONDS = 5.0


class RankError(RuntimeError):
    """A rank raised; the message holds its rank and its traceback."""

    def __init__(self, rank: int, formatted: str) -> None:
        super().__init__(f"rank {rank} raised:\n{formatted}")
        self.rank = rank
        self.formatted = formatted


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _check_world_size(world_size: Any) -> int:
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    return world_size


def _rank_main(
    fn: Callable[..., Any],
    args: Sequence[Any],
    rank: int,
    world_size: int,
    port: int,
    backend: str,
    timeout: float,
    results: Any,
) -> None:
    """What every child runs: join the group, call ``fn``, report the result or the traceback."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
    )
    import torch.distributed as dist

    try:
        dist.init_process_group(
            backend,
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=timeout),
        )
        value = _to_bytes(fn(*args))
    except BaseException:  # noqa: B036 - everything goes back to the parent
        results.put((rank, False, traceback.format_exc()))
        return
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    results.put((rank, True, value))


def _to_bytes(value: Any) -> bytes:
    """The result as plain bytes: tensors then travel by copy, not through shared memory that
    would vanish with the process that made it."""
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _from_bytes(data: bytes) -> Any:
    import torch

    return torch.load(io.BytesIO(data), weights_only=False)


#: What the fork server imports once, so that forked ranks start with it loaded (``fully_shard``
#: imports ``torch._dynamo`` on first use: seconds that every rank would otherwise pay again).
_PRELOAD = [
    "torch",
    "torch._dynamo",
    "torch.distributed",
    "torch.distributed.fsdp",
    "torch.distributed.optim",
    "optim_lessons.distributed.sweep",
]


def _context(start_method: str | None) -> Any:
    if start_method is None:
        start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    context = mp.get_context(start_method)
    if start_method == "forkserver":
        from optim_lessons.optimizers import MODULES

        optimizers = [f"optim_lessons.optimizers.{module}" for module in MODULES.values()]
        context.set_forkserver_preload(_PRELOAD + optimizers)
    return context


def _stop(processes: list[Any]) -> None:
    """Terminate every child that still runs, kill those that ignore it, and reap them all."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + _GRACE_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def launch(
    fn: Callable[..., Any],
    world_size: int = 2,
    args: Sequence[Any] = (),
    *,
    timeout: float = 60.0,
    port: int | None = None,
    backend: str = "gloo",
    start_method: str | None = None,
) -> list[Any]:
    """Run ``fn(*args)`` in ``world_size`` new processes joined by ``backend``; return the
    results in rank order.

    Args:
        fn: a picklable function (defined at the top level of an importable module).
        world_size: how many ranks.
        args: positional arguments, the same for every rank (picklable).
        timeout: seconds for the whole run, start-up included, and for each collective.
        port: the rendezvous port on 127.0.0.1; by default a free one.
        backend: ``"gloo"`` (CPU tensors) unless the function moves its work to GPUs.
        start_method: how the ranks start (see :mod:`multiprocessing`). By default
            ``"forkserver"`` where there is one (Linux, macOS): a server process imports torch
            once, and every later launch forks ranks from it in a fraction of a second; it
            lives as long as the calling process. ``"spawn"`` starts each rank from scratch.

    Raises:
        ValueError: ``world_size`` is not a positive int.
        OSError: ``port`` is already taken.
        RankError: a rank raised (the first one to report); the others are terminated.
        TimeoutError: the ranks did not all finish within ``timeout`` seconds.
        RuntimeError: a rank died without reporting (killed, or a crash of the interpreter).
    """
    world_size = _check_world_size(world_size)
    if port is None:
        port = free_port()
    elif not port_is_free(port):
        raise OSError(f"port {port} on 127.0.0.1 is already in use: pass another, or port=None")
    context = _context(start_method)
    results = context.Queue()
    processes = [
        context.Process(
            target=_rank_main,
            args=(fn, tuple(args), rank, world_size, port, backend, timeout, results),
            daemon=True,
            name=f"rank-{rank}",
        )
        for rank in range(world_size)
    ]
    values: dict[int, Any] = {}
    try:
        for process in processes:
            process.start()
        deadline = time.monotonic() + timeout
        while len(values) < world_size:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sorted(set(range(world_size)) - set(values))
                raise TimeoutError(
                    f"ranks {missing} did not finish within {timeout} s (a rank waiting for "
                    "a collective that another rank never joins hangs until then)"
                )
            try:
                rank, ok, value = results.get(timeout=min(left, 0.2))
            except queue.Empty:
                dead = [
                    r
                    for r, p in enumerate(processes)
                    if r not in values and not p.is_alive() and p.exitcode not in (0, None)
                ]
                if dead and results.empty():
                    time.sleep(0.2)  # a result may still be on its way through the pipe
                    if results.empty():
                        codes = {r: processes[r].exitcode for r in dead}
                        raise RuntimeError(
                            f"rank(s) {dead} died without reporting (exit codes {codes})"
                        ) from None
                continue
            if not ok:
                raise RankError(rank, value)
            values[rank] = value
    finally:
        _stop(processes)
        results.close()
        results.join_thread()
    return [_from_bytes(values[rank]) for rank in range(world_size)]
