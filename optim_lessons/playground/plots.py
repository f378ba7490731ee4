"""The book's figures: trajectories on surfaces, loss curves, training histories (animations of
trajectories are in :mod:`optim_lessons.playground.animations`).

Every chapter draws with these functions, so every figure in the book looks the same and
carries a title, labelled axes and a legend when it shows more than one line.

Runs are coloured from :data:`COLORS` in order, the same in every function, so the third run
of a dict is orange on a contour map and on a loss curve alike; pass ``colors=`` to choose.
Single-panel functions return the :class:`~matplotlib.axes.Axes` they drew on (pass ``ax=`` to
draw into a panel of your own figure); :func:`plot_history` returns the two-panel
:class:`~matplotlib.figure.Figure`. In a notebook, assign the result (``ax = plot_losses(...)``)
so that the returned object is not printed under the figure. (A trailing ``;`` hides it in
Jupyter too, but not when nbval re-runs the notebook: its kernel keeps no input history, which
is what IPython reads to find the ``;``.)

>>> import torch
>>> from optim_lessons.playground.surfaces import run_on_surface
>>> from optim_lessons.playground.plots import plot_trajectories
>>> runs = {
...     "SGD": run_on_surface("bowl", torch.optim.SGD, steps=50, lr=0.09),
...     "Adam": run_on_surface("bowl", torch.optim.Adam, steps=50, lr=0.3),
... }
>>> ax = plot_trajectories("bowl", runs, title="SGD and Adam on the bowl")
>>> ax.get_title()
'SGD and Adam on the bowl'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import colors
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from optim_lessons.playground.surfaces import Surface, Trajectory, get_surface

__all__ = [
    "COLORS",
    "default_title",
    "plot_1d_descent",
    "plot_curves",
    "plot_history",
    "plot_losses",
    "plot_surface",
    "plot_trajectories",
    "smooth",
]

#: The figure size every single-panel figure uses (inches); small keeps notebooks small.
FIGSIZE = (7.0, 4.0)

#: Line colours for the runs of one figure, in order. The same palette serves the contour maps
#: and the loss curves, so a run keeps its colour from one panel to the next. Pass ``colors=``
#: to any plotting function to choose others (for example ``colors=COLORS[2:]`` for a panel
#: that shows the third and fourth runs of a neighbouring panel).
COLORS = ("#e6194b", "#000000", "#f58231", "#4363d8", "#f032e6", "#00a0a0", "#911eb4", "#9a6324")


def _color(index: int, colors: Sequence[str] | None) -> str:
    palette = colors or COLORS
    return palette[index % len(palette)]


TrajectoryLike = Trajectory | Tensor | np.ndarray
Runs = Mapping[str, Any] | Sequence[Any] | Trajectory | Tensor


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = FIGSIZE) -> Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


def _as_mapping(runs: Runs) -> dict[str, Any]:
    """Accept a dict of runs, a single run, or a list of runs (named by their optimizer)."""
    if isinstance(runs, Mapping):
        return dict(runs)
    if isinstance(runs, (Trajectory, Tensor, np.ndarray)):
        runs = [runs]
    named: dict[str, Any] = {}
    for index, run in enumerate(runs):
        name = getattr(run, "optimizer", None) or f"run {index + 1}"
        while name in named:
            name += "'"
        named[name] = run
    return named


def _points(run: TrajectoryLike) -> np.ndarray:
    points = run.points if isinstance(run, Trajectory) else run
    if isinstance(points, Tensor):
        points = points.detach().to("cpu", torch.float64).numpy()
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"a trajectory needs shape (steps + 1, 2), got {points.shape}")
    return points


def _is_diverged(points: np.ndarray, surface: Surface) -> bool:
    if not np.isfinite(points).all():
        return True
    (x0, x1), (y0, y1) = surface.xlim, surface.ylim
    span = max(x1 - x0, y1 - y0)
    return bool(np.abs(points[-1]).max() > 1e3 * span)


def smooth(values: Sequence[float] | Tensor | np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` values (shorter windows at the very start).

    >>> smooth([1.0, 3.0, 5.0, 7.0], window=2).tolist()
    [1.0, 2.0, 4.0, 6.0]
    """
    array = np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values, dtype=float)
    if window <= 1 or array.size == 0:
        return array
    sums = np.cumsum(np.insert(array, 0, 0.0))
    counts = np.minimum(np.arange(1, array.size + 1), window)
    return (sums[1:] - sums[np.arange(1, array.size + 1) - counts]) / counts


