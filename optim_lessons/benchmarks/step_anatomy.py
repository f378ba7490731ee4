r"""What one ``optimizer.step()`` asks of the machine: how many operations, how many bytes.

:func:`step_anatomy` runs one step under a :class:`~torch.utils._python_dispatch.TorchDispatchMode`,
which hears every operation that reaches PyTorch's kernels (after autograd, after the Python
optimizer code). For each operation it notes

- whether it touches parameter-sized data (a tensor with at least one dimension) or only
  0-dim tensors such as the step count: on a GPU each of the first kind is one kernel launch;
- the bytes it reads (every tensor argument, each counted once per operation) and writes (its
  results, and the arguments it changes in place).

Views (``view``, ``slice``, ``t``, ...) move no data and are not counted. An in-place argument
that an operation is allowed to change but leaves as it was (the gradients handed to torch's
fused Adam, which it would only rescale under a gradient scaler) is not counted as written:
the anatomy compares each such argument before and after, so run it on a small model.

Summed over the step and divided by the number of parameters, the bytes give the step's
traffic per parameter, to set beside the least any implementation must move
(:data:`optim_lessons.benchmarks.roofline.TRAFFIC`): an element-wise step that passes over
memory once per operation moves several times that.

:func:`split_params` and :func:`time_steps` give the timings of the chapter "Making step()
fast" (the same parameters split into more and more tensors), and :func:`plot_step_roofline`
draws measured steps against the memory limit.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from optim_lessons.benchmarks.bench_models import clone_params

__all__ = [
    "StepAnatomy",
    "median_ms",
    "plot_step_roofline",
    "split_params",
    "step_anatomy",
    "time_steps",
]

#: Operations that overwrite their first argument without reading it.
_WRITE_ONLY = {"copy_", "fill_", "zero_"}


@dataclass
class StepAnatomy:
    """The operations and bytes of one step."""

    n_params: int
    #: Operations that touch parameter-sized data (kernel launches on a GPU).
    ops: int = 0
    #: Operations on 0-dim tensors only (step counts, bias corrections, ``.item()``).
    scalar_ops: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    #: How often each operation ran, by ATen name (``aten.lerp_.Scalar``).
    by_op: Counter = field(default_factory=Counter)

    @property
    def bytes_per_param(self) -> float:
        """Bytes read plus bytes written, per parameter."""
        return (self.bytes_read + self.bytes_written) / self.n_params


def _data_tensors(values: object) -> list[Tensor]:
    """The tensors with at least one dimension among ``values`` (lists flattened), each once."""
    leaves, _ = tree_flatten(values)
    seen: dict[int, Tensor] = {}
    for leaf in leaves:
        if isinstance(leaf, Tensor) and leaf.dim() > 0:
            seen.setdefault(id(leaf), leaf)
    return list(seen.values())


def _nbytes(tensors: Sequence[Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _is_view(func: torch._ops.OpOverload) -> bool:
    """Whether the operation returns a view of an argument (no data moves)."""
    returns = func._schema.returns
    return bool(returns) and all(
        r.alias_info is not None and not r.alias_info.is_write for r in returns
    )


def _mutated_arguments(
    func: torch._ops.OpOverload, args: tuple, kwargs: dict, *, out_only: bool = False
) -> list[object]:
    """The arguments the schema lets the operation change in place (``Tensor(a!)``); with
    ``out_only``, only those it writes without reading (``out=``)."""
    values = []
    for index, argument in enumerate(func._schema.arguments):
        if argument.alias_info is None or not argument.alias_info.is_write:
            continue
        if out_only and not argument.is_out:
            continue
        if index < len(args):
            values.append(args[index])
        elif argument.name in kwargs:
            values.append(kwargs[argument.name])
    return values


class _Listener(TorchDispatchMode):
    def __init__(self, anatomy: StepAnatomy) -> None:
        super().__init__()
        self.anatomy = anatomy

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func.namespace != "aten" or _is_view(func):  # profiler marks, views: no data moves
            return func(*args, **kwargs)
        inputs = _data_tensors((args, kwargs))
        mutable = _data_tensors(_mutated_arguments(func, args, kwargs))
        before = [t.clone() for t in mutable]
        result = func(*args, **kwargs)
        changed = [t for t, old in zip(mutable, before, strict=True) if not torch.equal(t, old)]
        input_ids = {id(t) for t in inputs}
        outputs = [t for t in _data_tensors(result) if id(t) not in input_ids]
        anatomy = self.anatomy
        name = str(func.overloadpacket.__name__)
        if not inputs and not outputs:
            anatomy.scalar_ops += 1
        else:
            anatomy.ops += 1
            written_only = _data_tensors(_mutated_arguments(func, args, kwargs, out_only=True))
            if name in _WRITE_ONLY:
                written_only = mutable
            unread = {id(t) for t in written_only}
            read = [t for t in inputs if id(t) not in unread]
            anatomy.bytes_read += _nbytes(read)
            anatomy.bytes_written += _nbytes(changed) + _nbytes(outputs)
        anatomy.by_op[str(func)] += 1
        return result


def step_anatomy(
    optimizer: torch.optim.Optimizer, closure: Callable[[], Tensor] | None = None
) -> StepAnatomy:
    """Take one step of ``optimizer`` and count its operations and bytes (see the module
    docstring). Take a step or two first, so that the state exists and is not counted as
    created."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    anatomy = StepAnatomy(n_params=sum(p.numel() for p in params))
    with _Listener(anatomy):
        optimizer.step(closure)
    return anatomy


