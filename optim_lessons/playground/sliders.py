"""Figures with sliders that work without a kernel: every path is computed beforehand.

:func:`slider_figure` runs the library's optimizers on a surface once for every combination of
two or three hyperparameters on a grid (learning rate x momentum, beta1 x beta2, ...), and
embeds all the paths in one small piece of HTML. On the page, moving a slider only *looks up*
the path stored for the chosen values and draws it over the contour map: no optimizer runs in
the browser, so what a reader sees is exactly what the Python optimizer did. In Jupyter and
Colab the live explorer (:mod:`optim_lessons.playground.widgets`) can still try any value;
this figure is the one that moves on the published site.

How it stays small. The contour map is drawn once as a PNG. Each path is stored in the
picture's pixel coordinates, rounded to 1/8 px and packed as little-endian 16-bit integers
(4 bytes per point), then base64-encoded. Runs that blow up are cut at their first non-finite
point; points far outside the window are clipped (they only need to leave it in the right
direction). A grid of 6 x 5 x 4 values with 100 steps is about 65 KB of paths; the map adds
about 20 KB. :data:`MAX_BYTES` is the budget one figure may use.

The stored path of grid point :math:`(i_1, \\dots, i_k)` and run :math:`r` is the run of
:func:`~optim_lessons.playground.surfaces.run_on_surface` with those hyperparameters: the
same numbers the chapter's static figures and tests use.

>>> from optim_lessons import optimizers as ours
>>> table = precompute_paths("bowl", {"SGD": ours.SGD},
...                          {"lr": [0.01, 0.05], "momentum": [0.0, 0.9]}, steps=20)
>>> table.points.shape  # (lr, momentum, run, step, xy)
(2, 2, 1, 21, 2)
>>> figure = slider_figure("bowl", {"SGD": ours.SGD},
...                        {"lr": [0.01, 0.05], "momentum": [0.0, 0.9]}, steps=20)
>>> 'class="optim-lessons-sliders"' in figure.data
True
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import torch

from optim_lessons.playground.animations import draw_backdrop
from optim_lessons.playground.plots import _color
from optim_lessons.playground.surfaces import (
    Surface,
    accepted_hyperparameters,
    get_surface,
    run_on_surface,
)

__all__ = ["MAX_BYTES", "PathTable", "precompute_paths", "slider_figure"]

#: The most bytes one figure's HTML may take (the map, the paths and the viewer together).
MAX_BYTES = 300_000

#: Grid names that set one entry of a tuple hyperparameter: ``beta1`` is ``betas[0]``.
TUPLE_PARTS: dict[str, tuple[str, int]] = {
    "beta1": ("betas", 0),
    "beta2": ("betas", 1),
    "etaminus": ("etas", 0),
    "etaplus": ("etas", 1),
}

#: How a slider is labelled on the page.
LABELS: dict[str, str] = {
    "lr": "learning rate",
    "beta1": "\N{GREEK SMALL LETTER BETA}\N{SUBSCRIPT ONE}",
    "beta2": "\N{GREEK SMALL LETTER BETA}\N{SUBSCRIPT TWO}",
    "eps": "\N{GREEK SMALL LETTER EPSILON}",
    "noise": "gradient noise",
    "etaminus": "\N{GREEK SMALL LETTER ETA}\N{SUPERSCRIPT MINUS}",
    "etaplus": "\N{GREEK SMALL LETTER ETA}\N{SUPERSCRIPT PLUS SIGN}",
    "beta2_decay": "\N{GREEK SMALL LETTER BETA}\N{SUBSCRIPT TWO} decay",
}

#: Grid names that are settings of the run, not hyperparameters of the optimizer.
RUN_SETTINGS = ("noise",)

_SCALE = 8  # pixels are stored in eighths
_LIMIT = 4000.0  # |pixel| beyond this is clipped (int16 holds 4095.9 eighths of a pixel)


@dataclass(frozen=True)
class PathTable:
    """Every path of a grid of runs.

    Attributes:
        names: the grid's hyperparameter names, in slider order.
        values: the values of each, in the same order.
        runs: the labels of the optimizers, one path each per grid point.
        points: shape ``(*grid shape, runs, steps + 1, 2)``, float64; a run that stopped being
            finite keeps NaN from its first non-finite point on.
        gaps: shape ``(*grid shape, runs)``, :math:`f - f^*` at the last finite point.
        finite_steps: shape ``(*grid shape, runs)``, how many points of each path are finite.
    """

    surface: str
    names: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    runs: tuple[str, ...]
    points: np.ndarray
    gaps: np.ndarray
    finite_steps: np.ndarray

    @property
    def steps(self) -> int:
        return self.points.shape[-2] - 1


def _optimizer_kwargs(
    optimizer_cls: Callable[..., torch.optim.Optimizer],
    setting: Mapping[str, float],
    fixed: Mapping[str, Any],
) -> dict[str, Any]:
    """The constructor's keyword arguments for one grid point: ``beta1``/``beta2`` (and the
    other :data:`TUPLE_PARTS`) fill their tuple, whose other entry comes from ``fixed`` or the
    constructor's default."""
    kwargs = dict(fixed)
    defaults = accepted_hyperparameters(optimizer_cls)
    for name, value in setting.items():
        if name in RUN_SETTINGS:
            continue
        if name in TUPLE_PARTS:
            key, index = TUPLE_PARTS[name]
            parts = list(kwargs.get(key, defaults.get(key, ())))
            if len(parts) != 2:
                raise ValueError(f"{name} sets {key}[{index}], which this optimizer does not take")
            parts[index] = value
            kwargs[key] = tuple(parts)
        else:
            kwargs[name] = value
    return kwargs


