"""The submissions of the benchmark: each algorithm, its one search space, and its schedule.

The rules, after AlgoPerf's external-tuning track {cite}`dahl2023benchmarking`:

- **One search space per algorithm, for every workload.** The search tunes the peak learning
  rate (log-uniform), the weight decay (log-uniform), the warm-up fraction (uniform), and
  :math:`1-\\beta_1` and :math:`1-\\beta_2` (log-uniform) where the algorithm has them. Nothing
  else is tuned; every other argument keeps the value given here.
- **The same quasi-random trials for every workload.** :func:`trial_points` draws the first
  points of one scrambled Sobol sequence in five dimensions; trial ``i`` of an algorithm is the
  same point of its space on every workload.
- **Warm-up, then cosine decay to zero**, for every algorithm but Schedule-Free AdamW, which has
  its own warm-up and no schedule. (Rprop reads the rate only once, as its first step size, so
  the schedule does not reach it: a limit of the algorithm, said where the results are read.)
- **ASGD** starts averaging at half the budget (``t0``), and is judged on its averaged weights.

Left out, and why:

- **SparseAdam** accepts only sparse gradients; none of the three models has a sparse layer
  (the transformer's embedding has 48 rows and every batch touches all of them).
- **L-BFGS** needs the same loss at every evaluation inside one step, that is full batches; on
  mini-batches its curvature pairs compare gradients of different batches, and each step costs
  several forward and backward passes, so a step budget would not be the same budget.
- **Muon** alone refuses the biases, gains and embeddings: it enters as the Muon + AdamW pair
  (Muon on the hidden matrices, AdamW on everything else), the way it is meant to be used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

import optim_lessons.optimizers as ours
from optim_lessons.optimizers.multi import MultiOptimizer
from optim_lessons.optimizers.schedule_free import AdamWScheduleFree
from optim_lessons.schedulers import LambdaLR

#: The dimensions of the search, in the order of the Sobol points.
DIMENSIONS = ("lr", "weight_decay", "warmup", "one_minus_beta1", "one_minus_beta2")

#: Shared ranges: warm-up as a fraction of the budget, and 1 - beta.
WARMUP = (0.02, 0.1)
ONE_MINUS_BETA1 = (0.02, 0.2)  # beta1 from 0.8 to 0.98
ONE_MINUS_BETA2 = (0.002, 0.05)  # beta2 from 0.95 to 0.998
#: Weight decay: added to the gradient (L2, "coupled") or shrinking the weights by lr * wd
#: per step ("decoupled"); the two live on scales that differ by about the learning rate.
COUPLED_WD = (1e-5, 1e-2)
DECOUPLED_WD = (1e-3, 1.0)


@dataclass(frozen=True)
class Submission:
    """One algorithm with its search space.

    ``betas`` says how the tuned betas reach the optimizer: ``"betas"`` (a pair), ``"momentum"``
    (beta1 as SGD's momentum), ``"alpha"`` (beta2 as RMSprop's smoothing), or ``""`` (none).
    """

    name: str
    lr: tuple[float, float]
    weight_decay: tuple[float, float] | None
    betas: str = "betas"
    fixed: dict[str, Any] = field(default_factory=dict)
    schedule_free: bool = False
    note: str = ""

    def hyperparameters(self, point: Sequence[float]) -> dict[str, float]:
        """The settings at one point of the unit cube (five numbers in [0, 1))."""
        u = dict(zip(DIMENSIONS, point))
        settings = {"lr": _log_uniform(self.lr, u["lr"]),
                    "warmup": WARMUP[0] + (WARMUP[1] - WARMUP[0]) * u["warmup"]}
        if self.weight_decay is not None:
            settings["weight_decay"] = _log_uniform(self.weight_decay, u["weight_decay"])
        if self.betas in ("betas", "momentum"):
            settings["beta1"] = 1 - _log_uniform(ONE_MINUS_BETA1, u["one_minus_beta1"])
        if self.betas in ("betas", "alpha"):
            settings["beta2"] = 1 - _log_uniform(ONE_MINUS_BETA2, u["one_minus_beta2"])
        return {key: float(f"{value:.4g}") for key, value in settings.items()}

    def space(self) -> str:
        """The search space in one line, for the chapter's table."""
        parts = [f"lr {self.lr[0]:g}..{self.lr[1]:g}"]
        if self.weight_decay is not None:
            kind = "L2" if self.weight_decay == COUPLED_WD else "decoupled"
            parts.append(f"wd {self.weight_decay[0]:g}..{self.weight_decay[1]:g} ({kind})")
        if self.betas in ("betas", "momentum"):
            parts.append("momentum 0.8..0.98" if self.betas == "momentum" else "beta1 0.8..0.98")
        if self.betas in ("betas", "alpha"):
            parts.append("alpha 0.95..0.998" if self.betas == "alpha" else "beta2 0.95..0.998")
        return ", ".join(parts)


def _log_uniform(bounds: tuple[float, float], u: float) -> float:
    low, high = bounds
    return math.exp(math.log(low) + (math.log(high) - math.log(low)) * u)


