r"""PolynomialLR: decay to zero in ``total_iters`` steps along $(1 - t/T)^p$.

With base rate $\gamma_0$, $T$ = ``total_iters`` and $p$ = ``power``:

$$
\gamma_t = \gamma_0 \Big(1 - \frac{\min(t, T)}{T}\Big)^{p}
\qquad\text{chainable: }
\gamma_t = \gamma_{t-1} \bigg(\frac{1 - t/T}{1 - (t - 1)/T}\bigg)^{p}, \; 1 \le t \le T
$$

$p = 1$ is a linear decay to zero, the "linear schedule" of many fine-tuning recipes; $p = 2$
spends longer near zero. After $T$ steps the rate stays at $0$ (the chainable form multiplies by
$0^p$ at $t = T$ and then leaves the rate alone).
"""

from __future__ import annotations

from torch import Tensor
from torch.optim import Optimizer

from optim_lessons.schedulers.base import LRScheduler, group_values

__all__ = ["PolynomialLR"]


class PolynomialLR(LRScheduler):
    """torch.optim.lr_scheduler.PolynomialLR."""

    def __init__(
        self,
        optimizer: Optimizer,
        total_iters: int = 5,
        power: float = 1.0,
        last_epoch: int = -1,
    ) -> None:
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        if self._is_initial or self.last_epoch > self.total_iters:
            return group_values(self.optimizer, "lr")
        # lr_t = lr_{t-1} ((1 - t/T) / (1 - (t-1)/T))^p: the ratio of two closed-form values
        remaining_now = 1.0 - self.last_epoch / self.total_iters
        remaining_before = 1.0 - (self.last_epoch - 1) / self.total_iters
        decay_factor = (remaining_now / remaining_before) ** self.power
        return [group["lr"] * decay_factor for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float | Tensor]:
        # lr_t = lr_0 (1 - min(t, T) / T)^p
        remaining = 1.0 - min(self.total_iters, self.last_epoch) / self.total_iters
        return [base_lr * remaining**self.power for base_lr in self.base_lrs]
