r"""OneCycleLR: one warm-up to a large rate, then one long anneal far below the start.

Paper: L. N. Smith and N. Topin, "Super-Convergence: Very Fast Training of Neural Networks
Using Large Learning Rates" (2017), https://arxiv.org/abs/1708.07120; the schedule itself is
laid out in L. N. Smith, "A disciplined approach to neural network hyper-parameters: Part 1"
(2018), https://arxiv.org/abs/1803.09820 (section 4.1).

With peak $\gamma_{\max}$ = ``max_lr``, start $\gamma_{\text{init}} = \gamma_{\max} / d$
(``div_factor``), floor $\gamma_{\min} = \gamma_{\text{init}} / d_f$ (``final_div_factor``) and
$N$ = ``total_steps``, the schedule is a chain of phases. Phase $k$ runs from step $a_k$ to step
$b_k$ and anneals from its start value to its end value,

$$
\gamma_t = \operatorname{anneal}(\gamma_{\text{start}}, \gamma_{\text{end}}, p), \qquad
p = \frac{t - a_k}{b_k - a_k},
$$

$$
\operatorname{anneal}_{\cos}(s, e, p) = e + \frac{s - e}{2}\,(1 + \cos \pi p), \qquad
\operatorname{anneal}_{\text{linear}}(s, e, p) = s + (e - s)\,p .
$$

Two phases (default), with $P$ = ``pct_start``: $\gamma_{\text{init}} \to \gamma_{\max}$ over steps
$0 \dots PN - 1$, then $\gamma_{\max} \to \gamma_{\min}$ up to step $N - 1$.
Three phases (``three_phase=True``): up over $0 \dots PN - 1$, back down to
$\gamma_{\text{init}}$ over $PN - 1 \dots 2PN - 2$ (a symmetric triangle), then
$\gamma_{\text{init}} \to \gamma_{\min}$ up to $N - 1$.

With ``cycle_momentum`` the momentum (or $\beta_1$) runs the other way in the same phases:
``max_momentum`` $\to$ ``base_momentum`` while the rate rises, and back while it falls (it stays
at ``max_momentum`` in the third phase).

torch.optim versus Smith's schedule:

- Smith's 1cycle is the three-phase one: a *linear* symmetric triangle between
  $\gamma_{\max}/d$ and $\gamma_{\max}$, then a short linear "annihilation" to a tiny rate. torch's
  default is two phases with *cosine* annealing (the fastai variant, whose authors report it
  works better); ``three_phase=True, anneal_strategy="linear"`` is the paper's shape.
- The phase boundaries are $PN - 1$ and $2PN - 2$ (off by one and two from $PN$ and $2PN$),
  and may fall between two steps: the rate reaches ``max_lr`` exactly only when $PN - 1$ is a
  whole number.
- Stepping more than ``total_steps`` times raises: the schedule has an end, and a rate past it
  is not defined.
- Like CyclicLR it is a closed form of $t$ and overwrites the rate: it does not chain.
"""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor
from torch.optim import Optimizer

from optim_lessons.schedulers.base import LRScheduler, check_optimizer, per_group, set_momentum

__all__ = ["OneCycleLR", "anneal_cos", "anneal_linear"]


def anneal_cos(start: float, end: float, pct: float) -> float:
    """Half a cosine from ``start`` (pct = 0) to ``end`` (pct = 1)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def anneal_linear(start: float, end: float, pct: float) -> float:
    """A straight line from ``start`` (pct = 0) to ``end`` (pct = 1)."""
    return (end - start) * pct + start


def _phase(end_step: float, start: str, end: str, momentum_start: str, momentum_end: str):
    """One phase: where it ends, and the group keys holding its start and end values."""
    return {"end_step": end_step, "start_lr": start, "end_lr": end,
            "start_momentum": momentum_start, "end_momentum": momentum_end}


class OneCycleLR(LRScheduler):
    """torch.optim.lr_scheduler.OneCycleLR."""

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: Literal["cos", "linear"] = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        if total_steps is not None:
            if total_steps <= 0 or not isinstance(total_steps, int):
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(
                    f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}"
                )
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")

        warmup_end = float(pct_start * self.total_steps) - 1
        last_step = self.total_steps - 1
        if three_phase:  # Smith's schedule: a symmetric triangle, then the annihilation
            self._schedule_phases = [
                _phase(warmup_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(float(2 * pct_start * self.total_steps) - 2,
                       "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                _phase(last_step, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:  # fastai's: up, then one long way down
            self._schedule_phases = [
                _phase(warmup_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(last_step, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]

        if pct_start < 0 or pct_start > 1 or not isinstance(pct_start, float):
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(
                f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}"
            )
        self._anneal_func_type = anneal_strategy

        max_lrs = per_group("max_lr", self.optimizer, max_lr)
        if last_epoch == -1:  # the three rates of each group live in the group itself
            for group, peak in zip(self.optimizer.param_groups, max_lrs, strict=True):
                group["initial_lr"] = peak / div_factor  # lr_init = lr_max / d
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor  # eta_min = lr_init/d_f

        self.cycle_momentum = cycle_momentum
        if self.cycle_momentum:
            if "momentum" not in self.optimizer.defaults and "betas" not in self.optimizer.defaults:
                raise ValueError(
                    "optimizer must support momentum or beta1 with `cycle_momentum` option "
                    "enabled"
                )
            self.use_beta1 = "betas" in self.optimizer.defaults
            max_momentums = per_group("max_momentum", optimizer, max_momentum)
            base_momentums = per_group("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for high, low, group in zip(max_momentums, base_momentums,
                                            optimizer.param_groups, strict=True):
                    set_momentum(group, high, self.use_beta1)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return anneal_cos(start, end, pct)
        return anneal_linear(start, end, pct)

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(
                f"Tried to step {step} times. The specified number of total steps is "
                f"{self.total_steps}"
            )
        lrs = []
        for group in self.optimizer.param_groups:
            phase_start = 0.0
            for index, phase in enumerate(self._schedule_phases):
                is_last = index == len(self._schedule_phases) - 1
                if step <= phase["end_step"] or is_last:
                    # p = (t - a_k) / (b_k - a_k), then anneal between the phase's two values
                    pct = (step - phase_start) / (phase["end_step"] - phase_start)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        momentum = self._anneal(group[phase["start_momentum"]],
                                                group[phase["end_momentum"]], pct)
                        set_momentum(group, momentum, self.use_beta1)
                    break
                phase_start = phase["end_step"]
        return lrs
