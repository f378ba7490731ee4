"""Figures for the code around the optimizer (the chapter "Optimizers in practice").

Each function draws one thing a training script can get right or wrong, from numbers the
chapter has already recorded:

- :func:`plot_gradient_norms`: the gradient norm of every step against a clipping threshold;
- :func:`plot_resumed_runs`: an uninterrupted run beside runs resumed from a checkpoint, and
  how far each resumed run's loss lies from the uninterrupted one;
- :func:`plot_restart_spikes`: the per-batch loss of a run that keeps one optimizer beside one
  that creates a new optimizer every epoch;
- :func:`plot_group_rates`: the learning rate of each param group over the steps of a schedule;
- :func:`plot_idle_parameter`: one parameter that takes no part in the loss, under
  ``zero_grad(set_to_none=True)`` and ``set_to_none=False``.

They share the palette, the title and the legend habits of
:mod:`optim_lessons.playground.plots`, and each returns the :class:`~matplotlib.axes.Axes`
(or, for two panels, the :class:`~matplotlib.figure.Figure`) it drew on.

>>> ax = plot_gradient_norms([3.0, 2.0, 0.5, 0.4], max_norm=1.0)
>>> ax.get_title()
'Gradient norm before clipping: 2 of 4 steps clipped'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from optim_lessons.playground.plots import FIGSIZE, _color, _new_axes, smooth

__all__ = [
    "plot_gradient_norms",
    "plot_group_rates",
    "plot_idle_parameter",
    "plot_restart_spikes",
    "plot_resumed_runs",
]


def _array(values: Sequence[float]) -> np.ndarray:
    array = np.asarray([float(value) for value in values], dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError("expected a non-empty sequence of numbers")
    return array


def plot_gradient_norms(
    norms: Sequence[float], max_norm: float, *, ax: Axes | None = None
) -> Axes:
    """The global gradient norm at every step (what ``clip_grad_norm_`` returns) on a log axis,
    the threshold ``max_norm`` as a dashed line, and the clipped steps marked.

    A step is clipped when its norm is above ``max_norm``: ``clip_grad_norm_`` then scales every
    gradient by ``max_norm / (norm + 1e-6)``, so the step the optimizer sees has norm
    ``max_norm``. The title counts the clipped steps.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm!r}")
    values = _array(norms)
    steps = np.arange(1, values.size + 1)
    clipped = values > max_norm
    ax = _new_axes(ax)
    ax.plot(steps, values, color=_color(3, None), linewidth=1.0, label="norm before clipping")
    ax.plot(steps, np.minimum(values, max_norm), color=_color(1, None), linewidth=1.0,
            alpha=0.6, label="norm the optimizer sees")
    ax.axhline(max_norm, color=_color(0, None), linestyle="--", label=f"max_norm = {max_norm:g}")
    if clipped.any():
        ax.scatter(steps[clipped], values[clipped], s=10, color=_color(0, None), zorder=3,
                   label="clipped steps")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("global gradient norm")
    ax.set_title(f"Gradient norm before clipping: {int(clipped.sum())} of {values.size} "
                 "steps clipped")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_resumed_runs(
    uninterrupted: Sequence[float],
    resumed: Mapping[str, Sequence[float]],
    resume_step: int,
    *,
    window: int = 20,
    floor: float = 1e-4,
) -> Figure:
    """Two panels. Left: the per-batch training loss (a trailing mean over ``window`` batches)
    of the uninterrupted run and of each resumed run, with the step where the checkpoint was
    loaded marked. Right: ``|loss - uninterrupted loss|`` per batch on a symmetric-log axis, so
    that a difference of exactly zero can be drawn (values below ``floor`` are drawn linearly);
    the axis starts a little below zero, so that a run that stays at zero shows as a line.

    Every resumed run must have as many losses as the uninterrupted one.
    """
    reference = _array(uninterrupted)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.0, 4.0), constrained_layout=True)
    steps = np.arange(1, reference.size + 1)
    left.plot(steps, smooth(reference, window), color=_color(1, None), linewidth=2.5,
              label="uninterrupted")
    for index, (label, losses) in enumerate(resumed.items()):
        values = _array(losses)
        if values.size != reference.size:
            raise ValueError(f"{label!r} has {values.size} losses, the uninterrupted run "
                             f"{reference.size}")
        color = _color(index + 3, None)
        style = "--" if index % 2 == 0 else ":"
        left.plot(steps, smooth(values, window), color=color, linestyle=style, linewidth=1.5,
                  label=label)
        right.plot(steps, np.abs(values - reference), color=color, linewidth=1.2, label=label)
    for ax in (left, right):
        ax.axvline(resume_step + 0.5, color="grey", linewidth=1, alpha=0.7)
        ax.set_xlabel("step")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small")
    left.set_ylabel(f"training loss (mean of {window} batches)")
    left.set_title("Training loss; the grey line is the resume")
    right.set_yscale("symlog", linthresh=floor)
    right.set_ylim(bottom=-0.2 * floor)
    right.axhline(0.0, color="grey", linewidth=0.8)
    right.set_ylabel("|loss - uninterrupted loss|")
    right.set_title("Distance from the uninterrupted run")
    return fig


