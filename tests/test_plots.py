"""Every figure has a title, labelled axes and a legend; the animations are what they say."""

import json
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from optim_lessons.playground.animations import animate_trajectories  # noqa: E402
from optim_lessons.playground.plots import (  # noqa: E402
    COLORS,
    default_title,
    plot_1d_descent,
    plot_curves,
    plot_history,
    plot_losses,
    plot_surface,
    plot_trajectories,
    smooth,
)
from optim_lessons.playground.surfaces import SURFACES, run_on_surface  # noqa: E402
from optim_lessons.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def bowl_runs():
    return {
        "SGD": run_on_surface("bowl", torch.optim.SGD, steps=40, lr=0.09),
        "Adam": run_on_surface("bowl", torch.optim.Adam, steps=40, lr=0.3),
    }


def legend_texts(ax):
    legend = ax.get_legend()
    assert legend is not None, "the figure has no legend"
    return [text.get_text() for text in legend.get_texts()]


@pytest.mark.parametrize("name", sorted(SURFACES))
def test_every_formula_renders_in_a_figure_title(name):
    ax = plot_surface(name, title=f"${SURFACES[name].formula}$")
    ax.figure.canvas.draw()  # mathtext parses the title here, and raises on unknown commands


def test_default_titles_name_the_surface_and_show_short_formulas():
    assert (
        default_title("rosenbrock")
        == "Rosenbrock's banana valley: $f(x, y) = (1 - x)^2 + 100\\,(y - x^2)^2$"
    )
    assert default_title("rotated_bowl") == "Rotated ill-conditioned bowl"


def test_trajectory_plot_has_title_labels_legend_start_and_minimum(bowl_runs):
    ax = plot_trajectories("bowl", bowl_runs, title="Two optimizers on the bowl")
    assert ax.get_title() == "Two optimizers on the bowl"
    assert ax.get_xlabel() and ax.get_ylabel()
    assert legend_texts(ax) == ["minimum", "SGD", "Adam", "start"]
    assert ax.get_xlim() == SURFACES["bowl"].xlim and ax.get_ylim() == SURFACES["bowl"].ylim
    drawn = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(drawn["SGD"].get_xydata(), bowl_runs["SGD"].points.numpy())
    np.testing.assert_allclose(drawn["start"].get_xydata()[0], SURFACES["bowl"].start)
    np.testing.assert_allclose(drawn["minimum"].get_xydata()[0], SURFACES["bowl"].minimum)


def test_trajectory_plot_accepts_tensors_and_lists_of_trajectories(bowl_runs):
    ax = plot_trajectories("bowl", {"by hand": bowl_runs["SGD"].points})
    assert "by hand" in legend_texts(ax)
    ax = plot_trajectories(SURFACES["bowl"], list(bowl_runs.values()))
    assert legend_texts(ax)[1:3] == ["SGD", "Adam"]


def test_a_diverged_run_is_labelled_as_such():
    runs = {"too large": run_on_surface("bowl", torch.optim.SGD, steps=50, lr=0.15)}
    assert "too large (diverged)" in legend_texts(plot_trajectories("bowl", runs))


def test_all_minima_are_marked_on_a_surface_with_several():
    ax = plot_surface("himmelblau")
    (stars,) = [line for line in ax.get_lines() if line.get_label() == "minima"]
    assert len(stars.get_xydata()) == 4


def test_loss_plot_draws_the_gap_to_the_minimum_on_a_log_scale(bowl_runs):
    ax = plot_losses(bowl_runs, title="Gap")
    assert ax.get_yscale() == "log"
    assert ax.get_title() == "Gap" and ax.get_xlabel() == "step"
    assert ax.get_ylabel() == r"$f(x, y) - f^*$"
    assert legend_texts(ax) == ["SGD", "Adam"]
    np.testing.assert_allclose(
        ax.get_lines()[0].get_ydata(), np.maximum(bowl_runs["SGD"].gaps.numpy(), 1e-16)
    )


def test_loss_plot_of_one_sequence_needs_no_legend():
    ax = plot_losses({"only": [3.0, 2.0, 1.0]}, log=False)
    assert ax.get_legend() is None and ax.get_yscale() == "linear"
    assert ax.get_ylabel() == "loss"


def make_history(scale: float) -> History:
    steps = np.arange(1, 301)
    return History(
        loss=list(scale * 2.3 / np.sqrt(steps)),
        lr=[0.1] * 300,
        train_loss=[1.0, 0.6, 0.5],
        train_accuracy=[0.7, 0.8, 0.85],
        test_loss=[0.7, 0.55, 0.5],
        test_accuracy=[0.75, 0.8, 0.82 - 0.01 * scale],
        epoch_seconds=[0.4, 0.4, 0.4],
    )


def test_history_plot_has_a_smoothed_loss_panel_and_a_test_accuracy_panel():
    figure = plot_history({"SGD": make_history(1.0), "Adam": make_history(2.0)}, title="Two runs")
    loss_ax, accuracy_ax = figure.axes
    assert figure._suptitle.get_text() == "Two runs"
    for ax in (loss_ax, accuracy_ax):
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        assert legend_texts(ax) == ["SGD", "Adam"]
    smoothed = [line for line in loss_ax.get_lines() if line.get_label() == "SGD"][0]
    np.testing.assert_allclose(smoothed.get_ydata(), smooth(make_history(1.0).loss, 50))
    np.testing.assert_allclose(
        accuracy_ax.get_lines()[0].get_xydata(), [[1, 0.75], [2, 0.8], [3, 0.81]]
    )