#: Every submission, in the order the tables list them before ranking.
SUBMISSIONS: dict[str, Submission] = {
    s.name: s
    for s in (
        Submission("SGD", (3e-3, 3e-1), COUPLED_WD, "momentum", note="heavy-ball momentum"),
        Submission("Adam", (3e-4, 1e-2), COUPLED_WD),
        Submission("AdamW", (3e-4, 1e-2), DECOUPLED_WD),
        Submission("NAdam", (3e-4, 1e-2), COUPLED_WD),
        Submission("RAdam", (3e-4, 1e-2), COUPLED_WD),
        Submission("Adamax", (1e-3, 3e-2), COUPLED_WD),
        Submission("Adagrad", (3e-3, 3e-1), COUPLED_WD, ""),
        Submission("Adadelta", (0.1, 10.0), COUPLED_WD, ""),
        Submission("RMSprop", (1e-4, 3e-3), COUPLED_WD, "alpha"),
        Submission("Rprop", (1e-4, 1e-2), None, "", note="first step size; no schedule"),
        Submission("ASGD", (3e-3, 3e-1), COUPLED_WD, "", note="t0 = half the budget"),
        Submission("Adafactor", (1e-3, 1e-1), DECOUPLED_WD, ""),
        Submission("Lion", (3e-5, 1e-3), (3e-3, 3.0)),
        Submission("Muon+AdamW", (3e-4, 1e-2), DECOUPLED_WD,
                   note="Muon on hidden matrices, AdamW on the rest, one rate (RMS-matched)"),
        Submission("SF-AdamW", (1e-3, 3e-2), DECOUPLED_WD, schedule_free=True,
                   note="Schedule-Free AdamW, its own warm-up, no schedule"),
    )
}

#: Algorithms of torch.optim that do not enter, and why (printed by the chapter).
LEFT_OUT = {
    "SparseAdam": "accepts only sparse gradients; no model here has a sparse layer",
    "LBFGS": "needs full batches (the same loss at every evaluation of a step), and each step "
             "costs several passes, so a step budget would not be the same budget",
    "Muon (alone)": "refuses biases, gains and embeddings; it enters as the Muon+AdamW pair",
}


def trial_points(trials: int) -> list[list[float]]:
    """The first ``trials`` points of one scrambled Sobol sequence in 5 dimensions (seed 0)."""
    engine = torch.quasirandom.SobolEngine(len(DIMENSIONS), scramble=True, seed=0)
    return engine.draw(trials, dtype=torch.float64).tolist()


def build_optimizer(
    submission: Submission, settings: dict[str, float], model: nn.Module, steps: int,
    head_ids: set[int],
) -> torch.optim.Optimizer:
    """The book's from-scratch optimizer for ``submission`` at ``settings``."""
    lr, wd = settings["lr"], settings.get("weight_decay", 0.0)
    params = list(model.parameters())
    betas = (settings.get("beta1", 0.9), settings.get("beta2", 0.999))
    name = submission.name
    if name == "SGD":
        return ours.SGD(params, lr=lr, momentum=betas[0], weight_decay=wd)
    if name in ("Adam", "AdamW", "NAdam", "RAdam", "Adamax", "Lion"):
        return getattr(ours, name)(params, lr=lr, betas=betas, weight_decay=wd)
    if name in ("Adagrad", "Adadelta", "Adafactor"):
        return getattr(ours, name)(params, lr=lr, weight_decay=wd)
    if name == "RMSprop":
        return ours.RMSprop(params, lr=lr, alpha=betas[1], weight_decay=wd)
    if name == "Rprop":
        return ours.Rprop(params, lr=lr)
    if name == "ASGD":
        return ours.ASGD(params, lr=lr, weight_decay=wd, t0=steps // 2)
    if name == "Muon+AdamW":
        hidden = [p for p in params if p.ndim == 2 and id(p) not in head_ids]
        rest = [p for p in params if p.ndim != 2 or id(p) in head_ids]
        muon = ours.Muon(hidden, lr=lr, weight_decay=wd, momentum=betas[0],
                         adjust_lr_fn="match_rms_adamw")
        return MultiOptimizer(muon, ours.AdamW(rest, lr=lr, betas=betas, weight_decay=wd))
    if name == "SF-AdamW":
        return AdamWScheduleFree(params, lr=lr, betas=betas, weight_decay=wd,
                                 warmup_steps=round(settings["warmup"] * steps))
    raise ValueError(f"no submission called {name!r}; known: {sorted(SUBMISSIONS)}")


def warmup_cosine(warmup_steps: int, steps: int) -> Callable[[int], float]:
    """The factor of the peak rate at each step: linear warm-up from ``1/warmup_steps`` to 1
    over ``warmup_steps``, then half a cosine down to 0 at ``steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def build_schedule(
    submission: Submission, settings: dict[str, float], optimizer: torch.optim.Optimizer,
    steps: int,
) -> LambdaLR | None:
    """The book's ``LambdaLR`` with :func:`warmup_cosine`, or ``None`` for a schedule-free
    algorithm."""
    if submission.schedule_free:
        return None
    warmup_steps = max(1, round(settings["warmup"] * steps))
    return LambdaLR(optimizer, warmup_cosine(warmup_steps, steps))
