r"""ConstantLR and LinearLR: a warm-up factor on the base rate for the first ``total_iters`` steps.

With base rate $\gamma_0$ and $T$ = ``total_iters``:

$$
\begin{aligned}
\text{ConstantLR:}\quad & \gamma_t = \gamma_0 \cdot
    \begin{cases} f & t < T \\ 1 & t \ge T \end{cases} \\
\text{LinearLR:}\quad & \gamma_t = \gamma_0 \Big(f_s + (f_e - f_s)\,\frac{\min(t, T)}{T}\Big)
\end{aligned}
$$

with $f$ = ``factor``, $f_s$ = ``start_factor`` and $f_e$ = ``end_factor``. The chainable forms
that ``step()`` uses multiply the rate in the optimizer instead:

$$
\begin{aligned}
\text{ConstantLR:}\quad & \gamma_0 \leftarrow f\,\gamma, \quad
    \gamma_T \leftarrow \gamma_{T-1} / f \\
\text{LinearLR:}\quad & \gamma_0 \leftarrow f_s\,\gamma, \quad
    \gamma_t \leftarrow \gamma_{t-1}\Big(1 + \frac{f_e - f_s}{T f_s + (t - 1)(f_e - f_s)}\Big),
    \; 1 \le t \le T
\end{aligned}
$$

The LinearLR factor is the ratio of two consecutive closed-form values, so the product of the
factors telescopes to the closed form. Being chainable, both can warm up whatever another
scheduler writes (``ChainedScheduler``), which is how torch.optim builds "warm-up then decay".
"""

from __future__ import annotations

from torch import Tensor
from torch.optim import Optimizer

from optim_lessons.schedulers.base import LRScheduler, group_values

__all__ = ["ConstantLR", "LinearLR"]


class ConstantLR(LRScheduler):
    """torch.optim.lr_scheduler.ConstantLR: scale by ``factor`` until step ``total_iters``."""

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        if self.last_epoch == 0:  # lr_0 <- factor * lr
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return group_values(self.optimizer, "lr")
        # lr_T <- lr_{T-1} / factor: the warm-up is over
        return [group["lr"] * (1.0 / self.factor) for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float | Tensor]:
        # lr_t = lr_0 * (factor if t < T else 1)
        past_warmup = self.last_epoch >= self.total_iters
        return [base_lr * (self.factor + past_warmup * (1 - self.factor))
                for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """torch.optim.lr_scheduler.LinearLR: a factor moving linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` steps."""

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(
                "Starting multiplicative factor expected to be greater than 0 and less or "
                "equal to 1."
            )
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        if self.last_epoch == 0:  # lr_0 <- f_s * lr
            return [group["lr"] * self.start_factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return group_values(self.optimizer, "lr")
        # lr_t <- lr_{t-1} (1 + (f_e - f_s) / (T f_s + (t - 1)(f_e - f_s)))
        change = self.end_factor - self.start_factor
        ratio = 1.0 + change / (
            self.total_iters * self.start_factor + (self.last_epoch - 1) * change
        )
        return [group["lr"] * ratio for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float | Tensor]:
        # lr_t = lr_0 (f_s + (f_e - f_s) min(t, T) / T)
        change = self.end_factor - self.start_factor
        progress = min(self.total_iters, self.last_epoch)
        return [base_lr * (self.start_factor + change * progress / self.total_iters)
                for base_lr in self.base_lrs]
