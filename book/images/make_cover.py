"""Draw the cover, logo and favicon: torch.optim optimizers racing down the Rosenbrock valley.

Run from the repository root to regenerate the three images:

    .venv/bin/python book/images/make_cover.py

Every path is a real run of a built-in torch.optim optimizer from the same start point, in
float64, so the figure is deterministic.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
START = (-1.5, 2.0)
MINIMUM = (1.0, 1.0)
STEPS = 400
# The darker two thirds of viridis: deep purple in the valley, teal and green up the walls.
SURFACE_COLOURS = matplotlib.colors.ListedColormap(
    matplotlib.colormaps["viridis"](np.linspace(0.0, 0.65, 256))
)

# name -> (optimizer class, hyperparameters, line colour). Learning rates are picked so that each
# optimizer shows its character on this surface within STEPS steps.
RACERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, float | bool], str]] = {
    "SGD": (torch.optim.SGD, {"lr": 1e-3}, "#ffffff"),
    "SGD + momentum": (torch.optim.SGD, {"lr": 1e-3, "momentum": 0.9}, "#ffb000"),
    "Adagrad": (torch.optim.Adagrad, {"lr": 0.5}, "#ff7a1a"),
    "RMSprop": (torch.optim.RMSprop, {"lr": 1e-2}, "#ff4fa3"),
    "Adam": (torch.optim.Adam, {"lr": 0.1}, "#33d6ff"),
    "Rprop": (torch.optim.Rprop, {"lr": 1e-2}, "#7dff7a"),
}


def rosenbrock(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray):
    """The Rosenbrock function: a long curved valley with its minimum at (1, 1)."""
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def trajectory(
    optimizer_class: type[torch.optim.Optimizer], hyperparameters: dict, steps: int = STEPS
) -> np.ndarray:
    """The points one optimizer visits, start included: an array of shape (steps + 1, 2)."""
    point = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    optimizer = optimizer_class([point], **hyperparameters)
    path = [point.detach().clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        loss = rosenbrock(point[0], point[1])
        loss.backward()
        optimizer.step()
        path.append(point.detach().clone())
    return torch.stack(path).numpy()


def draw_surface(ax: plt.Axes, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    """Filled log-spaced contours of the Rosenbrock function on a dark background."""
    xs = np.linspace(*xlim, 500)
    ys = np.linspace(*ylim, 500)
    grid_x, grid_y = np.meshgrid(xs, ys)
    heights = np.log10(rosenbrock(grid_x, grid_y) + 1e-3)
    ax.set_facecolor("#10131a")
    ax.contourf(grid_x, grid_y, heights, levels=40, cmap=SURFACE_COLOURS, alpha=0.55)
    ax.contour(grid_x, grid_y, heights, levels=20, colors="white", linewidths=0.3, alpha=0.25)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def make_cover(path: Path) -> None:
    """The landing page figure: six optimizers, one start point, one minimum, one panel each."""
    fig = plt.figure(figsize=(12, 5.2), facecolor="#10131a")
    columns, rows = 3, 2
    left, bottom, width, height, gap = 0.015, 0.04, 0.195, 0.445, 0.012
    for index, (name, (optimizer_class, hyperparameters, colour)) in enumerate(RACERS.items()):
        row, column = divmod(index, columns)
        ax = fig.add_axes((left + column * (width + gap),
                           bottom + (rows - 1 - row) * (height + 2 * gap), width, height))
        draw_surface(ax, (-2.0, 1.8), (-0.6, 2.9))
        path_xy = trajectory(optimizer_class, hyperparameters)
        ax.plot(path_xy[:, 0], path_xy[:, 1], color=colour, linewidth=1.6)
        ax.plot(path_xy[:, 0], path_xy[:, 1], "o", color=colour, markersize=1.8)
        ax.plot(*START, "o", color="white", markersize=6, markeredgecolor="black")
        ax.plot(*MINIMUM, "*", color="white", markersize=12, markeredgecolor="black")
        ax.plot(*path_xy[-1], "o", color=colour, markersize=7, markeredgecolor="black")
        distance = float(np.hypot(*(path_xy[-1] - np.array(MINIMUM))))
        ax.text(0.04, 0.95, name, transform=ax.transAxes, color=colour, fontsize=12,
                fontweight="bold", va="top")
        ax.text(0.04, 0.04, f"{distance:.2f} from the minimum", transform=ax.transAxes,
                color="#d0d3da", fontsize=8.5, va="bottom")

    text_left = left + columns * (width + gap) + 0.015
    fig.text(text_left, 0.72, "Optimizers\nfrom scratch", color="white", fontsize=32,
             fontweight="bold", va="center", linespacing=1.1)
    fig.text(text_left, 0.44, "Every torch.optim algorithm,\nbuilt by hand and checked\n"
             "step by step against PyTorch.", color="#c8cbd3", fontsize=14, va="center",
             linespacing=1.4)
    fig.text(text_left, 0.17, f"{len(RACERS)} optimizers, {STEPS} steps each, from the\n"
             "same start on the Rosenbrock valley\n(white star: the minimum).",
             color="#8a8f9c", fontsize=10, va="center", linespacing=1.4)
    fig.savefig(path, dpi=100, facecolor=fig.get_facecolor(), metadata={"Software": None})
    plt.close(fig)


def draw_mark(ax: plt.Axes) -> None:
    """The book's mark: two optimizers' paths down the valley to its minimum."""
    draw_surface(ax, (-1.8, 1.6), (-0.4, 2.6))
    for name in ("SGD + momentum", "Adam"):
        optimizer_class, hyperparameters, colour = RACERS[name]
        path_xy = trajectory(optimizer_class, hyperparameters)
        ax.plot(path_xy[:, 0], path_xy[:, 1], color=colour, linewidth=3.0)
    ax.plot(*MINIMUM, "*", color="white", markersize=16, markeredgecolor="black")


def make_logo(path: Path) -> None:
    """The sidebar logo: the mark beside the book's title."""
    fig = plt.figure(figsize=(4.0, 1.4), facecolor="#10131a")
    draw_mark(fig.add_axes((0.0, 0.0, 0.35, 1.0)))
    fig.text(0.40, 0.5, "Optimizers\nfrom scratch", color="white", fontsize=21,
             fontweight="bold", va="center", linespacing=1.05)
    fig.savefig(path, dpi=100, facecolor=fig.get_facecolor(), metadata={"Software": None})
    plt.close(fig)


def make_favicon(path: Path) -> None:
    """The browser-tab icon: the mark alone, square."""
    fig = plt.figure(figsize=(2.0, 2.0), facecolor="#10131a")
    draw_mark(fig.add_axes((0.0, 0.0, 1.0, 1.0)))
    fig.savefig(path, dpi=48, facecolor=fig.get_facecolor(), metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    make_cover(HERE / "cover.png")
    make_logo(HERE / "logo.png")
    make_favicon(HERE / "favicon.png")
    print(f"wrote cover.png, logo.png and favicon.png in {HERE}")
