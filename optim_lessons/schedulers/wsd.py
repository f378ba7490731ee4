r"""Warmup-stable-decay (WSD): warm up, hold the rate constant, and decay only at the end.

Papers: S. Hu et al., "MiniCPM: Unveiling the Potential of Small Language Models with
Scalable Training Strategies" (2024), https://arxiv.org/abs/2404.06395 (section 4.2), and
A. Hägele et al., "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations"
(NeurIPS 2024), https://arxiv.org/abs/2405.18392 (section 3, the "cooldown").

With base rate $\gamma_0$, $W$ warm-up steps, $S$ stable steps, $D$ decay steps, floor ratio
$m$ = ``min_lr_ratio`` and decay progress $p = (t - W - S)/D$:

$$
\gamma_t = \gamma_0 \cdot \begin{cases}
    t / W & 0 \le t < W \quad\text{(warm-up, linear from 0)} \\
    1 & W \le t < W + S \quad\text{(stable)} \\
    m + (1 - m)\, d(p) & W + S \le t < W + S + D \quad\text{(decay)} \\
    m & t \ge W + S + D
\end{cases}
$$

with the decay shape $d$ falling from $d(0) = 1$ to $d(1) = 0$:

- ``"linear"``: $d(p) = 1 - p$;
- ``"cosine"``: $d(p) = \tfrac12 (1 + \cos \pi p)$;
- ``"1-sqrt"``: $d(p) = 1 - \sqrt{p}$, which Hägele et al. found best: it leaves the high rate
  fast and spends the decay near the floor.

Why it is used: a cosine schedule must know the training length in advance, and stopping early
leaves the rate high. WSD's stable phase does not depend on the length, so one run can be
continued, and a decay branched off any checkpoint of the stable phase gives a finished model
for that budget (Hu et al.; Hägele et al. find a decay of 10-20 % of the steps matches cosine).
MiniCPM decays exponentially; the shapes here are Hägele et al.'s.

torch.optim has no WSD scheduler; its nearest is ``SequentialLR`` of ``LinearLR``,
``ConstantLR`` and ``PolynomialLR``, which cannot start the warm-up from exactly 0 (LinearLR
requires ``start_factor > 0``). This is a closed form of $t$ (``get_lr`` and
``_get_closed_form_lr`` agree), so like LambdaLR it overwrites, and does not chain with, other
schedulers.
"""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor
from torch.optim import Optimizer

from optim_lessons.schedulers.base import LRScheduler

__all__ = ["WarmupStableDecayLR", "wsd_factor", "DECAY_SHAPES"]

DecayShape = Literal["linear", "cosine", "1-sqrt"]
DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


def _decay(shape: str, progress: float) -> float:
    """The decay shape d(p), from 1 at p = 0 to 0 at p = 1."""
    if shape == "linear":
        return 1.0 - progress  # d(p) = 1 - p
    if shape == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))  # d(p) = (1 + cos(pi p)) / 2
    return 1.0 - math.sqrt(progress)  # d(p) = 1 - sqrt(p)


def wsd_factor(
    t: int,
    warmup_steps: int,
    stable_steps: int,
    decay_steps: int,
    min_lr_ratio: float = 0.0,
    decay_shape: DecayShape = "linear",
) -> float:
    """The WSD multiplier $\\gamma_t / \\gamma_0$ at step ``t`` (the closed form above)."""
    if t < warmup_steps:
        return t / warmup_steps  # warm-up: t / W
    decay_start = warmup_steps + stable_steps
    if t < decay_start:
        return 1.0  # stable
    if t < decay_start + decay_steps:
        progress = (t - decay_start) / decay_steps  # p = (t - W - S) / D
        return min_lr_ratio + (1.0 - min_lr_ratio) * _decay(decay_shape, progress)
    return min_lr_ratio  # after the decay: the floor


class WarmupStableDecayLR(LRScheduler):
    """Warmup-stable-decay: $\\gamma_t = \\gamma_0 \\cdot$ ``wsd_factor(t, ...)``."""

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int,
        stable_steps: int,
        decay_steps: int,
        min_lr_ratio: float = 0.0,
        decay_shape: DecayShape = "linear",
        last_epoch: int = -1,
    ) -> None:
        for name, value in (("warmup_steps", warmup_steps), ("stable_steps", stable_steps),
                            ("decay_steps", decay_steps)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"Expected non-negative integer {name}, but got {value}")
        if not 0.0 <= min_lr_ratio <= 1.0:
            raise ValueError(f"Expected min_lr_ratio between 0 and 1, but got {min_lr_ratio}")
        if decay_shape not in DECAY_SHAPES:
            raise ValueError(
                f"decay_shape must be one of {', '.join(map(repr, DECAY_SHAPES))}, "
                f"instead got {decay_shape!r}"
            )
        self.warmup_steps = warmup_steps
        self.stable_steps = stable_steps
        self.decay_steps = decay_steps
        self.min_lr_ratio = min_lr_ratio
        self.decay_shape = decay_shape
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        return self._get_closed_form_lr()

    def _get_closed_form_lr(self) -> list[float | Tensor]:
        factor = wsd_factor(self.last_epoch, self.warmup_steps, self.stable_steps,
                            self.decay_steps, self.min_lr_ratio, self.decay_shape)
        return [base_lr * factor for base_lr in self.base_lrs]
