r"""How fast can ``optimizer.step()`` possibly be? The memory roofline of an optimizer step.

An element-wise optimizer does a handful of multiplications and additions per parameter, and
has to read and write several numbers per parameter to do them: the parameter, its gradient
and each state buffer. On every machine this book runs on, moving those bytes takes far longer
than the arithmetic, so the bytes set the limit:

$$
t_{\text{step}} \;\ge\; \frac{n \cdot B}{\text{bandwidth}},
\qquad B = (\text{tensors read} + \text{tensors written}) \times \text{bytes per element}.
$$

Adam in float32 reads $\theta, g, m, v$ and writes $\theta, m, v$: $B = 7 \times 4 = 28$ bytes
per parameter, the same for every Adam implementation. A 5M-parameter model then has to move
about 142 MB per step; at 20 GB/s no Adam step can take less than 7 ms. A step that reaches
the limit reads each tensor once and writes it once, which is what a fused kernel does; a
for-loop of separate operations passes over memory once per operation.

What this module gives:

- :data:`TRAFFIC`: per optimizer, which parameter-sized tensors one step reads and writes, as
  derived from its update rule (with the benchmark's settings: defaults, and SGD with
  momentum). The tests check the state tensors named here against the state the optimizers
  actually keep (:func:`optim_lessons.training.optimizer_state_bytes`).
- :func:`measure_bandwidth`: this machine's streaming bandwidth, on the CPU or a CUDA device.
- :func:`step_time_limit` and :func:`percent_of_roofline`: the limit for ``n`` parameters, and
  how close a measured step comes to it, as one number per optimizer.

Only the compulsory traffic counts: scalars (the step count, $\beta_1^t$), a weight-decay
term that rereads $\theta$ while it is in a register, and temporaries that a good kernel keeps
in registers cost nothing here. Optimizers whose step is not an element-wise pass (L-BFGS,
and Muon, whose Newton-Schulz iteration is matrix products) have a byte count that is a lower
bound far below their real cost; :data:`TRAFFIC` says so in their note.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

__all__ = [
    "TRAFFIC",
    "Bandwidth",
    "StepTraffic",
    "measure_bandwidth",
    "percent_of_roofline",
    "step_time_limit",
]


@dataclass(frozen=True)
class StepTraffic:
    """The parameter-sized tensors one step reads and writes, named like the state keys."""

    optimizer: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    #: Whether the bytes set the step's speed; False where the maths costs more than the bytes.
    memory_bound: bool = True
    note: str = ""

    @property
    def states(self) -> tuple[str, ...]:
        """The state tensors the step touches (everything but the parameter and its gradient)."""
        names = dict.fromkeys(self.reads + self.writes)
        return tuple(name for name in names if name not in ("param", "grad"))

    def bytes_per_param(self, element_size: int = 4) -> int:
        """Bytes one step moves per parameter: every tensor read once and written once."""
        return (len(self.reads) + len(self.writes)) * element_size


def _moments(optimizer: str, *states: str, note: str = "") -> StepTraffic:
    """The common shape: read the parameter, the gradient and the states; write all but g."""
    return StepTraffic(optimizer, ("param", "grad", *states), ("param", *states), note=note)


#: Per optimizer (with the benchmark's hyperparameters), what one step reads and writes.
TRAFFIC: dict[str, StepTraffic] = {
    "SGD": _moments("SGD", "momentum_buffer", note="momentum=0.9; plain SGD moves 12 B"),
    "Adam": _moments("Adam", "exp_avg", "exp_avg_sq", note="amsgrad adds max_exp_avg_sq: 36 B"),
    "AdamW": _moments("AdamW", "exp_avg", "exp_avg_sq"),
    "NAdam": _moments("NAdam", "exp_avg", "exp_avg_sq"),
    "RAdam": _moments("RAdam", "exp_avg", "exp_avg_sq"),
    "Adamax": _moments("Adamax", "exp_avg", "exp_inf"),
    "Adagrad": _moments("Adagrad", "sum"),
    "Adadelta": _moments("Adadelta", "square_avg", "acc_delta"),
    "RMSprop": _moments("RMSprop", "square_avg", note="momentum or centered add 8 B each"),
    "Rprop": _moments("Rprop", "prev", "step_size"),
    "Lion": _moments("Lion", "exp_avg"),
    # ASGD copies the parameter into its average until averaging starts (t0 = 1e6 steps): the
    # average is written, never read.
    "ASGD": StepTraffic(
        "ASGD", ("param", "grad"), ("param", "ax"), note="ax is written, not read, before t0"
    ),
    # Adafactor keeps a row and a column of second moments per matrix (rows + columns numbers,
    # not rows x columns); a vector keeps a full one, which this count leaves out.
    "Adafactor": StepTraffic(
        "Adafactor", ("param", "grad"), ("param",), note="factored moments: rows + columns"
    ),
    "SparseAdam": _moments(
        "SparseAdam", "exp_avg", "exp_avg_sq", note="per row the gradient touches, not per row"
    ),
    "Muon": StepTraffic(
        "Muon",
        ("param", "grad", "momentum_buffer"),
        ("param", "momentum_buffer"),
        memory_bound=False,
        note="Newton-Schulz matrix products dominate: the bytes are a loose lower bound",
    ),
}
# L-BFGS has no entry: it works on one flat vector with a history of (s, y) pairs, and what
# one step moves depends on the history's length and on the line search, not on the parameter.


@dataclass(frozen=True)
class Bandwidth:
    """Measured streaming speeds of a device, in bytes per second."""

    device: str
    #: ``dst.copy_(src)``: bytes read plus bytes written, per second.
    copy: float
    #: ``x.mul_(1.0)`` on one buffer: read and write in place.
    in_place: float
    #: ``x.addcmul_(y, z)``: three buffers read, one written in place, the pattern of an
    #: optimizer step. A single core often needs several streams at once to reach full speed.
    streams: float
    buffer_bytes: int

    @property
    def best(self) -> float:
        """The fastest of the three: the speed the roofline assumes.

        A plain copy also reads the destination before writing it on most CPUs
        ("write-allocate"), a cost that in-place updates do not pay; and one stream rarely keeps
        a core's memory system busy. The several-stream, in-place pass is then the fastest, and
        the fairest limit for an optimizer, which updates several tensors in place.
        """
        return max(self.copy, self.in_place, self.streams)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_bandwidth(
    device: str | torch.device = "cpu", buffer_bytes: int = 256 * 2**20, repeats: int = 10
) -> Bandwidth:
    """Time two streaming passes over a buffer far larger than the caches; median of
    ``repeats`` runs each, after one warm-up run."""
    device = torch.device(device)
    n = buffer_bytes // 4
    source = torch.ones(n, device=device)
    target = torch.zeros(n, device=device)

    def median_seconds(action) -> float:
        action()
        _synchronize(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            action()
            _synchronize(device)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    copy_s = median_seconds(lambda: target.copy_(source))
    in_place_s = median_seconds(lambda: target.mul_(1.0))
    moved = 2 * n * 4  # each pass reads the buffer once and writes it once
    half = n // 2
    first, second = source[:half], source[half : 2 * half]
    streams_s = median_seconds(lambda: target[:half].addcmul_(first, second))
    streams_moved = 4 * half * 4  # three buffers read, one of them written
    return Bandwidth(
        str(device), moved / copy_s, moved / in_place_s, streams_moved / streams_s, n * 4
    )


def step_time_limit(
    optimizer: str, n_params: int, bandwidth: float, element_size: int = 4
) -> float | None:
    """The shortest time, in seconds, a step of ``optimizer`` on ``n_params`` parameters can
    take at ``bandwidth`` bytes per second; None where there is no entry in :data:`TRAFFIC`."""
    traffic = TRAFFIC.get(optimizer)
    if traffic is None:
        return None
    return n_params * traffic.bytes_per_param(element_size) / bandwidth


def percent_of_roofline(measured_s: float, limit_s: float | None) -> float | None:
    """How close a measured step comes to the limit: 100 means the step moves its bytes at the
    machine's streaming speed."""
    if limit_s is None or measured_s <= 0:
        return None
    return 100.0 * limit_s / measured_s
