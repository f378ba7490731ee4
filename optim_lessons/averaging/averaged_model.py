r"""AveragedModel: a running average of a model's weights, equal (SWA) or exponential (EMA).

Papers: P. Izmailov, D. Podoprikhin, T. Garipov, D. Vetrov and A. G. Wilson, "Averaging Weights
Leads to Wider Optima and Better Generalization" (UAI 2018), https://arxiv.org/abs/1803.05407
(SWA, Algorithm 1); B. T. Polyak and A. B. Juditsky, "Acceleration of Stochastic Approximation
by Averaging" (SIAM J. Control Optim. 1992) for the equal average it descends from.

The average $\bar w$ starts as a copy of the weights, $\bar w_1 = w_1$, and each later call to
``update_parameters(model)`` with the model's current weights $w$ takes one of two forms:

$$
\begin{aligned}
\text{SWA:}\quad & \bar w_{n+1} = \bar w_n + \frac{w - \bar w_n}{n + 1}
    = \frac{n\,\bar w_n + w}{n + 1}
    && \text{(the mean of every weight it was given)} \\
\text{EMA:}\quad & \bar w_{n+1} = \delta\,\bar w_n + (1 - \delta)\, w
    && \text{(recent weights count more, with decay } \delta)
\end{aligned}
$$

where $n$ = ``n_averaged`` counts the models averaged so far. Both are one ``lerp``:
$\bar w \leftarrow \bar w + \alpha (w - \bar w)$ with $\alpha = 1/(n+1)$ for SWA and
$\alpha = 1 - \delta$ for EMA. ASGD's average (``optim_lessons.optimizers.ASGD``'s ``ax``) is
the SWA form taken at every step once averaging starts at ``t0``; Schedule-Free's $x$ sequence is
the same form again, with weights, folded into the optimizer.

Buffers (BatchNorm's running statistics) are copied from the model by default; with
``use_buffers=True`` they are averaged like the parameters. An average of weights is not the
weights of an average network: BatchNorm statistics measured on the old weights do not fit the
averaged ones, which is what ``update_bn`` re-estimates.

torch.optim.swa_utils versus the paper, and two details that decide the last bit:

- The paper averages once per cycle of a cyclical rate, or once per epoch at a constant rate;
  here you decide when to call ``update_parameters``.
- By default the SWA mean is computed as $\bar w + (w - \bar w)/(n + 1)$ with $n$ an integer
  tensor on the CPU, but as ``lerp`` with the weight $1/(n+1)$ rounded to float32 on devices
  with multi-tensor kernels (CUDA): the two round differently in the last bits.
- Integer buffers (BatchNorm's ``num_batches_tracked``) go through the same formulas and are
  truncated back to integers.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.nn import Module

__all__ = [
    "AveragedModel",
    "get_ema_multi_avg_fn",
    "get_swa_multi_avg_fn",
    "get_ema_avg_fn",
    "get_swa_avg_fn",
]

TensorList = Sequence[Tensor]
#: The device types on which torch 2.14 has multi-tensor (foreach) kernels: there the default
#: SWA average is computed with lerp, elsewhere with the plain formula.
FOREACH_DEVICE_TYPES = ("cuda", "xpu", "mtia", "privateuseone")


def _check_decay(decay: float) -> None:
    if decay < 0.0 or decay > 1.0:
        raise ValueError(
            f"Invalid decay value {decay} provided. Please provide a value in [0,1] range."
        )


def get_ema_multi_avg_fn(
    decay: float = 0.999,
) -> Callable[[TensorList, TensorList, object], None]:
    """EMA over lists of tensors, in place: $\\bar w \\leftarrow \\delta\\bar w + (1-\\delta) w$."""
    _check_decay(decay)

    @torch.no_grad()
    def ema_update(averages: TensorList, currents: TensorList, _num_averaged: object) -> None:
        for average, current in zip(averages, currents, strict=True):
            if torch.is_floating_point(average) or torch.is_complex(average):
                average.lerp_(current, 1 - decay)  # w_bar += (1 - delta)(w - w_bar)
            else:  # lerp has no integer kernel
                average.copy_(average * decay + current * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn() -> Callable[[TensorList, TensorList, Tensor | int], None]:
    """SWA over lists of tensors, in place: $\\bar w \\leftarrow \\bar w + (w - \\bar w)/(n+1)$."""

    @torch.no_grad()
    def swa_update(averages: TensorList, currents: TensorList, num_averaged: Tensor | int) -> None:
        for average, current in zip(averages, currents, strict=True):
            if torch.is_floating_point(average) or torch.is_complex(average):
                average.lerp_(current, 1 / (num_averaged + 1))  # w_bar += (w - w_bar)/(n+1)
            elif isinstance(num_averaged, Tensor):
                average.addcdiv_(current - average, num_averaged + 1)
            else:
                average.add_(current - average, alpha=1.0 / (num_averaged + 1))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable[[Tensor, Tensor, object], Tensor]:
    """EMA of one tensor, returned: $\\delta \\bar w + (1 - \\delta) w$."""
    _check_decay(decay)

    @torch.no_grad()
    def ema_update(average: Tensor, current: Tensor, _num_averaged: object) -> Tensor:
        return decay * average + (1 - decay) * current

    return ema_update


def get_swa_avg_fn() -> Callable[[Tensor, Tensor, Tensor | int], Tensor]:
    """SWA of one tensor, returned: $\\bar w + (w - \\bar w)/(n + 1)$."""

    @torch.no_grad()
    def swa_update(average: Tensor, current: Tensor, num_averaged: Tensor | int) -> Tensor:
        return average + (current - average) / (num_averaged + 1)

    return swa_update


def _by_device_and_dtype(
    averages: list[Tensor], currents: list[Tensor]
) -> dict[tuple[torch.device, torch.dtype], tuple[list[Tensor], list[Tensor]]]:
    """Pairs of tensors grouped so that each list handed to a multi-tensor function is uniform."""
    groups: dict[tuple[torch.device, torch.dtype], tuple[list[Tensor], list[Tensor]]] = {}
    for average, current in zip(averages, currents, strict=True):
        pair = groups.setdefault((average.device, average.dtype), ([], []))
        pair[0].append(average)
        pair[1].append(current)
    return groups


class AveragedModel(Module):
    """torch.optim.swa_utils.AveragedModel: a copy of ``model`` holding the running average.

    ``avg_fn`` averages one tensor at a time and returns the result; ``multi_avg_fn`` averages
    lists in place (``get_ema_multi_avg_fn(decay)`` for EMA); with neither, it is SWA.
    """

    n_averaged: Tensor

    def __init__(
        self,
        model: Module,
        device: int | torch.device | None = None,
        avg_fn: Callable[[Tensor, Tensor, Tensor | int], Tensor] | None = None,
        multi_avg_fn: Callable[[TensorList, TensorList, Tensor | int], None] | None = None,
        use_buffers: bool = False,
    ) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", torch.tensor(0, dtype=torch.long, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current weights into the average (the first call copies them)."""
        if self.use_buffers:
            averages = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            currents = list(itertools.chain(model.parameters(), model.buffers()))
        else:
            averages = list(self.module.parameters())
            currents = list(model.parameters())
        averages = [a.detach() for a in averages]
        currents = [c.detach().to(a.device) for a, c in zip(averages, currents)]
        averages = averages[: len(currents)]

        if self.n_averaged == 0:  # w_bar_1 = w_1
            for average, current in zip(averages, currents, strict=True):
                average.copy_(current)
        elif self.avg_fn is not None:  # one tensor at a time, returned
            for average, current in zip(averages, currents, strict=True):
                average.copy_(self.avg_fn(average, current, self.n_averaged.to(average.device)))
        else:  # lists of tensors of one device and dtype, in place
            for (device, _), (group_averages, group_currents) in _by_device_and_dtype(
                averages, currents
            ).items():
                count = self.n_averaged.to(device)
                if self.multi_avg_fn is not None:
                    self.multi_avg_fn(group_averages, group_currents, count)
                elif device.type in FOREACH_DEVICE_TYPES:
                    get_swa_multi_avg_fn()(group_averages, group_currents, count)
                else:
                    swa = get_swa_avg_fn()
                    for average, current in zip(group_averages, group_currents, strict=True):
                        average.copy_(swa(average, current, count))

        if not self.use_buffers:  # buffers follow the model instead of being averaged
            for own, theirs in zip(self.module.buffers(), model.buffers(), strict=True):
                own.detach().copy_(theirs.detach().to(own.device))
        self.n_averaged += 1
