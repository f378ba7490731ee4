r"""StepLR, MultiStepLR and ExponentialLR: decay by a factor $\gamma$, at steps or every step.

With base rate $\gamma_0$, factor $q$ (``gamma``) and step $t$:

$$
\begin{aligned}
\text{StepLR:}\quad & \gamma_t = \gamma_0 \, q^{\lfloor t / s \rfloor}
    && \text{chainable: } \gamma_t = q\,\gamma_{t-1} \text{ when } t > 0,\ s \mid t \\
\text{MultiStepLR:}\quad & \gamma_t = \gamma_0 \, q^{\#\{m \in M : m \le t\}}
    && \text{chainable: } \gamma_t = q^{c(t)}\,\gamma_{t-1},\ c(t) = \#\{m \in M : m = t\} \\
\text{ExponentialLR:}\quad & \gamma_t = \gamma_0 \, q^{t}
    && \text{chainable: } \gamma_t = q\,\gamma_{t-1}
\end{aligned}
$$

where $s$ is ``step_size`` and $M$ the ``milestones``. ``step()`` uses the chainable form;
``step(epoch)`` (deprecated) and ``SequentialLR`` at a milestone use the closed form.

torch.optim's contract, which is looser than the docstring promises: MultiStepLR's milestones
"must be increasing" but are never checked. They are counted (a ``collections.Counter``), so an
unsorted list works and a milestone given twice decays by $q^2$ there.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable

from torch import Tensor
from torch.optim import Optimizer

from optim_lessons.schedulers.base import LRScheduler, group_values

__all__ = ["StepLR", "MultiStepLR", "ExponentialLR"]


class StepLR(LRScheduler):
    """torch.optim.lr_scheduler.StepLR: multiply by ``gamma`` every ``step_size`` steps."""

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return group_values(self.optimizer, "lr")  # between decays: unchanged
        # lr_t = gamma * lr_{t-1} at every multiple of step_size
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float | Tensor]:
        # lr_t = lr_0 * gamma^floor(t / step_size)
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """torch.optim.lr_scheduler.MultiStepLR: multiply by ``gamma`` at each milestone."""

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        self.milestones = Counter(milestones)  # milestone -> how many times it was given
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        if self.last_epoch not in self.milestones:
            return group_values(self.optimizer, "lr")
        # lr_t = gamma^c(t) * lr_{t-1}: a milestone listed c times decays c times
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch]
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float | Tensor]:
        # lr_t = lr_0 * gamma^(number of milestones <= t)
        passed = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base_lr * self.gamma ** passed for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """torch.optim.lr_scheduler.ExponentialLR: multiply by ``gamma`` every step."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        if self._is_initial:  # the first step (also on resume) must not decay a second time
            return group_values(self.optimizer, "lr")
        # lr_t = gamma * lr_{t-1}
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float | Tensor]:
        # lr_t = lr_0 * gamma^t
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]
