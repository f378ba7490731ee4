"""Animated trajectories on a surface that play in any browser, with no kernel.

:func:`animate_trajectories` draws the contour map once as an image and the paths over it with
a few lines of JavaScript, so the page stays light and the same bytes come out on every run
(nbval can compare them); matplotlib's ``to_jshtml`` is the alternative. The static figures are
in :mod:`optim_lessons.playground.plots`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Sequence
from html import escape

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from optim_lessons.playground.plots import Runs, _as_mapping, _color, _points, plot_surface
from optim_lessons.playground.surfaces import Surface, get_surface

__all__ = ["animate_trajectories"]


def _pixel_path(points: np.ndarray, ax: Axes, height: float) -> list[list[float]]:
    """Data coordinates to image pixels (origin top left), cut at the first non-finite point."""
    finite = np.isfinite(points).all(axis=1)
    end = int(np.argmin(finite)) if not finite.all() else len(points)
    pixels = ax.transData.transform(points[:end]) if end else np.zeros((0, 2))
    pixels[:, 1] = height - pixels[:, 1]
    # Far-away points (a diverging run) only need to leave the window in the right direction.
    return np.clip(pixels, -1e5, 1e5).round(1).tolist()


def draw_backdrop(
    surface: Surface,
    labels: Sequence[str],
    colors: Sequence[str],
    starts: Sequence[np.ndarray],
    *,
    title: str | None,
    figsize: tuple[float, float],
    dpi: int,
    start_label: str | None = None,
    facecolor: str | None = None,
) -> tuple[Figure, Axes, str]:
    """The still part of a kernel-free figure: contours, minima, a white marker at each start
    point and a legend with one line per run, drawn once and returned as a base64 PNG with its
    figure and axes (for placing paths over it in pixels).

    ``start_label`` puts the start marker in the legend; ``facecolor`` fills the figure's
    background instead of leaving matplotlib's default.
    """
    background = {} if facecolor is None else {"facecolor": facecolor}
    figure = Figure(figsize=figsize, dpi=dpi, **background)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    plot_surface(surface, ax, title=title)
    for color, label in zip(colors, labels, strict=True):
        ax.plot([], [], color=color, linewidth=1.8, label=label)
    for point in starts:
        ax.plot(
            *point,
            linestyle="none",
            marker="o",
            markersize=7,
            color="white",
            markeredgecolor="black",
            **({} if start_label is None else {"label": start_label}),
        )
    ax.legend(loc="best", fontsize="x-small", framealpha=0.85)
    figure.tight_layout()
    figure.canvas.draw()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None}, **background)
    return figure, ax, base64.b64encode(buffer.getvalue()).decode("ascii")


_PLAYER_TEMPLATE = """\
<div id="{id}" class="optim-lessons-animation" data-frames="{frame_count}"
     style="max-width:{width}px;font-family:sans-serif;font-size:13px">
<div style="position:relative;line-height:0">
<img src="data:image/png;base64,{png}" alt="{alt}"
     style="width:100%;height:auto;display:block">
<svg viewBox="0 0 {width} {height}"
     style="position:absolute;left:0;top:0;width:100%;height:100%">
