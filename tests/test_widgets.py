"""The surface explorer builds without a display and redraws what its controls say."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from optim_lessons.playground.surfaces import SURFACES, run_on_surface  # noqa: E402
from optim_lessons.playground.widgets import SurfaceExplorer, explore, surface_explorer  # noqa: E402


def visible(explorer: SurfaceExplorer) -> list[str]:
    return [control.description for control in explorer.control_box.children]


def drawn_path(explorer: SurfaceExplorer):
    trajectory_ax = explorer.figure.axes[0]
    (line,) = [
        line
        for line in trajectory_ax.get_lines()
        if line.get_label() == explorer.optimizer_menu.value
    ]
    return torch.tensor(line.get_xydata())


@pytest.fixture(scope="module")
def explorer():
    return surface_explorer(
        {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam}, surfaces=["bowl", "saddle"], lr=0.01
    )


def test_the_explorer_builds_without_a_display_and_draws_its_first_run(explorer):
    assert explorer.trajectory is not None and explorer.figure is not None
    assert explorer.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    expected = run_on_surface(
        "bowl", torch.optim.SGD, steps=60, lr=0.01, momentum=0.0, nesterov=False
    )
    torch.testing.assert_close(explorer.trajectory.points, expected.points)
    torch.testing.assert_close(drawn_path(explorer), expected.points)


def test_a_larger_learning_rate_changes_the_drawn_path_and_image(explorer):
    explorer.update(optimizer="SGD", surface="bowl", lr=0.01)
    slow_path, slow_image = drawn_path(explorer), explorer.image.value
    trajectory = explorer.update(lr=0.09)
    fast_path = drawn_path(explorer)
    assert trajectory.hyperparameters["lr"] == pytest.approx(0.09, rel=1e-3)
    assert not torch.allclose(slow_path, fast_path)
    assert explorer.image.value != slow_image
    # A larger step (still below 2 / 20) gets closer to the minimum in the same number of steps.
    assert (
        trajectory.final_gap < run_on_surface("bowl", torch.optim.SGD, steps=60, lr=0.01).final_gap
    )


def test_moving_a_slider_redraws_as_update_does(explorer):
    explorer.update(optimizer="SGD", surface="bowl", lr=0.01, momentum=0.0)
    explorer.controls["momentum"].value = 0.5  # what a reader's drag does
    assert explorer.trajectory.hyperparameters["momentum"] == 0.5
    expected = run_on_surface(
        "bowl", torch.optim.SGD, steps=60, lr=0.01, momentum=0.5, nesterov=False
    )
    torch.testing.assert_close(drawn_path(explorer), expected.points)


def test_the_sliders_follow_the_optimizer_signature(explorer):
    explorer.update(optimizer="SGD")
    assert visible(explorer) == ["lr", "momentum", "nesterov", "steps", "noise"]
    explorer.update(optimizer="Adam")
    assert visible(explorer) == ["lr", "beta1", "beta2", "steps", "noise"]
    assert explorer.hyperparameters()["betas"] == (0.9, 0.999)
    explorer.update(betas=(0.5, 0.99))
    assert explorer.trajectory.hyperparameters["betas"] == (0.5, 0.99)


def test_changing_the_surface_moves_the_start(explorer):
    trajectory = explorer.update(optimizer="SGD", surface="saddle")
    torch.testing.assert_close(
        trajectory.points[0], torch.tensor(SURFACES["saddle"].start, dtype=torch.float64)
    )
    explorer.update(surface="bowl")


def test_settings_the_optimizer_refuses_show_its_message_instead(explorer):
    explorer.update(optimizer="SGD", momentum=0.0)
    previous = explorer.trajectory
    assert explorer.update(nesterov=True) is None
    assert "Nesterov momentum requires a momentum and zero dampening" in explorer.message.value
    assert explorer.trajectory is previous
    explorer.update(nesterov=False)
    assert "final f - f*" in explorer.message.value


def test_start_controls_set_the_starting_point():
    explorer = explore(
        {"SGD": torch.optim.SGD}, surfaces=["himmelblau"], controls=("lr", "start"), lr=0.01
    )
    trajectory = explorer.update(start=(1.0, -2.0))
    assert trajectory.points[0].tolist() == [1.0, -2.0]


def test_the_text_form_is_short_and_says_what_is_shown(explorer):
    explorer.update(optimizer="SGD", surface="bowl", lr=0.05, momentum=0.9, nesterov=False)
    bundle = explorer._repr_mimebundle_()
    assert (
        bundle["text/plain"]
        == "SurfaceExplorer: SGD(lr=0.05, momentum=0.9, nesterov=False) on bowl"
    )
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view == {"version_major": 2, "version_minor": 0, "model_id": explorer.widget.model_id}
    # ipywidgets 8 builds the same view itself; ipywidgets 7 (Colab's) has no such method,
    # which is why the explorer builds it
    own = getattr(explorer.widget, "_repr_mimebundle_", None)
    if own is not None:
        assert own()["application/vnd.jupyter.widget-view+json"] == view


def test_animate_plays_the_current_run(explorer):
    explorer.update(optimizer="SGD", surface="bowl", lr=0.05, steps=30)
    html = explorer.animate(frames=10).data
    assert 'data-frames="10"' in html and explorer.describe() in html


def test_unknown_controls_and_values_are_refused():
    with pytest.raises(ValueError, match="Unknown control 'temperature'"):
        surface_explorer(controls=("lr", "temperature"))
    with pytest.raises(ValueError, match="no control for"):
        surface_explorer(temperature=1.0)


def test_explorer_runs_muon_and_sparse_adam_with_the_parameter_layout_they_need():
    import functools

    from optim_lessons import optimizers as ours
    from optim_lessons.playground.widgets import parameter_layout, surface_explorer

    assert parameter_layout(torch.optim.Muon) == {"param_shape": (1, 2)}
    assert parameter_layout(functools.partial(ours.SparseAdam, eps=1e-6)) == {"sparse_grad": True}
    assert parameter_layout(torch.optim.Adam) == {}
    explorer = surface_explorer(
        optimizers={"Muon": ours.Muon, "SparseAdam": torch.optim.SparseAdam},
        surfaces=["bowl"],
        optimizer="Muon",
        lr=0.05,
        steps=20,
    )
    muon_run = explorer.update()
    assert muon_run is not None, explorer.message.value
    assert muon_run.points.shape == (21, 2)
    assert muon_run.final_gap < muon_run.gaps[0]
    sparse_run = explorer.update(optimizer="SparseAdam")
    assert sparse_run is not None, explorer.message.value
    assert sparse_run.final_gap < sparse_run.gaps[0]
