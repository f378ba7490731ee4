r"""SWALR: anneal the rate to a fixed SWA rate, then hold it there.

Paper: P. Izmailov, D. Podoprikhin, T. Garipov, D. Vetrov and A. G. Wilson, "Averaging Weights
Leads to Wider Optima and Better Generalization" (UAI 2018), https://arxiv.org/abs/1803.05407.

Stochastic weight averaging trains on at a constant (or cyclical) rate and averages the weights
it visits (``optim_lessons.averaging.AveragedModel``). SWALR takes the rate there: over
$A$ = ``anneal_epochs`` steps it moves from the rate $\gamma_{\text{start}}$ it found to
$\gamma_{\text{swa}}$ = ``swa_lr``,

$$
\gamma_t = \alpha_t\,\gamma_{\text{swa}} + (1 - \alpha_t)\,\gamma_{\text{start}}, \qquad
\alpha_t = a\big(\min(1, t / A)\big),
$$

with $a(x) = x$ (``"linear"``) or $a(x) = (1 - \cos \pi x)/2$ (``"cos"``). It is chainable in
an unusual way: it never stores $\gamma_{\text{start}}$, but recovers it each step from the
current rate by undoing the previous step's interpolation,
$\gamma_{\text{start}} = (\gamma_{t-1} - \alpha_{t-1}\gamma_{\text{swa}})/(1 - \alpha_{t-1})$.

torch.optim versus the paper: the paper switches to the SWA rate at once (or cycles it); the
annealing phase is torch.optim's, to avoid a jump in the rate. The counter is ``_step_count``,
not ``last_epoch``.
"""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor
from torch.optim import Optimizer

from optim_lessons.schedulers.base import LRScheduler, per_group

__all__ = ["SWALR"]


def _anneal_linear(x: float) -> float:
    return x  # a(x) = x


def _anneal_cos(x: float) -> float:
    return (1 - math.cos(math.pi * x)) / 2  # a(x) = (1 - cos(pi x)) / 2


class SWALR(LRScheduler):
    """torch.optim.swa_utils.SWALR."""

    def __init__(
        self,
        optimizer: Optimizer,
        swa_lr: float,
        anneal_epochs: int = 10,
        anneal_strategy: Literal["cos", "linear"] = "cos",
        last_epoch: int = -1,
    ) -> None:
        for value, group in zip(per_group("swa_lr", optimizer, swa_lr), optimizer.param_groups,
                                strict=True):
            group["swa_lr"] = value
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(
                "anneal_strategy must be one of 'cos' or 'linear', "
                f"instead got {anneal_strategy}"
            )
        self._anneal_strategy = anneal_strategy
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, x: float) -> float:
        return _anneal_cos(x) if self._anneal_strategy == "cos" else _anneal_linear(x)

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)  # no annealing: the SWA rate from the first step
        # The start rate, recovered from the current one by undoing the previous alpha.
        previous_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        start_lrs = [
            group["swa_lr"] if previous_alpha == 1
            else (group["lr"] - previous_alpha * group["swa_lr"]) / (1 - previous_alpha)
            for group in self.optimizer.param_groups
        ]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        # lr_t = alpha swa_lr + (1 - alpha) lr_start
        return [group["swa_lr"] * alpha + lr * (1 - alpha)
                for group, lr in zip(self.optimizer.param_groups, start_lrs, strict=True)]
