"""The figures of "Optimizers in practice" draw what their titles and legends say."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from optim_lessons.playground.practice_figures import (  # noqa: E402
    plot_gradient_norms,
    plot_group_rates,
    plot_idle_parameter,
    plot_restart_spikes,
    plot_resumed_runs,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def legend_texts(ax):
    legend = ax.get_legend()
    assert legend is not None, "the figure has no legend"
    return [text.get_text() for text in legend.get_texts()]


def test_gradient_norms_counts_the_clipped_steps_and_draws_the_threshold():
    ax = plot_gradient_norms([5.0, 0.5, 2.0, 1.0], max_norm=1.0)
    assert ax.get_title() == "Gradient norm before clipping: 2 of 4 steps clipped"
    assert ax.get_yscale() == "log"
    assert "max_norm = 1" in legend_texts(ax)
    before, seen = ax.lines[0].get_ydata(), ax.lines[1].get_ydata()
    np.testing.assert_array_equal(before, [5.0, 0.5, 2.0, 1.0])
    np.testing.assert_array_equal(seen, [1.0, 0.5, 1.0, 1.0])  # a norm equal to max_norm is kept
    clipped = ax.collections[0].get_offsets()
    np.testing.assert_array_equal(np.asarray(clipped)[:, 0], [1, 3])


def test_gradient_norms_refuses_a_threshold_that_is_not_positive():
    with pytest.raises(ValueError, match="max_norm must be positive"):
        plot_gradient_norms([1.0], max_norm=0.0)
    with pytest.raises(ValueError, match="non-empty"):
        plot_gradient_norms([], max_norm=1.0)


def test_resumed_runs_put_an_exact_resume_on_zero():
    straight = [2.0, 1.5, 1.0, 0.8]
    fig = plot_resumed_runs(straight, {"resumed": straight, "wrong": [2.0, 1.5, 1.2, 0.7]},
                            resume_step=2, window=1)
    left, right = fig.axes
    assert legend_texts(left) == ["uninterrupted", "resumed", "wrong"]
    assert right.get_yscale() == "symlog"
    resumed_gap, wrong_gap = (line.get_ydata() for line in right.lines[:2])
    np.testing.assert_array_equal(resumed_gap, [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(wrong_gap, [0.0, 0.0, 0.2, 0.1])
    assert right.get_ylim()[0] < 0.0  # a run that stays at zero is drawn above the bottom edge
    with pytest.raises(ValueError, match="has 3 losses"):
        plot_resumed_runs(straight, {"short": [1.0, 1.0, 1.0]}, resume_step=2)


def test_restart_spikes_mark_every_epoch_boundary():
    losses = {"one": [1.0] * 9, "new each epoch": [1.0, 0.5, 0.4, 2.0, 0.5, 0.4, 2.0, 0.5, 0.4]}
    ax = plot_restart_spikes(losses, steps_per_epoch=3, window=1)
    boundaries = sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":")
    assert boundaries == [3.5, 6.5]
    assert legend_texts(ax) == ["one (mean of 1 batches)", "new each epoch (mean of 1 batches)"]
    with pytest.raises(ValueError, match="steps_per_epoch"):
        plot_restart_spikes(losses, steps_per_epoch=0)


def test_group_rates_draw_one_line_per_group_on_a_log_axis():
    ax = plot_group_rates({"body": [0.01, 0.005], "head": [0.05, 0.025]})
    assert legend_texts(ax) == ["body", "head"]
    assert ax.get_yscale() == "log"
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [0.05, 0.025])


def test_idle_parameter_shades_the_steps_in_the_loss():
    ax = plot_idle_parameter({"None": [1.0, 0.9, 0.9], "zeros": [1.0, 0.9, 0.81]}, active_steps=1)
    assert legend_texts(ax) == ["None", "zeros", "in the loss"]
    (span,) = ax.patches
    assert span.get_x() == 0 and span.get_width() == 1
