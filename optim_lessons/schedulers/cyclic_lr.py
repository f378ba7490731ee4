r"""CyclicLR: the rate climbs and falls between two bounds, again and again.

Paper: L. N. Smith, "Cyclical Learning Rates for Training Neural Networks" (WACV 2017),
https://arxiv.org/abs/1506.01186 (section 3.1).

A cycle lasts $S = S_{up} + S_{down}$ steps (``step_size_up``, ``step_size_down``). At step $t$:

$$
\begin{aligned}
c &= \lfloor 1 + t / S \rfloor && \text{the cycle number, from 1} \\
x &= 1 + t/S - c && \text{the position in the cycle, } 0 \le x < 1 \\
h &= \begin{cases} x / r & x \le r \\ (x - 1)/(r - 1) & x > r \end{cases},
   \quad r = S_{up} / S && \text{the height of the triangle, } 0 \dots 1 \dots 0 \\
\gamma_t &= \gamma_{\text{base}} + (\gamma_{\max} - \gamma_{\text{base}})\, h \; s(\cdot)
\end{aligned}
$$

with the amplitude scale $s$ read at the cycle $c$ or at the step $t$:

- ``triangular``: $s = 1$;
- ``triangular2``: $s(c) = 2^{-(c - 1)}$, the amplitude halves each cycle;
- ``exp_range``: $s(t) = \gamma^{t}$, the amplitude decays every step;
- or your own ``scale_fn`` with ``scale_mode`` ``"cycle"`` or ``"iterations"``.

With ``cycle_momentum`` the momentum moves the other way,
$\mu_t = \mu_{\max} - (\mu_{\max} - \mu_{\text{base}})\,h\,s(\cdot)$: high momentum when the
rate is low. Optimizers with ``betas`` (Adam) have their $\beta_1$ cycled instead.

torch.optim versus the paper:

- Smith's triangle is symmetric, $S_{up} = S_{down}$ = "stepsize"; torch.optim allows two
  lengths.
- Cycling the momentum is not in this paper; it comes from Smith's later 1cycle work (see
  OneCycleLR). torch.optim does it by default, and raises if the optimizer has neither
  ``momentum`` nor ``betas``.
- The rate is a closed form of $t$ only: it overwrites whatever is in the optimizer, so CyclicLR
  does not chain with other schedulers.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any, Literal

from torch import Tensor
from torch.optim import Optimizer

from optim_lessons.schedulers.base import (
    LRScheduler,
    check_optimizer,
    per_group,
    set_group_value,
    set_momentum,
)

__all__ = ["CyclicLR"]


def triangle_height(t: int, total_size: float, step_ratio: float) -> tuple[int, float]:
    """The cycle number $c$ and the triangle's height $h$ at step ``t`` (both eqs. above)."""
    cycle = math.floor(1 + t / total_size)  # c = floor(1 + t/S)
    x = 1.0 + t / total_size - cycle  # x = 1 + t/S - c
    if x <= step_ratio:
        return cycle, x / step_ratio  # rising edge
    return cycle, (x - 1) / (step_ratio - 1)  # falling edge


class CyclicLR(LRScheduler):
    """torch.optim.lr_scheduler.CyclicLR."""

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: Literal["cycle", "iterations"] = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
        last_epoch: int = -1,
    ) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        base_lrs = per_group("base_lr", optimizer, base_lr)
        if last_epoch == -1:  # a fresh cycle starts at the lower bound
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                set_group_value(group, "lr", lr)
        self.max_lrs = per_group("max_lr", optimizer, max_lr)

        step_size_up = float(step_size_up)
        step_size_down = float(step_size_down) if step_size_down is not None else step_size_up
        self.total_size = step_size_up + step_size_down  # S
        self.step_ratio = step_size_up / self.total_size  # r = S_up / S
        if mode not in ["triangular", "triangular2", "exp_range"] and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._set_scale_mode()

        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    "optimizer must support momentum or beta1 with `cycle_momentum` option "
                    "enabled"
                )
            self.use_beta1 = "betas" in self.optimizer.defaults
            self.base_momentums = per_group("base_momentum", optimizer, base_momentum)
            self.max_momentums = per_group("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:  # momentum starts high, where the rate is low
                for high, low, group in zip(self.max_momentums, self.base_momentums,
                                            optimizer.param_groups, strict=True):
                    set_momentum(group, high, self.use_beta1)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _set_scale_mode(self) -> None:
        """The built-in modes fix where the scale is read: per cycle, or (exp_range) per step."""
        if self._scale_fn_custom is None:
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"

    def scale_fn(self, x: float) -> float:
        """The amplitude scale $s$ at cycle or step ``x``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0  # s = 1
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))  # s(c) = 2^-(c-1)
        return self.gamma**x  # exp_range: s(t) = gamma^t

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        cycle, height = triangle_height(self.last_epoch, self.total_size, self.step_ratio)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        # lr_t = lr_base + (lr_max - lr_base) h s
        lrs = [base_lr + (max_lr - base_lr) * height * scale
               for base_lr, max_lr in zip(self.base_lrs, self.max_lrs, strict=True)]
        if self.cycle_momentum:
            # mu_t = mu_max - (mu_max - mu_base) h s: momentum mirrors the rate
            for group, low, high in zip(self.optimizer.param_groups, self.base_momentums,
                                        self.max_momentums, strict=True):
                set_momentum(group, high - (high - low) * height * scale, self.use_beta1)
        return lrs

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        # A custom scale function is code: only a callable object's attributes are saved.
        fn = self._scale_fn_custom
        state["_scale_fn_custom"] = (
            None if fn is None or isinstance(fn, types.FunctionType) else fn.__dict__.copy()
        )
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved_fn = state_dict["_scale_fn_custom"]
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "_scale_fn_custom"})
        if saved_fn is not None:
            self._scale_fn_custom.__dict__.update(saved_fn)
        self._set_scale_mode()