def default_title(surface: Surface | str, max_length: int = 64) -> str:
    """The surface's name and, when it fits on one line, its formula."""
    surface = get_surface(surface)
    # Roughly what the reader sees of the formula: LaTeX commands and braces take no room.
    shown = re.sub(r"\\[a-zA-Z]+|[{}]", "", surface.formula)
    if len(surface.title) + len(shown) <= max_length:
        return f"{surface.title}: ${surface.formula}$"
    return surface.title


def plot_surface(
    surface: Surface | str,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    levels: int = 25,
    resolution: int = 200,
    cmap: str = "viridis",
    show_minima: bool = True,
    colorbar: bool = False,
    lines: bool = False,
) -> Axes:
    """Filled contours of ``surface`` over its plot window, minima marked with stars.

    The title defaults to :func:`default_title` (pass ``title=""`` for none). ``lines=True``
    adds thin contour lines between the bands (they roughly triple the size of a stored PNG).

    Surfaces with ``log_scale=True`` are drawn as contours of :math:`f - f^*` on a log scale, so
    that a valley whose floor is a thousand times lower than its walls still shows structure.
    """
    surface = get_surface(surface)
    ax = _new_axes(ax)
    grid_x, grid_y, values = (t.numpy() for t in surface.grid(resolution))
    if surface.log_scale:
        gaps = values - surface.min_value
        top = float(gaps.max())
        floor = top * 1e-6
        bounds = np.geomspace(floor, top, levels)
        norm = colors.LogNorm(vmin=floor, vmax=top)
        filled = ax.contourf(
            grid_x, grid_y, np.clip(gaps, floor, top), levels=bounds, norm=norm, cmap=cmap
        )
        bar_label = r"$f - f^*$ (log scale)"
    else:
        filled = ax.contourf(grid_x, grid_y, values, levels=levels, cmap=cmap)
        bar_label = r"$f$"
    if lines:
        ax.contour(filled, levels=filled.levels[::2], colors="k", linewidths=0.3, alpha=0.4)
    if colorbar:
        ax.figure.colorbar(filled, ax=ax, label=bar_label)
    if show_minima:
        minima = np.asarray(surface.minima)
        ax.plot(
            minima[:, 0],
            minima[:, 1],
            linestyle="none",
            marker="*",
            markersize=13,
            color="gold",
            markeredgecolor="black",
            label="minimum" if len(minima) == 1 else "minima",
        )
    ax.set_xlim(*surface.xlim)
    ax.set_ylim(*surface.ylim)
    ax.set_xlabel("$x$")
    ax.set_ylabel("$y$")
    ax.set_title(title if title is not None else default_title(surface))
    return ax


def plot_trajectories(
    surface: Surface | str,
    trajectories: Runs,
    ax: Axes | None = None,
    title: str | None = None,
    *,
    markers: bool = True,
    colorbar: bool = False,
    legend_loc: str = "best",
    colors: Sequence[str] | None = None,
) -> Axes:
    """Draw each trajectory on the surface's contour map, with the start and minimum marked.

    Args:
        surface: a :class:`~optim_lessons.playground.surfaces.Surface` or its name.
        trajectories: ``{label: Trajectory or (steps + 1, 2) tensor}``, or one trajectory, or a
            list of them (labelled by their optimizer).
        ax: draw into this Axes instead of a new figure.
        title: the figure title (default: the surface's name and formula).
        markers: draw a dot at every iterate (turn off for runs of thousands of steps).
        colors: the runs' line colours, in order (default :data:`COLORS`).

    A run that diverges keeps its label, with "(diverged)" added; the window stays on the
    surface's plot limits, so the part of the path outside it is simply not shown.
    """
    surface = get_surface(surface)
    ax = plot_surface(surface, ax, title=title, colorbar=colorbar)
    runs = _as_mapping(trajectories)
    start_points = []
    for index, (label, run) in enumerate(runs.items()):
        points = _points(run)
        color = _color(index, colors)
        name = f"{label} (diverged)" if _is_diverged(points, surface) else label
        ax.plot(
            points[:, 0],
            points[:, 1],
            color=color,
            linewidth=1.6,
            marker="o" if markers else None,
            markersize=2.5,
            label=name,
        )
        start_points.append(tuple(points[0]))
    for start in dict.fromkeys(start_points):  # each distinct start once
        ax.plot(
            *start,
            linestyle="none",
            marker="o",
            markersize=8,
            color="white",
            markeredgecolor="black",
            label="start" if start == start_points[0] else None,
        )
    ax.legend(loc=legend_loc, fontsize="small", framealpha=0.85)
    return ax