def _as_runs(
    optimizers: Mapping[str, Callable[..., torch.optim.Optimizer]] | Callable,
) -> dict[str, Callable[..., torch.optim.Optimizer]]:
    if isinstance(optimizers, Mapping):
        return dict(optimizers)
    return {getattr(optimizers, "__name__", "optimizer"): optimizers}


def precompute_paths(
    surface: Surface | str,
    optimizers: Mapping[str, Callable[..., torch.optim.Optimizer]] | Callable,
    grid: Mapping[str, Sequence[float]],
    *,
    steps: int = 100,
    fixed: Mapping[str, Any] | None = None,
    start: tuple[float, float] | None = None,
    noise: float = 0.0,
    seed: int = 0,
) -> PathTable:
    """Run every optimizer at every point of ``grid`` (its product) for ``steps`` steps.

    Args:
        surface: a surface or its name.
        optimizers: ``{label: optimizer class}``, or one class; every grid point runs each.
        grid: one to three ``{name: values}``: constructor keywords (``lr``, ``momentum``, ...),
            ``beta1``/``beta2``/``etaminus``/``etaplus`` for one entry of ``betas``/``etas``,
            or ``noise`` (gradient noise, a setting of the run).
        steps, start, noise, seed: as in :func:`~.surfaces.run_on_surface` (a ``noise`` on the
            grid overrides ``noise``; every noisy run draws the same seeded noise).
        fixed: keywords every run gets (``{"nesterov": True}``).
    """
    surface = get_surface(surface)
    runs = _as_runs(optimizers)
    if not 1 <= len(grid) <= 3:
        raise ValueError(f"grid must name one to three hyperparameters, got {list(grid)}")
    names = tuple(grid)
    values = tuple(tuple(float(v) for v in grid[name]) for name in names)
    if any(len(axis) == 0 for axis in values):
        raise ValueError("every hyperparameter of the grid needs at least one value")
    shape = tuple(len(axis) for axis in values)
    points = np.full((*shape, len(runs), steps + 1, 2), np.nan)
    gaps = np.full((*shape, len(runs)), np.nan)
    finite_steps = np.zeros((*shape, len(runs)), dtype=np.int64)
    for index in itertools.product(*(range(n) for n in shape)):
        setting = {name: values[k][i] for k, (name, i) in enumerate(zip(names, index))}
        for r, optimizer_cls in enumerate(runs.values()):
            kwargs = _optimizer_kwargs(optimizer_cls, setting, fixed or {})
            run = run_on_surface(
                surface,
                optimizer_cls,
                steps=steps,
                start=start,
                noise=setting.get("noise", noise),
                seed=seed,
                **kwargs,
            )
            path = run.points.numpy()
            finite = np.isfinite(path).all(axis=1)
            count = int(np.argmin(finite)) if not finite.all() else len(path)
            points[(*index, r, slice(0, count))] = path[:count]
            finite_steps[(*index, r)] = count
            with torch.no_grad():
                last = surface(torch.as_tensor(path[count - 1]))
            gaps[(*index, r)] = float(last) - surface.min_value
    return PathTable(surface.name, names, values, tuple(runs), points, gaps, finite_steps)