def plot_restart_spikes(
    losses: Mapping[str, Sequence[float]],
    steps_per_epoch: int,
    *,
    window: int = 5,
    ax: Axes | None = None,
) -> Axes:
    """The per-batch training loss of each run: faint, as recorded, and bold, as a trailing mean
    over ``window`` batches (short, so that a jump after a boundary still shows). A dotted line
    marks every epoch boundary: where a run that builds a new optimizer each epoch starts from
    empty state."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be at least 1, got {steps_per_epoch!r}")
    ax = _new_axes(ax)
    longest = 0
    for index, (label, values) in enumerate(losses.items()):
        array = _array(values)
        longest = max(longest, array.size)
        steps = np.arange(1, array.size + 1)
        color = _color(index + 3, None)
        ax.plot(steps, array, color=color, linewidth=0.7, alpha=0.25)
        ax.plot(steps, smooth(array, window), color=color, linewidth=1.6,
                label=f"{label} (mean of {window} batches)")
    for boundary in range(steps_per_epoch, longest, steps_per_epoch):
        ax.axvline(boundary + 0.5, color="grey", linestyle=":", linewidth=1.2)
    ax.set_xlabel("step (dotted lines: epoch boundaries)")
    ax.set_ylabel("training loss of the batch")
    ax.set_title("Per-batch loss: one optimizer against a new one every epoch")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_group_rates(rates: Mapping[str, Sequence[float]], *, ax: Axes | None = None) -> Axes:
    """The learning rate of each param group at every step, on a log axis. A scheduler scales
    each group from its own base rate, so on this axis the curves run parallel."""
    ax = _new_axes(ax)
    for index, (label, values) in enumerate(rates.items()):
        array = _array(values)
        ax.plot(np.arange(array.size), array, color=_color(index + 3, None), linewidth=2,
                label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate (group['lr'])")
    ax.set_title("One schedule, one learning rate per param group")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_idle_parameter(
    paths: Mapping[str, Sequence[float]], active_steps: int = 1, *, ax: Axes | None = None
) -> Axes:
    """The value of one parameter after every step, for each way of zeroing gradients. The
    parameter takes part in the loss for the first ``active_steps`` steps only; the shaded
    span marks them."""
    ax = _new_axes(ax, figsize=(FIGSIZE[0], 3.6))
    for index, (label, values) in enumerate(paths.items()):
        array = _array(values)
        ax.plot(np.arange(array.size), array, marker="o", markersize=3,
                color=_color(index + 3, None), label=label)
    ax.axvspan(0, active_steps, color="grey", alpha=0.15, label="in the loss")
    ax.set_xlabel("step (0: the start)")
    ax.set_ylabel("value of the idle parameter")
    ax.set_title("A parameter that leaves the loss: gradient None against zeros")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return ax