def test_history_plot_can_add_dashed_train_accuracy():
    figure = plot_history({"SGD": make_history(1.0)}, show_train_accuracy=True)
    assert legend_texts(figure.axes[1]) == ["SGD (test)", "SGD (train)"]


def test_smooth_is_a_trailing_mean_with_shorter_windows_at_the_start():
    np.testing.assert_allclose(smooth([4.0, 2.0, 6.0, 0.0, 2.0], 3), [4.0, 3.0, 4.0, 8 / 3, 8 / 3])
    np.testing.assert_allclose(smooth(torch.tensor([1.0, 2.0]), 1), [1.0, 2.0])


def test_curve_plot_labels_axes_and_uses_log_scales_on_request():
    ax = plot_curves(
        {"a": ([1, 10, 100], [1.0, 0.1, 0.01]), "b": ([1, 10, 100], [2.0, 0.2, 0.02])},
        xlabel="batch size",
        ylabel="variance",
        title="Noise",
        logx=True,
        logy=True,
    )
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("batch size", "variance", "Noise")
    assert legend_texts(ax) == ["a", "b"]


def test_one_dimensional_plot_puts_every_iterate_on_the_curve():
    iterates = [2.0, -1.6, 1.28]
    ax = plot_1d_descent(lambda x: x**2, {"lr = 0.9": iterates}, title="Overshooting")
    assert (
        ax.get_title() == "Overshooting"
        and ax.get_xlabel() == "$x$"
        and ax.get_ylabel() == "$f(x)$"
    )
    assert legend_texts(ax) == ["$f$", "lr = 0.9"]
    (path,) = [line for line in ax.get_lines() if line.get_label() == "lr = 0.9"]
    np.testing.assert_allclose(path.get_xydata(), [[x, x**2] for x in iterates])


def animation_data(html: str) -> dict:
    return json.loads(re.search(r"var data = (\{.*?\});", html).group(1))


def test_animation_has_the_requested_frames_and_paths_in_a_small_page(bowl_runs):
    html = animate_trajectories("bowl", bowl_runs, frames=20).data
    data = animation_data(html)
    assert 'data-frames="20"' in html
    assert len(data["steps"]) == 20 and data["steps"][0] == 0 and data["steps"][-1] == 40
    assert [len(path) for path in data["paths"]] == [41, 41]
    assert html.count("<polyline") == 2 and html.count("data:image/png;base64,") == 1
    assert len(html) < 150_000


def test_a_short_run_gets_one_frame_per_step(bowl_runs):
    short = {"SGD": run_on_surface("bowl", torch.optim.SGD, steps=9, lr=0.09)}
    assert animation_data(animate_trajectories("bowl", short, frames=60).data)["steps"] == list(
        range(10)
    )


def test_animation_bytes_repeat_exactly_so_stored_outputs_can_be_compared(bowl_runs):
    assert (
        animate_trajectories("bowl", bowl_runs).data == animate_trajectories("bowl", bowl_runs).data
    )


def test_animation_draws_paths_inside_the_plot_area():
    converged = {
        "SGD": run_on_surface("bowl", torch.optim.SGD, steps=200, lr=0.09),
        "Adam": run_on_surface("bowl", torch.optim.Adam, steps=200, lr=0.1),
    }
    assert max(run.final_point.abs().max().item() for run in converged.values()) < 0.01
    html = animate_trajectories("bowl", converged).data
    rect = re.search(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', html)
    x, y, width, height = map(float, rect.groups())
    # The bowl's minimum (0, 0) sits at the centre of the plot window: the paths end there.
    for path in animation_data(html)["paths"]:
        assert path[-1][0] == pytest.approx(x + width / 2, abs=1.0)
        assert path[-1][1] == pytest.approx(y + height / 2, abs=1.0)


def test_a_diverging_run_is_cut_where_it_stops_being_finite():
    runs = {"blows up": run_on_surface("bowl", torch.optim.SGD, steps=300, lr=1.0)}
    data = animation_data(animate_trajectories("bowl", runs).data)
    points = runs["blows up"].points
    assert len(data["paths"][0]) == int(torch.isfinite(points).all(dim=1).sum())


def test_matplotlib_jshtml_animation_has_the_requested_frame_count(bowl_runs):
    html = animate_trajectories("bowl", bowl_runs, frames=5, method="jshtml").data
    assert len(re.findall(r"frames\[\d+\] = ", html)) == 5
    assert plt.get_fignums() == []  # closed, so a notebook does not show it a second time


def test_unknown_animation_method_is_refused(bowl_runs):
    with pytest.raises(ValueError, match="method must be"):
        animate_trajectories("bowl", bowl_runs, method="gif")


def test_a_run_has_the_same_colour_on_the_map_and_on_the_loss_curve(bowl_runs):
    map_ax = plot_trajectories("bowl", bowl_runs)
    loss_ax = plot_losses(bowl_runs)
    for label in bowl_runs:
        (on_map,) = [line for line in map_ax.get_lines() if line.get_label() == label]
        (on_curve,) = [line for line in loss_ax.get_lines() if line.get_label() == label]
        assert on_map.get_color() == on_curve.get_color()


def test_colors_can_be_chosen(bowl_runs):
    ax = plot_trajectories("bowl", bowl_runs, colors=COLORS[2:])
    drawn = {line.get_label(): line.get_color() for line in ax.get_lines()}
    assert (drawn["SGD"], drawn["Adam"]) == (COLORS[2], COLORS[3])


def test_contour_lines_are_optional():
    plain, lined = plot_surface("saddle"), plot_surface("saddle", lines=True)
    assert len(lined.get_children()) == len(plain.get_children()) + 1