def _pack(pixels: np.ndarray) -> str:
    """Pixel coordinates as base64 of little-endian int16 eighths of a pixel (NaN -> 0)."""
    clipped = np.clip(np.nan_to_num(pixels, nan=0.0), -_LIMIT, _LIMIT)
    return base64.b64encode(np.round(clipped * _SCALE).astype("<i2").tobytes()).decode("ascii")


def _format_value(value: float) -> str:
    return f"{value:.4g}"


def _readout(table: PathTable, index: tuple[int, ...], r: int) -> str:
    finite = int(table.finite_steps[(*index, r)])
    if finite < table.steps + 1:
        return f"diverged at step {finite}"
    return f"f - f* = {table.gaps[(*index, r)]:.1e} after {table.steps} steps"


_VIEWER_TEMPLATE = """\
<div id="{id}" class="optim-lessons-sliders" data-grid="{grid_shape}"
     style="max-width:{width}px;font-family:sans-serif;font-size:13px">
<div style="position:relative;line-height:0">
<img src="data:image/png;base64,{png}" alt="{alt}"
     style="width:100%;height:auto;display:block;background:#fff">
<svg viewBox="0 0 {width} {height}" role="img" aria-label="{alt}"
     style="position:absolute;left:0;top:0;width:100%;height:100%">
<defs><clipPath id="{id}-clip">
<rect x="{clip_x}" y="{clip_y}" width="{clip_w}" height="{clip_h}"/>
</clipPath></defs>
<g clip-path="url(#{id}-clip)">{paths}</g>
</svg>
</div>
{sliders}
<div class="optim-lessons-readout" style="margin-top:2px">{readout}</div>
</div>
<script>
(function () {{
  var root = document.getElementById("{id}");
  if (!root || root.dataset.ready) {{ return; }}
  root.dataset.ready = "1";
  var data = {data};
  var raw = atob(data.paths), view = new DataView(new ArrayBuffer(raw.length));
  for (var b = 0; b < raw.length; b++) {{ view.setUint8(b, raw.charCodeAt(b)); }}
  var sliders = root.querySelectorAll("input[type=range]");
  var shown = root.querySelectorAll("output");
  var lines = root.querySelectorAll("polyline"), heads = root.querySelectorAll("circle");
  var readout = root.querySelector(".optim-lessons-readout");
  var per_path = (data.steps + 1) * 2;
  function show() {{
    var cell = 0;
    for (var k = 0; k < sliders.length; k++) {{
      var i = Number(sliders[k].value);
      cell = cell * data.values[k].length + i;
      shown[k].textContent = data.values[k][i];
    }}
    var notes = [];
    for (var r = 0; r < lines.length; r++) {{
      var path = cell * lines.length + r, start = path * per_path, n = data.lengths[path];
      var xy = [];
      for (var p = 0; p < n; p++) {{
        var at = 2 * (start + 2 * p);
        xy.push(view.getInt16(at, true) / 8 + "," + view.getInt16(at + 2, true) / 8);
      }}
      lines[r].setAttribute("points", xy.join(" "));
      var head = xy.length ? xy[xy.length - 1].split(",") : [-10, -10];
      heads[r].setAttribute("cx", head[0]);
      heads[r].setAttribute("cy", head[1]);
      notes.push((lines.length > 1 ? data.runs[r] + ": " : "") + data.notes[path]);
    }}
    readout.textContent = notes.join("; ");
  }}
  sliders.forEach(function (s) {{ s.addEventListener("input", show); }});
  show();
}})();
</script>
"""

_SLIDER_TEMPLATE = """\
<label style="display:flex;align-items:center;gap:8px;margin-top:4px">
<span style="min-width:8.5em">{label}</span>
<input type="range" min="0" max="{last}" step="1" value="{initial}" style="flex:1;min-width:0"
       aria-label="{label}" data-name="{name}">
<output style="min-width:4em;text-align:right">{shown}</output>
</label>"""


