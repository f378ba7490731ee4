"""Figures for the chapter "Optimizers on many machines".

- :func:`plot_state_per_rank`: how many optimizer-state numbers each rank holds, one group of
  bars per way of sharding (ZeRO-1 by whole tensors, FSDP2 by rows of every tensor);
- :func:`plot_bytes_per_step`: the bytes each optimizer itself sends per step and rank when its
  parameters are sharded.

>>> ax = plot_state_per_rank({"ZeRO-1": [10, 2], "FSDP2": [6, 6]})
>>> ax.get_title()
'Optimizer state per rank (2 ranks)'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes

from optim_lessons.playground.plots import _color, _new_axes

__all__ = ["plot_bytes_per_step", "plot_state_per_rank"]


def plot_state_per_rank(numbers: Mapping[str, Sequence[int]], *, ax: Axes | None = None) -> Axes:
    """One group of bars per sharding scheme, one bar per rank: state numbers held there."""
    ax = _new_axes(ax)
    schemes = list(numbers)
    world_size = len(next(iter(numbers.values())))
    width = 0.8 / world_size
    x = np.arange(len(schemes))
    for r in range(world_size):
        heights = [numbers[s][r] for s in schemes]
        bars = ax.bar(x + (r - (world_size - 1) / 2) * width, heights, width, color=_color(r, None))
        bars.set_label(f"rank {r}")
        ax.bar_label(bars, labels=[f"{h:,}" for h in heights], fontsize=8)
    ax.set_xticks(x, schemes)
    ax.set_ylabel("state numbers on the rank")
    ax.set_title(f"Optimizer state per rank ({world_size} ranks)")
    ax.legend()
    return ax


def plot_bytes_per_step(sent: Mapping[str, float], *, ax: Axes | None = None) -> Axes:
    """Horizontal bars: bytes one rank's optimizer sends per step, optimizers in given order."""
    ax = _new_axes(ax)
    names = list(sent)
    values = [sent[n] for n in names]
    colors = [_color(0 if v > 0 else 5, None) for v in values]
    bars = ax.barh(names, values, color=colors)
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8, padding=2)
    ax.invert_yaxis()
    ax.set_xlabel("bytes sent per step by one rank's optimizer (beyond FSDP2's own)")
    ax.set_title("What each optimizer needs from the other ranks")
    ax.set_xlim(0, max(values) * 1.2 if max(values) > 0 else 1)
    return ax
