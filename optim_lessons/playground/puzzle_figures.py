"""Figures, animations and the live explorer for chapter 1's jigsaw puzzle.

The puzzle itself (the picture, the differentiable table, the loss and ``Puzzle.solve``) lives in
:mod:`optim_lessons.playground.puzzle`; this module only draws what a solve recorded.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.animation import FuncAnimation, HTMLWriter
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from optim_lessons.playground.puzzle import (
    DEFAULT_GUIDES,
    Puzzle,
    SolveRecord,
    _one_thread_on_cpu,
)

__all__ = [
    "PuzzleExplorer",
    "animate_solve",
    "draw_hints",
    "frame_steps",
    "plot_attention",
    "plot_slide",
    "plot_solve_losses",
    "puzzle_explorer",
    "show_tables",
]


# -- figures ---------------------------------------------------------------------------------------


def _draw_table(ax: Axes, puzzle: Puzzle, image: np.ndarray, title: str) -> Any:
    shown = ax.imshow(image, extent=puzzle.extent, interpolation="nearest")
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel("x (pieces)")
    ax.set_ylabel("y (pieces)")
    ticks = np.arange(-puzzle.margin, puzzle.grid + puzzle.margin + 1)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.tick_params(labelsize="small")
    return shown


def _positions_of(item: Tensor | SolveRecord | None) -> Tensor | None:
    if isinstance(item, SolveRecord):
        return item.positions[-1]
    return item


def show_tables(
    puzzle: Puzzle,
    tables: Mapping[str, Tensor | SolveRecord | None] | None = None,
    *,
    lid: bool = True,
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """The lid beside one table per entry of ``tables`` (``{title: positions or record}``;
    ``None`` means the current positions). By default: the lid and the scrambled table."""
    tables = dict(tables) if tables is not None else {"The scrambled table": puzzle.start}
    panels = (1 if lid else 0) + len(tables)
    figure, axes = plt.subplots(1, panels, figsize=figsize or (3.0 * panels, 3.3), squeeze=False)
    axes = list(axes[0])
    if lid:
        _draw_table(axes.pop(0), puzzle, puzzle.lid_image(), "The lid")
    for ax, (label, item) in zip(axes, tables.items(), strict=True):
        positions = _positions_of(item)
        positions = puzzle.positions if positions is None else positions.to(puzzle.home)
        placed = puzzle.pieces_in_place(positions)
        loss = float(puzzle.loss(positions).detach())
        _draw_table(ax, puzzle, puzzle.table_image(positions),
                    f"{label}\nloss {loss:.4f}, {placed}/{puzzle.num_pieces} in place")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def draw_hints(
    puzzle: Puzzle,
    positions: Tensor | None = None,
    ax: Axes | None = None,
    *,
    title: str = "The hints: minus the gradient of each piece",
    link_slots: bool = True,
) -> Axes:
    """The table with one arrow per piece, pointing along minus the gradient (the way that
    lowers the loss fastest), its length proportional to the gradient's size. With
    ``link_slots`` a dashed line joins each piece's centre to the centre of its own slot, so the
    arrow (where the hint points) and the line (where the piece belongs) can be compared."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 5.0))
    positions = puzzle.positions.detach() if positions is None else positions.to(puzzle.home)
    _draw_table(ax, puzzle, puzzle.table_image(positions), title)
    hints = puzzle.hints(positions)
    centres = (positions + 0.5).cpu().numpy()
    arrows = (-hints).cpu().numpy()
    longest = float(np.linalg.norm(arrows, axis=1).max())
    ax.quiver(centres[:, 0], centres[:, 1], arrows[:, 0], arrows[:, 1], color="white",
              edgecolor="black", linewidth=0.5, angles="xy", scale_units="xy",
              scale=longest / 0.9, width=0.008, headwidth=3.5, headlength=4, headaxislength=3.5)
    homes = (puzzle.home + 0.5).cpu().numpy()
    if link_slots:  # one dashed line per piece, to the centre of the slot it belongs in
        for index, ((x, y), (home_x, home_y)) in enumerate(zip(centres, homes, strict=True)):
            ax.plot([x, home_x], [y, home_y], color="yellow", linestyle="--", linewidth=0.9,
                    alpha=0.9, label="piece to its slot" if index == 0 else None)
    ax.plot(homes[:, 0], homes[:, 1], linestyle="none", marker="+", color="black", markersize=6,
            label="slot centres")
    ax.legend(loc="lower right", fontsize="x-small", framealpha=0.85)
    return ax