def slider_figure(
    surface: Surface | str,
    optimizers: Mapping[str, Callable[..., torch.optim.Optimizer]] | Callable,
    grid: Mapping[str, Sequence[float]],
    *,
    steps: int = 100,
    fixed: Mapping[str, Any] | None = None,
    start: tuple[float, float] | None = None,
    noise: float = 0.0,
    seed: int = 0,
    initial: Mapping[str, float] | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (6.0, 4.0),
    dpi: int = 80,
    colors: Sequence[str] | None = None,
    max_bytes: int = MAX_BYTES,
):
    """A figure with one slider per hyperparameter of ``grid`` that redraws the paths at once.

    Every path is precomputed by :func:`precompute_paths` (same arguments) and embedded; the
    page's script only looks paths up and draws them. ``initial`` picks the grid values the
    sliders start at (the first value of each by default). The HTML is the same bytes on every
    run, so a notebook's stored output can be compared by nbval.

    Raises ``ValueError`` when the HTML would exceed ``max_bytes`` (use a coarser grid or fewer
    steps). Returns an :class:`IPython.display.HTML` object: make it the last expression of a
    cell.
    """
    from IPython.display import HTML

    surface = get_surface(surface)
    table = precompute_paths(
        surface, optimizers, grid, steps=steps, fixed=fixed, start=start, noise=noise, seed=seed
    )
    initial = dict(initial or {})
    unknown = sorted(set(initial) - set(table.names))
    if unknown:
        raise ValueError(f"initial names {unknown}, which are not on the grid {list(table.names)}")
    start_index = []
    for name, axis in zip(table.names, table.values):
        wanted = initial.get(name, axis[0])
        if not any(np.isclose(wanted, v) for v in axis):
            raise ValueError(f"initial {name}={wanted} is not one of the grid's values {axis}")
        start_index.append(int(np.argmin([abs(v - wanted) for v in axis])))

    run_colors = [_color(r, colors) for r in range(len(table.runs))]
    figure, ax, png = draw_backdrop(
        surface,
        list(table.runs),
        run_colors,
        [table.points.reshape(-1, 2)[0]],
        title=title,
        figsize=figsize,
        dpi=dpi,
        start_label="start",
        facecolor="white",
    )
    width, height = (int(round(v)) for v in figure.bbox.size)

    flat = table.points.reshape(-1, 2)
    pixels = ax.transData.transform(np.nan_to_num(flat, nan=0.0))
    pixels[:, 1] = figure.bbox.height - pixels[:, 1]
    pixels[~np.isfinite(flat).all(axis=1)] = np.nan
    cells = list(itertools.product(*(range(len(axis)) for axis in table.values)))
    notes = [_readout(table, cell, r) for cell in cells for r in range(len(table.runs))]
    data = json.dumps(
        {
            "steps": table.steps,
            "values": [[_format_value(v) for v in axis] for axis in table.values],
            "runs": list(table.runs),
            "lengths": table.finite_steps.reshape(-1).tolist(),
            "notes": notes,
            "paths": _pack(pixels),
        },
        separators=(",", ":"),
    )
    clip_x, clip_y0, clip_w, clip_h = ax.bbox.bounds
    svg_paths = "".join(
        f'<polyline fill="none" stroke="{color}" stroke-width="2" stroke-linejoin="round" '
        f'points=""/><circle r="4" fill="{color}" stroke="black" stroke-width="1" '
        'cx="-10" cy="-10"/>'
        for color in run_colors
    )
    sliders = "\n".join(
        _SLIDER_TEMPLATE.format(
            label=escape(LABELS.get(name, name.replace("_", " "))),
            name=escape(name),
            last=len(axis) - 1,
            initial=start_index[k],
            shown=_format_value(axis[start_index[k]]),
        )
        for k, (name, axis) in enumerate(zip(table.names, table.values))
    )
    first_cell = tuple(start_index)
    readout = "; ".join(
        (f"{label}: " if len(table.runs) > 1 else "") + _readout(table, first_cell, r)
        for r, label in enumerate(table.runs)
    )
    element_id = "sliders-" + hashlib.sha1((png + data).encode()).hexdigest()[:12]
    html = _VIEWER_TEMPLATE.format(
        id=element_id,
        grid_shape="x".join(str(len(axis)) for axis in table.values),
        width=width,
        height=height,
        png=png,
        alt=escape(
            f"{surface.title}: paths of {', '.join(table.runs)} for every "
            + " and ".join(LABELS.get(name, name) for name in table.names),
            quote=True,
        ),
        clip_x=round(clip_x, 1),
        clip_y=round(figure.bbox.height - clip_y0 - clip_h, 1),
        clip_w=round(clip_w, 1),
        clip_h=round(clip_h, 1),
        paths=svg_paths,
        sliders=sliders,
        readout=escape(readout),
        data=data.replace("</", "<\\/"),
    )
    size = len(html.encode())
    if size > max_bytes:
        raise ValueError(
            f"the figure takes {size} bytes, over max_bytes={max_bytes}: use fewer grid values "
            "or fewer steps"
        )
    return HTML(html)