def _curve(run: Any) -> tuple[np.ndarray, str]:
    """The values a loss plot draws for one run, and what they are."""
    if isinstance(run, Trajectory):
        return run.gaps.numpy(), r"$f(x, y) - f^*$"
    loss = getattr(run, "loss", None)
    if loss is not None:  # a training History: the loss of every step
        return np.asarray(loss, dtype=float), "training loss"
    if isinstance(run, Tensor):
        return run.detach().to("cpu", torch.float64).numpy(), "loss"
    return np.asarray(run, dtype=float), "loss"


def plot_losses(
    runs: Runs,
    ax: Axes | None = None,
    title: str | None = None,
    *,
    log: bool = True,
    smooth_window: int = 1,
    xlabel: str = "step",
    ylabel: str | None = None,
    colors: Sequence[str] | None = None,
) -> Axes:
    """Loss against step for several runs, on a log scale by default.

    ``runs`` maps labels to :class:`~.surfaces.Trajectory` objects (drawn as the
    gap :math:`f - f^*`, which reaches 0 at the minimum), training histories (their per-step
    ``loss``) or plain sequences of numbers. ``smooth_window`` averages over that many steps.
    """
    ax = _new_axes(ax)
    named = _as_mapping(runs)
    kinds = set()
    for index, (label, run) in enumerate(named.items()):
        values, kind = _curve(run)
        kinds.add(kind)
        values = smooth(values, smooth_window)
        if log:  # a gap of exactly 0 (or a rounding-level negative one) has no logarithm;
            # a diverged run's astronomic values would only squash the rest of the plot
            values = np.where(
                np.isfinite(values) & (values < 1e30), np.maximum(values, 1e-16), np.nan
            )
        ax.plot(
            np.arange(values.size),
            values,
            color=_color(index, colors),
            linewidth=1.5,
            label=label,
        )
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or (kinds.pop() if len(kinds) == 1 else "loss"))
    ax.set_title(title or "Loss against step")
    if len(named) > 1:
        ax.legend(fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    return ax


def plot_history(
    histories: Mapping[str, Any],
    *,
    title: str | None = None,
    smooth_window: int = 50,
    show_train_accuracy: bool = False,
    log_loss: bool = False,
    figsize: tuple[float, float] = (11.0, 4.0),
    colors: Sequence[str] | None = None,
) -> Figure:
    """Two panels for real training runs: the smoothed training loss per step, and the test
    accuracy after every epoch.

    ``histories`` maps labels to ``optim_lessons.training.History`` objects (anything with a
    per-step ``loss`` and a per-epoch ``test_accuracy``; ``train_accuracy`` is drawn dashed
    when ``show_train_accuracy=True``).
    """
    figure, (loss_ax, accuracy_ax) = plt.subplots(1, 2, figsize=figsize)
    for index, (label, history) in enumerate(histories.items()):
        color = _color(index, colors)
        loss = np.asarray(history.loss, dtype=float)
        loss_ax.plot(np.arange(loss.size), loss, color=color, alpha=0.15, linewidth=0.8)
        loss_ax.plot(
            np.arange(loss.size),
            smooth(loss, smooth_window),
            color=color,
            linewidth=1.6,
            label=label,
        )
        test_accuracy = np.asarray(history.test_accuracy, dtype=float)
        epochs = np.arange(1, test_accuracy.size + 1)
        accuracy_ax.plot(
            epochs,
            test_accuracy,
            color=color,
            marker="o",
            markersize=3.5,
            label=f"{label} (test)" if show_train_accuracy else label,
        )
        if show_train_accuracy:
            train_accuracy = np.asarray(history.train_accuracy, dtype=float)
            accuracy_ax.plot(
                np.arange(1, train_accuracy.size + 1),
                train_accuracy,
                color=color,
                linestyle="--",
                label=f"{label} (train)",
            )
    if log_loss:
        loss_ax.set_yscale("log")
    loss_ax.set_xlabel("step (minibatch)")
    loss_ax.set_ylabel("training loss (cross-entropy)")
    loss_ax.set_title(f"Training loss (moving average over {smooth_window} steps)")
    accuracy_ax.set_xlabel("epoch")
    accuracy_ax.set_ylabel("test accuracy")
    accuracy_ax.set_title("Test accuracy after each epoch")
    for ax in (loss_ax, accuracy_ax):
        ax.grid(True, alpha=0.3)
        if len(histories) > 1 or (ax is accuracy_ax and show_train_accuracy):
            ax.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    ax: Axes | None = None,
    logx: bool = False,
    logy: bool = False,
    marker: str | None = "o",
    colors: Sequence[str] | None = None,
) -> Axes:
    """A plain line plot of ``{label: (xs, ys)}``: for sweeps (loss against learning rate,
    gradient variance against batch size) and schedules (learning rate against step)."""
    ax = _new_axes(ax)
    for index, (label, (xs, ys)) in enumerate(curves.items()):
        ax.plot(
            np.asarray(xs, dtype=float),
            np.asarray(ys, dtype=float),
            marker=marker,
            markersize=4,
            color=_color(index, colors),
            label=label,
        )
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize="small")
    return ax