def plot_slide(
    puzzle: Puzzle,
    piece: int,
    *,
    span: float = 1.5,
    points: int = 61,
    direction: tuple[float, float] = (1.0, 0.0),
    ax: Axes | None = None,
) -> Axes:
    """The loss as one piece slides through its slot while every other piece stays home.

    Draws each term of the loss (:meth:`Puzzle.loss_terms`) and their total against the
    piece's offset from its slot, from ``-span`` to ``span`` pieces along ``direction``.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 4.0))
    offsets = torch.linspace(-span, span, points, dtype=puzzle.home.dtype)
    step = torch.tensor(direction, dtype=puzzle.home.dtype)
    step = step / step.norm()
    curves: dict[str, list[float]] = {}
    with torch.no_grad(), _one_thread_on_cpu(puzzle.device):
        for offset in offsets:
            positions = puzzle.home.clone()
            positions[piece] += (offset * step).to(positions)
            terms = puzzle.loss_terms(positions)
            terms = {"total": sum(terms.values()), **terms}
            for name, value in terms.items():
                curves.setdefault(name, []).append(float(value))
    for name, values in curves.items():
        ax.plot(offsets.numpy(), values, label=name, linewidth=2.2 if name == "total" else 1.2,
                linestyle="-" if name in ("total", "sharp") else "--")
    ax.set(title=f"The loss as piece {piece} slides through its slot",
           xlabel="offset from the slot (pieces)", ylabel="loss")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def plot_solve_losses(
    records: Mapping[str, SolveRecord],
    *,
    tolerance: float = 0.1,
    figsize: tuple[float, float] = (9.0, 3.6),
) -> Figure:
    """Two panels: the loss of each solve (log scale) and the pieces in place, per step."""
    figure, (loss_ax, placed_ax) = plt.subplots(1, 2, figsize=figsize)
    for label, record in records.items():
        steps = np.arange(record.steps + 1)
        loss_ax.semilogy(steps, record.losses.numpy(), label=label)
        placed_ax.plot(steps, record.pieces_in_place(tolerance).numpy(), label=label)
    loss_ax.set(title="How far the table is from the lid", xlabel="step", ylabel="loss (log scale)")
    puzzle = next(iter(records.values())).puzzle
    placed_ax.set(title=f"Pieces within {tolerance:g} piece of their slot", xlabel="step",
                  ylabel="pieces in place", ylim=(-0.5, puzzle.num_pieces + 0.5))
    for ax in (loss_ax, placed_ax):
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def plot_attention(
    records: Mapping[str, SolveRecord],
    *,
    steps: int = 30,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Where each guide put its effort, one row per solve.

    Left: how far each piece moved at each step (pieces down, steps across). Right: the
    effective step size of each piece over the first ``steps`` steps (distance moved per unit
    of hint, see :meth:`SolveRecord.effective_step_sizes`), drawn at the piece's slot. Each
    column of panels shares one colour scale, so the rows compare at a glance.
    """
    rows = len(records)
    figure, axes = plt.subplots(rows, 2, figsize=figsize or (9.0, 3.0 * rows), squeeze=False,
                                gridspec_kw={"width_ratios": [1.5, 1]})
    # one colour scale for every right-hand panel, so that the guides compare at a glance
    all_sizes = torch.cat([record.effective_step_sizes(steps) for record in records.values()])
    low, high = float(all_sizes.min()), float(all_sizes.max())
    # and one for every left-hand panel: the same colour is the same distance in every row
    farthest = max(float(record.moves[:steps].max()) for record in records.values())
    if high - low < 1e-3 * max(abs(high), 1e-12):  # all equal (plain SGD alone): widen the scale
        low, high = low * 0.5, high * 1.5
    for (label, record), (moves_ax, size_ax) in zip(records.items(), axes, strict=True):
        shown = min(steps, record.steps)
        count = record.puzzle.num_pieces
        moves = record.moves[:shown].T.numpy()
        image = moves_ax.imshow(moves, aspect="auto", cmap="magma", interpolation="nearest",
                                extent=(0.5, shown + 0.5, count - 0.5, -0.5), vmin=0.0,
                                vmax=farthest)
        figure.colorbar(image, ax=moves_ax, label="moved (pieces)")
        moves_ax.set(title=f"{label}\nhow far each piece moved at each step", xlabel="step",
                     ylabel="piece")
        moves_ax.set_yticks(range(0, count, max(1, count // 8)))
        grid = record.puzzle.grid
        sizes = record.effective_step_sizes(shown).view(grid, grid).numpy()
        image = size_ax.imshow(sizes, cmap="viridis", interpolation="nearest", vmin=low, vmax=high)
        figure.colorbar(image, ax=size_ax, label="moved / hint")
        for (row, column), value in np.ndenumerate(sizes):
            bright = value > low + 0.6 * (high - low)
            size_ax.text(column, row, f"{value:.2g}", ha="center", va="center", fontsize="x-small",
                         color="black" if bright else "white")
        size_ax.set(title=f"{label}\nstep per unit of hint, steps 1-{shown}", xlabel="slot column",
                    ylabel="slot row")
        size_ax.set_xticks(range(grid))
        size_ax.set_yticks(range(grid))
    figure.tight_layout()
    return figure


def frame_steps(steps: int, frames: int) -> np.ndarray:
    """The steps an animation of a ``steps``-step solve shows: at most ``frames`` of them,
    always the first (0) and the last, closer together at the start where pieces move most."""
    spacing = np.linspace(0, 1, max(2, min(frames, steps + 1))) ** 2  # quadratic spacing
    return np.unique((spacing * steps).round().astype(int))


def animate_solve(
    records: Mapping[str, SolveRecord],
    *,
    frames: int = 24,
    interval: int = 200,
    dpi: int = 90,
    quality: int = 60,
    panel_size: float = 3.0,
) -> Any:
    """The solves side by side as a self-contained HTML animation (no kernel needed).

    Holds at most ``frames`` frames, spread over the steps more densely at the start, where
    most of the movement happens. Each panel is ``panel_size * dpi`` pixels wide (270 by
    default, so that the titles are readable on the page). Frames are JPEG images (``quality``
    from 1 to 95): three panels of 24 frames take about 0.9 MB of HTML. Returns an
    :class:`IPython.display.HTML` object.
    """
    from IPython.display import HTML

    records = dict(records)
    indices = frame_steps(max(record.steps for record in records.values()), frames)
    panels = len(records)
    figure, axes = plt.subplots(1, panels, figsize=(panel_size * panels, panel_size * 1.18),
                                dpi=dpi, squeeze=False)
    # square tables with two lines of title above them, and almost no border
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.82, wspace=0.04)
    images, titles = [], []
    for ax, (label, record) in zip(axes[0], records.items(), strict=True):
        image = _draw_table(ax, record.puzzle, record.puzzle.table_image(record.positions[0]),
                            f"{label}\nstep 0")
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.title.set_fontsize(10)
        images.append(image)
        titles.append(ax.title)

    def draw(frame: int) -> list:
        step = int(indices[frame])
        for image, title, (label, record) in zip(images, titles, records.items(), strict=True):
            shown = min(step, record.steps)
            image.set_data(record.puzzle.table_image(record.positions[shown]))
            placed = int(record.pieces_in_place()[shown])
            title.set_text(f"{label}\nstep {shown}: loss {float(record.losses[shown]):.3f}, "
                           f"{placed}/{record.puzzle.num_pieces} in place")
        return [*images, *titles]

    animation = FuncAnimation(figure, draw, frames=len(indices), interval=interval, blit=False)
    # What Animation.to_jshtml does, with JPEG frames at a chosen quality: a third of the PNG size.
    writer = HTMLWriter(fps=1000 / interval, embed_frames=True, default_mode="once")
    writer.frame_format = "jpeg"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "animation.html")
        animation.save(str(path), writer=writer, dpi=dpi,
                       savefig_kwargs={"pil_kwargs": {"quality": quality}})
        html = path.read_text()
    plt.close(figure)  # the HTML is the figure; do not also show the last frame
    return HTML(html)


# -- the live explorer ---------------------------------------------------------------------------


class PuzzleExplorer:
    """Pick a guide, its learning rate and a number of steps; see the solve it produces.

    In a live kernel (Jupyter, Colab) every change re-runs the solve and redraws. On the
    static site no Python runs, so pair it with :func:`animate_solve`.

    Attributes:
        widget: the whole explorer (an ``ipywidgets.VBox``); displaying the explorer shows it.
        record: the :class:`SolveRecord` currently drawn.
    """

    def __init__(
        self,
        puzzle: Puzzle,
        guides: Mapping[str, tuple[Callable[..., torch.optim.Optimizer], dict[str, Any]]]
        | None = None,
        *,
        guide: str = "Adam",
        lr: float = 0.03,
        steps: int = 120,
    ) -> None:
        import ipywidgets as widgets

        self.puzzle = puzzle
        self.guides = dict(guides or DEFAULT_GUIDES)
        self.guide_menu = widgets.Dropdown(options=list(self.guides), value=guide,
                                           description="guide")
        self.lr_slider = widgets.FloatLogSlider(value=lr, base=10, min=-4, max=0.5, step=0.05,
                                                description="lr", readout_format=".3g",
                                                continuous_update=False)
        self.steps_slider = widgets.IntSlider(value=steps, min=10, max=300, step=10,
                                              description="steps", continuous_update=False)
        self.image = widgets.Image(format="png")
        self.message = widgets.HTML()
        self.widget = widgets.VBox([
            widgets.HBox([self.guide_menu, self.lr_slider, self.steps_slider]),
            self.image,
            self.message,
        ])
        self.record: SolveRecord | None = None
        self._quiet = False
        for control in (self.guide_menu, self.lr_slider, self.steps_slider):
            control.observe(self._on_change, names="value")
        self.redraw()

    def _on_change(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self.redraw()

    def update(self, **changes: Any) -> SolveRecord | None:
        """Set ``guide=``, ``lr=`` and/or ``steps=`` as a reader moving the controls would, then
        redraw once. Returns the new record (``None`` if the optimizer refused the settings)."""
        controls = {"guide": self.guide_menu, "lr": self.lr_slider, "steps": self.steps_slider}
        unknown = set(changes) - set(controls)
        if unknown:
            raise ValueError(f"no control named {sorted(unknown)}; choose from {sorted(controls)}")
        self._quiet = True
        try:
            for name, value in changes.items():
                controls[name].value = value
        finally:
            self._quiet = False
        return self.redraw()

    def describe(self) -> str:
        _, fixed = self.guides[self.guide_menu.value]
        arguments = ", ".join([f"lr={self.lr_slider.value:.3g}"]
                              + [f"{name}={value}" for name, value in fixed.items()])
        return f"{self.guide_menu.value} ({arguments}), {self.steps_slider.value} steps"

    def redraw(self) -> SolveRecord | None:
        """Solve with the current settings and draw the final table beside the loss curve."""
        optimizer_cls, fixed = self.guides[self.guide_menu.value]
        try:
            record = self.puzzle.solve(optimizer_cls, self.steps_slider.value,
                                       name=self.guide_menu.value, lr=self.lr_slider.value, **fixed)
        except (ValueError, RuntimeError) as error:
            self.message.value = f"<b>{type(error).__name__}</b>: {error}"
            return None
        figure = Figure(figsize=(8.0, 3.4))
        table_ax, loss_ax = figure.subplots(1, 2)
        placed = int(record.pieces_in_place()[-1])
        _draw_table(table_ax, self.puzzle, self.puzzle.table_image(record.positions[-1]),
                    f"After {record.steps} steps: {placed}/{self.puzzle.num_pieces} in place")
        loss_ax.semilogy(record.losses.numpy(), label=record.name)
        loss_ax.set(title="How far the table is from the lid", xlabel="step",
                    ylabel="loss (log scale)")
        loss_ax.legend(fontsize="small")
        loss_ax.grid(alpha=0.3)
        figure.suptitle(self.describe(), fontsize="medium")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=72)
        self.image.value = buffer.getvalue()
        self.record = record
        self.message.value = f"final loss {record.final_loss:.4f}, {placed} pieces in place"
        return record

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        from optim_lessons.playground.widgets import widget_mimebundle

        return widget_mimebundle(self.widget, repr(self))

    def __repr__(self) -> str:
        return f"PuzzleExplorer: {self.describe()}"


def puzzle_explorer(puzzle: Puzzle | None = None, **settings: Any) -> PuzzleExplorer:
    """A :class:`PuzzleExplorer` on ``puzzle`` (by default ``Puzzle()``); ``settings`` are
    ``guides=``, ``guide=``, ``lr=`` and ``steps=``."""
    return PuzzleExplorer(puzzle if puzzle is not None else Puzzle(), **settings)