<defs><clipPath id="{id}-clip">
<rect x="{clip_x}" y="{clip_y}" width="{clip_w}" height="{clip_h}"/>
</clipPath></defs>
<g clip-path="url(#{id}-clip)">{paths}</g>
</svg>
</div>
<div style="display:flex;align-items:center;gap:8px;margin-top:4px">
<button type="button" style="min-width:5em">&#9654; play</button>
<input type="range" min="0" max="{last}" value="{last}" style="flex:1" aria-label="step">
<span style="min-width:6em">step {last_step}</span>
</div>
</div>
<script>
(function () {{
  var root = document.getElementById("{id}");
  if (!root || root.dataset.ready) {{ return; }}
  root.dataset.ready = "1";
  var data = {data};
  var lines = root.querySelectorAll("polyline"), heads = root.querySelectorAll("circle");
  var slider = root.querySelector("input"), button = root.querySelector("button");
  var label = root.querySelector("span"), timer = null;
  function show(frame) {{
    var step = data.steps[frame];
    data.paths.forEach(function (path, i) {{
      var shown = path.slice(0, Math.min(step, path.length - 1) + 1);
      lines[i].setAttribute("points", shown.map(function (p) {{ return p.join(","); }}).join(" "));
      var head = shown[shown.length - 1];
      if (head) {{ heads[i].setAttribute("cx", head[0]); heads[i].setAttribute("cy", head[1]); }}
    }});
    slider.value = frame;
    label.textContent = "step " + step;
  }}
  function stop() {{ clearInterval(timer); timer = null; button.innerHTML = "&#9654; play"; }}
  button.addEventListener("click", function () {{
    if (timer) {{ stop(); return; }}
    var frame = Number(slider.value) >= data.steps.length - 1 ? 0 : Number(slider.value);
    show(frame);
    button.innerHTML = "&#10074;&#10074; pause";
    timer = setInterval(function () {{
      frame += 1;
      if (frame >= data.steps.length) {{ stop(); return; }}
      show(frame);
    }}, data.interval);
  }});
  slider.addEventListener("input", function () {{ stop(); show(Number(slider.value)); }});
}})();
</script>
"""


def animate_trajectories(
    surface: Surface | str,
    trajectories: Runs,
    *,
    frames: int = 60,
    interval: int = 100,
    title: str | None = None,
    figsize: tuple[float, float] = (6.0, 4.0),
    dpi: int = 80,
    method: str = "svg",
    colors: Sequence[str] | None = None,
):
    """A self-contained HTML animation of the runs moving on the surface.

    The result plays in any browser, without a Python kernel, so it works on the published
    site, where widgets cannot run. It has a play button and a slider to scrub through the
    steps, and shows at most ``frames`` frames (iterates are subsampled evenly when a run is
    longer). Make it the last expression of a cell.

    Two ways to build it:

    - ``method="svg"`` (default): the contour map is drawn once as an image and the paths are
      drawn over it by a few lines of JavaScript. A few tens of kilobytes, built in well
      under a second, and the same bytes on every run (a notebook's stored output can be
      compared).
    - ``method="jshtml"``: matplotlib's ``FuncAnimation(...).to_jshtml()``, which stores a full
      image per frame: about 20 KB per frame at the default size, a few seconds to build, and
      random element ids in the HTML.

    Returns an :class:`IPython.display.HTML` object.
    """
    from IPython.display import HTML

    surface = get_surface(surface)
    runs = {label: _points(run) for label, run in _as_mapping(trajectories).items()}
    longest = max(len(points) for points in runs.values())
    frame_count = max(1, min(frames, longest))
    steps = np.unique(np.linspace(0, longest - 1, frame_count).round().astype(int))
    if method == "jshtml":
        return HTML(
            _animate_with_matplotlib(surface, runs, steps, interval, title, figsize, dpi, colors)
        )
    if method != "svg":
        raise ValueError(f"method must be 'svg' or 'jshtml', got {method!r}")

    # The background: contours, minima, start points and a legend, drawn once.
    run_colors = [_color(index, colors) for index in range(len(runs))]
    figure, ax, png = draw_backdrop(
        surface,
        list(runs),
        run_colors,
        [points[0] for points in runs.values()],
        title=title,
        figsize=figsize,
        dpi=dpi,
    )
    width, height = (int(round(v)) for v in figure.bbox.size)

    paths = [_pixel_path(points, ax, figure.bbox.height) for points in runs.values()]
    clip_x, clip_y0, clip_w, clip_h = ax.bbox.bounds
    svg_paths = "".join(
        f'<polyline fill="none" stroke="{color}" stroke-width="2" stroke-linejoin="round" '
        f'points="{" ".join(f"{x},{y}" for x, y in path)}"/>'
        f'<circle r="4" fill="{color}" stroke="black" stroke-width="1" '
        f'cx="{path[-1][0] if path else -10}" cy="{path[-1][1] if path else -10}"/>'
        for color, path in zip(run_colors, paths, strict=True)
    )
    data = json.dumps(
        {"paths": paths, "steps": steps.tolist(), "interval": interval}, separators=(",", ":")
    )
    element_id = "anim-" + hashlib.sha1((png + data).encode()).hexdigest()[:12]
    html = _PLAYER_TEMPLATE.format(
        id=element_id,
        frame_count=len(steps),
        width=width,
        height=height,
        png=png,
        alt=escape(f"{surface.title}: " + ", ".join(runs), quote=True),
        clip_x=round(clip_x, 1),
        clip_y=round(figure.bbox.height - clip_y0 - clip_h, 1),
        clip_w=round(clip_w, 1),
        clip_h=round(clip_h, 1),
        paths=svg_paths,
        last=len(steps) - 1,
        last_step=int(steps[-1]),
        data=data.replace("</", "<\\/"),
    )
    return HTML(html)


def _animate_with_matplotlib(
    surface: Surface,
    runs: dict[str, np.ndarray],
    steps: np.ndarray,
    interval: int,
    title: str | None,
    figsize: tuple[float, float],
    dpi: int,
    colors: Sequence[str] | None,
) -> str:
    """The same animation through ``FuncAnimation.to_jshtml`` (one stored image per frame)."""
    figure, ax = plt.subplots(figsize=figsize, dpi=dpi)
    plot_surface(surface, ax, title=title)
    lines, heads = [], []
    for index, (label, points) in enumerate(runs.items()):
        color = _color(index, colors)
        (line,) = ax.plot([], [], color=color, linewidth=1.6, label=label)
        (head,) = ax.plot(
            [], [], linestyle="none", marker="o", markersize=6, color=color, markeredgecolor="black"
        )
        ax.plot(
            *points[0],
            linestyle="none",
            marker="o",
            markersize=7,
            color="white",
            markeredgecolor="black",
        )
        lines.append(line)
        heads.append(head)
    ax.legend(loc="best", fontsize="x-small", framealpha=0.85)
    counter = ax.text(
        0.02,
        0.04,
        "",
        transform=ax.transAxes,
        fontsize="small",
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
    )
    figure.tight_layout()

    def draw(frame: int) -> list:
        step = int(steps[frame])
        for line, head, points in zip(lines, heads, runs.values(), strict=True):
            shown = points[: min(step, len(points) - 1) + 1]
            line.set_data(shown[:, 0], shown[:, 1])
            head.set_data(shown[-1:, 0], shown[-1:, 1])
        counter.set_text(f"step {step}")
        return [*lines, *heads, counter]

    animation = FuncAnimation(figure, draw, frames=len(steps), interval=interval, blit=False)
    html = animation.to_jshtml(default_mode="once")
    plt.close(figure)  # the HTML is the figure; do not also show the last frame as an image
    return html