def plot_1d_descent(
    function: Callable[[Tensor], Tensor],
    paths: Mapping[str, Sequence[float] | Tensor] | Sequence[float] | Tensor,
    ax: Axes | None = None,
    title: str | None = None,
    *,
    xlim: tuple[float, float] | None = None,
    xlabel: str = "$x$",
    ylabel: str = "$f(x)$",
    colors: Sequence[str] | None = None,
) -> Axes:
    """Draw a function of one variable and the iterates of descent runs on it.

    ``paths`` maps a label (say ``"lr = 0.1"``) to the sequence of iterates
    :math:`x_0, x_1, \\ldots`; each iterate is a dot on the curve, joined to the next by a thin
    line, so an overshooting run visibly jumps from one wall to the other. ``function`` takes a
    float64 tensor of x values and returns the same shape.
    """
    ax = _new_axes(ax)
    named = dict(paths) if isinstance(paths, Mapping) else {"iterates": paths}
    arrays = {
        label: np.asarray(p.detach().cpu() if isinstance(p, Tensor) else p, dtype=float)
        for label, p in named.items()
    }
    if xlim is None:
        finite = np.concatenate([a[np.isfinite(a)] for a in arrays.values()])
        low, high = float(finite.min()), float(finite.max())
        margin = 0.15 * max(high - low, 1.0)
        xlim = (low - margin, high + margin)
    xs = torch.linspace(*xlim, 400, dtype=torch.float64)
    with torch.no_grad():
        ys = function(xs).numpy()
    ax.plot(xs.numpy(), ys, color="black", linewidth=1.2, label="$f$")
    for index, (label, iterates) in enumerate(arrays.items()):
        with torch.no_grad():
            values = function(torch.as_tensor(iterates, dtype=torch.float64)).numpy()
        color = _color(index, colors)
        ax.plot(
            iterates,
            values,
            color=color,
            linewidth=0.8,
            alpha=0.7,
            marker="o",
            markersize=4,
            label=label,
        )
        ax.plot(
            iterates[:1],
            values[:1],
            linestyle="none",
            marker="s",
            markersize=7,
            color=color,
            markeredgecolor="black",
        )
    ax.set_xlim(*xlim)
    low, high = float(ys.min()), float(ys.max())
    ax.set_ylim(low - 0.05 * (high - low), high + 0.1 * (high - low))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Gradient descent in one dimension (squares: starts)")
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return ax