def split_params(
    total: int, n_tensors: int, device: str | torch.device = "cpu", seed: int = 0
) -> list[Tensor]:
    """``total`` parameters (rounded down to a multiple of ``n_tensors``) as ``n_tensors``
    vectors of equal length, each with a fixed random gradient."""
    generator = torch.Generator().manual_seed(seed)
    length = total // n_tensors
    params = []
    for _ in range(n_tensors):
        p = torch.randn(length, generator=generator).to(device).requires_grad_(True)
        p.grad = (0.01 * torch.randn(length, generator=generator)).to(device)
        params.append(p)
    return params


def time_steps(
    builders: Mapping[str, Callable[[list[Tensor]], torch.optim.Optimizer]],
    params: Sequence[Tensor],
    *,
    repeats: int = 9,
    warmup: int = 2,
) -> dict[str, float]:
    """The median time of one ``step()``, in ms, for each optimizer ``builders`` makes (each on
    its own copy of ``params``). They take turns, one step each per round, so that a burst of
    load on a shared machine hits all of them alike; a CUDA device is synchronized after each
    step."""
    # Imported here: bench imports this module's neighbours, not the other way round.
    from optim_lessons.benchmarks.bench import _take_turns

    device = params[0].device
    optimizers = {label: build(clone_params(params)) for label, build in builders.items()}
    for optimizer in optimizers.values():
        for _ in range(warmup):
            optimizer.step()
    samples = _take_turns(optimizers, None, device, repeats, float("inf"), repeats)
    return {label: statistics.median(times) for label, times in samples.items()}


def median_ms(
    action: Callable[[], object], device: str | torch.device = "cpu", repeats: int = 50
) -> float:
    """The median time of ``action()``, in ms, over ``repeats`` calls after one untimed call;
    a CUDA device is synchronized before and after each call, so that the time is the GPU's
    work and not only the launch."""
    device = torch.device(device)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    action()
    times = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        action()
        synchronize()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def plot_step_roofline(
    times_ms: Mapping[str, float],
    limit_ms: float,
    *,
    title: str,
    ax=None,  # noqa: ANN001 (a matplotlib Axes)
):
    """Horizontal bars of measured step times with the memory limit as a line, each bar
    labelled with its percent of the roofline (limit / time)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(times_ms) + 1.4))
    labels = list(times_ms)
    values = [times_ms[label] for label in labels]
    positions = range(len(labels))
    ax.barh(positions, values, color="#4c72b0")
    ax.axvline(limit_ms, color="#c44e52", linestyle="--", label=f"memory limit {limit_ms:.1f} ms")
    for position, value in zip(positions, values, strict=True):
        ax.text(value, position, f"  {100 * limit_ms / value:.0f}%", va="center", fontsize=9)
    ax.set_yticks(list(positions), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, max(values) * 1.18)
    ax.set_xlabel("ms per step (percent of the roofline beside each bar)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return ax
