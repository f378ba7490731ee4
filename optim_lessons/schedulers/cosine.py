r"""CosineAnnealingLR and CosineAnnealingWarmRestarts: half a cosine from $\gamma_0$ down to
$\gamma_{\min}$.

Paper: I. Loshchilov and F. Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts"
(ICLR 2017), https://arxiv.org/abs/1608.03983 (eq. 5).

With base rate $\gamma_0$ (SGDR's $\gamma_{\max}$), floor $\gamma_{\min}$ = ``eta_min``, and
$T_{cur}$ steps into a cycle of length $T_i$:

$$
\gamma_t = \gamma_{\min}
  + \tfrac12(\gamma_0 - \gamma_{\min})\Big(1 + \cos\frac{\pi T_{cur}}{T_i}\Big)
$$

- **CosineAnnealingLR** has one cycle, $T_i = $ ``T_max`` and $T_{cur} = t$. ``step()`` uses the
  chainable form, the closed form's ratio between consecutive steps,
  $$
  \gamma_t = \gamma_{\min} + (\gamma_{t-1} - \gamma_{\min})\,
      \frac{1 + \cos(\pi t / T_{\max})}{1 + \cos(\pi (t-1) / T_{\max})},
  $$
  except where that ratio is $0/0$ (at $t = T_{\max} + 1$, $3T_{\max} + 1$, ...), where it adds
  the closed form's increment instead. Past $T_{\max}$ it does not stop: the cosine goes back up
  to $\gamma_0$ at $2T_{\max}$ and keeps oscillating, with period $2T_{\max}$.
- **CosineAnnealingWarmRestarts** is SGDR itself: after $T_i$ steps $T_{cur}$ jumps back to $0$
  (the rate to $\gamma_0$) and the next cycle is ``T_mult`` times longer,
  $T_{i+1} = T_{\text{mult}}\, T_i$, $T_0$ = ``T_0``. It always uses the closed form, and its
  ``step(epoch)`` accepts a fractional epoch (steps within an epoch), without a warning.

torch.optim versus the paper:

- SGDR counts $T_{cur}$ in epochs, fractions included, updated every batch; torch.optim counts
  whatever you step (usually batches), and only ``step(epoch)`` takes fractions.
- CosineAnnealingLR is SGDR *without* restarts; because it is computed step to step from the rate
  in the optimizer, it also follows changes other schedulers make, which the paper's closed form
  cannot.
"""

from __future__ import annotations

import math

from torch import Tensor
from torch.optim import Optimizer

from optim_lessons.schedulers.base import LRScheduler, group_values, set_group_value

__all__ = ["CosineAnnealingLR", "CosineAnnealingWarmRestarts", "cosine_annealing_lr"]


def cosine_annealing_lr(
    base_lr: float | Tensor, eta_min: float, t: float, period: float
) -> float | Tensor:
    """SGDR's eq. 5: the rate ``t`` steps into a cosine cycle of length ``period``."""
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


class CosineAnnealingLR(LRScheduler):
    """torch.optim.lr_scheduler.CosineAnnealingLR."""

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        t, period, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return group_values(self.optimizer, "lr")
        if self._step_count == 1 and t > 0:
            # Stepped once, yet past the start: no previous rate of its own to chain from.
            return [eta_min + (base_lr - eta_min) * (1 + math.cos(t * math.pi / period)) / 2
                    for base_lr in self.base_lrs]
        if (t - 1 - period) % (2 * period) == 0:
            # Leaving the trough (lr_{t-1} = eta_min): add the closed form's increment.
            return [group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / period)) / 2
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups,
                                              strict=True)]
        # lr_t = eta_min + (lr_{t-1} - eta_min) (1 + cos(pi t/T)) / (1 + cos(pi (t-1)/T))
        ratio_num = 1 + math.cos(math.pi * t / period)
        ratio_den = 1 + math.cos(math.pi * (t - 1) / period)
        return [ratio_num / ratio_den * (group["lr"] - eta_min) + eta_min
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float | Tensor]:
        # SGDR's eq. 5 with T_cur = t, T_i = T_max
        return [cosine_annealing_lr(base_lr, self.eta_min, self.last_epoch, self.T_max)
                for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """torch.optim.lr_scheduler.CosineAnnealingWarmRestarts (SGDR)."""

    def __init__(
        self,
        optimizer: Optimizer,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, float | int):
            raise ValueError(
                f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}"
            )
        self.T_0 = T_0
        self.T_i = T_0  # the length of the current cycle
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch  # steps since the last restart
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        # SGDR's eq. 5 with the current T_cur and T_i
        return [cosine_annealing_lr(base_lr, self.eta_min, self.T_cur, self.T_i)
                for base_lr in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """One step on, or (``epoch`` given, possibly fractional) straight to that point."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:  # restart: T_cur back to 0, the next cycle T_mult longer
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    # Cycles 0..n-1 last T_0 (T_mult^n - 1) / (T_mult - 1) steps in all: solve
                    # for the cycle n that contains epoch, then the offset into it.
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** (n)
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self._get_lr_called_within_step = True
        try:
            values = self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            set_group_value(group, "lr", lr)
        self._last_lr = group_values(self.optimizer, "lr")
