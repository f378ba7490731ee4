"""The test surfaces are what they claim, and run_on_surface moves any optimizer on them."""

import math

import pytest
import torch

from optim_lessons.playground.surfaces import (
    BOWL_CONDITION_NUMBER,
    SURFACES,
    Surface,
    accepted_hyperparameters,
    get_surface,
    run_on_surface,
)

NAMES = sorted(SURFACES)


def hessian_at(surface: Surface, point: tuple[float, float]) -> torch.Tensor:
    return torch.autograd.functional.hessian(surface, torch.tensor(point, dtype=torch.float64))


@pytest.mark.parametrize("name", NAMES)
def test_autograd_gradient_matches_a_central_finite_difference(name):
    surface = SURFACES[name]
    generator = torch.Generator().manual_seed(0)
    (x0, x1), (y0, y1) = surface.xlim, surface.ylim
    corner = torch.tensor([x0, y0], dtype=torch.float64)
    span = torch.tensor([x1 - x0, y1 - y0], dtype=torch.float64)
    points = corner + span * torch.rand(20, 2, generator=generator, dtype=torch.float64)
    gradients = surface.gradient(points)
    h = 1e-6
    for axis in range(2):
        shift = torch.zeros(2, dtype=torch.float64)
        shift[axis] = h
        finite_difference = (surface(points + shift) - surface(points - shift)) / (2 * h)
        torch.testing.assert_close(gradients[:, axis], finite_difference, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_every_stated_minimum_is_stationary_with_the_stated_value(name):
    surface = SURFACES[name]
    for minimum in surface.minima:
        point = torch.tensor(minimum, dtype=torch.float64)
        assert surface(point).item() == pytest.approx(surface.min_value, abs=1e-12)
        assert surface.gradient(point).abs().max().item() < 1e-10


@pytest.mark.parametrize("name", NAMES)
def test_every_stated_minimum_has_positive_curvature_in_every_direction(name):
    surface = SURFACES[name]
    for minimum in surface.minima:
        assert torch.linalg.eigvalsh(hessian_at(surface, minimum)).min().item() > 0


@pytest.mark.parametrize("name", NAMES)
def test_no_grid_point_lies_below_the_stated_minimum_value(name):
    surface = SURFACES[name]
    _, _, values = surface.grid(300)
    assert values.min().item() >= surface.min_value - 1e-12


@pytest.mark.parametrize("name", ["bowl", "rotated_bowl"])
def test_bowls_have_curvatures_one_and_twenty_so_condition_number_twenty(name):
    eigenvalues = torch.linalg.eigvalsh(hessian_at(SURFACES[name], (0.3, -1.2)))
    torch.testing.assert_close(
        eigenvalues, torch.tensor([1.0, BOWL_CONDITION_NUMBER], dtype=torch.float64)
    )
    assert "20" in SURFACES[name].description


def test_rotated_bowl_is_not_aligned_with_the_axes():
    hessian = hessian_at(SURFACES["rotated_bowl"], (0.0, 0.0))
    assert abs(hessian[0, 1].item()) > 1.0


def test_saddle_origin_curves_up_along_x_and_down_along_y():
    surface = SURFACES["saddle"]
    origin = torch.zeros(2, dtype=torch.float64)
    assert surface.gradient(origin).abs().max().item() == 0.0
    torch.testing.assert_close(
        hessian_at(surface, (0.0, 0.0)),
        torch.tensor([[2.0, 0.0], [0.0, -2.0]], dtype=torch.float64),
    )


def test_rosenbrock_is_about_2500_times_steeper_across_its_valley_than_along_it():
    eigenvalues = torch.linalg.eigvalsh(hessian_at(SURFACES["rosenbrock"], (1.0, 1.0)))
    assert 2400 < (eigenvalues.max() / eigenvalues.min()).item() < 2700


@pytest.mark.parametrize("name", NAMES)
def test_surfaces_evaluate_batches_in_the_input_dtype(name):
    surface = SURFACES[name]
    points = torch.randn(3, 4, 2, dtype=torch.float32)
    values = surface(points)
    assert values.shape == (3, 4) and values.dtype == torch.float32
    one_by_one = torch.stack([surface(p) for p in points.reshape(-1, 2)]).reshape(3, 4)
    torch.testing.assert_close(values, one_by_one)
    assert surface(torch.zeros(2)).shape == ()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_surfaces_and_the_runner_work_on_cuda(name):
    surface = SURFACES[name]
    point = torch.tensor(surface.start, device="cuda", requires_grad=True)
    surface(point).backward()
    assert point.grad.device.type == "cuda"
    on_gpu = run_on_surface(surface, torch.optim.Adam, steps=20, device="cuda", lr=0.05)
    on_cpu = run_on_surface(surface, torch.optim.Adam, steps=20, lr=0.05)
    torch.testing.assert_close(on_gpu.points, on_cpu.points)


def test_a_point_without_two_coordinates_is_refused():
    with pytest.raises(ValueError, match="last dimension of 2"):
        SURFACES["bowl"](torch.zeros(3))


def test_surfaces_are_found_by_name_and_unknown_names_are_refused():
    assert get_surface("rosenbrock") is SURFACES["rosenbrock"]
    assert get_surface(SURFACES["bowl"]) is SURFACES["bowl"]
    with pytest.raises(ValueError, match="Unknown surface 'banana'"):
        get_surface("banana")


def test_sgd_reaches_the_bowl_minimum():
    trajectory = run_on_surface("bowl", torch.optim.SGD, steps=200, lr=0.09)
    assert trajectory.points.shape == (201, 2)
    assert trajectory.losses.shape == (201,)
    torch.testing.assert_close(
        trajectory.points[0], torch.tensor(SURFACES["bowl"].start, dtype=torch.float64)
    )
    torch.testing.assert_close(
        trajectory.final_point, torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-6
    )
    assert trajectory.final_gap < 1e-12
    assert not trajectory.diverged


def test_the_recorded_losses_are_the_surface_at_the_recorded_points():
    trajectory = run_on_surface("rosenbrock", torch.optim.Adam, steps=30, lr=0.05)
    torch.testing.assert_close(trajectory.losses, SURFACES["rosenbrock"](trajectory.points))
    torch.testing.assert_close(trajectory.gaps, trajectory.losses - 0.0)


def test_the_runner_does_exactly_what_a_hand_written_gradient_descent_loop_does():
    surface, lr = SURFACES["rosenbrock"], 1e-3
    point = torch.tensor(surface.start, dtype=torch.float64)
    by_hand = [point.clone()]
    for _ in range(50):
        point = point - lr * surface.gradient(point)
        by_hand.append(point.clone())
    trajectory = run_on_surface(surface, torch.optim.SGD, steps=50, lr=lr)
    torch.testing.assert_close(trajectory.points, torch.stack(by_hand), rtol=0, atol=1e-15)


def test_sgd_above_two_over_the_largest_curvature_diverges_on_the_bowl():
    # The largest curvature is 20, so lr = 0.11 > 2 / 20 makes the y-coordinate grow by 1.2 a step.
    trajectory = run_on_surface("bowl", torch.optim.SGD, steps=60, lr=0.11)
    y = trajectory.points[:, 1]
    torch.testing.assert_close(
        y[1:] / y[:-1], torch.full((60,), 1 - 0.11 * 20, dtype=torch.float64)
    )
    assert trajectory.final_gap > trajectory.gaps[0].item()


def test_lbfgs_moves_through_the_closure_and_solves_rosenbrock():
    # With torch's default tolerances LBFGS stops once the loss changes by less than 1e-9;
    # switched off, its line-searched steps land on (1, 1) to the last bit.
    default = run_on_surface(
        "rosenbrock", torch.optim.LBFGS, steps=10, line_search_fn="strong_wolfe"
    )
    assert default.final_gap < 1e-9
    exact = run_on_surface(
        "rosenbrock",
        torch.optim.LBFGS,
        steps=10,
        line_search_fn="strong_wolfe",
        tolerance_grad=0.0,
        tolerance_change=0.0,
    )
    torch.testing.assert_close(
        exact.final_point, torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-12
    )


def test_gradient_noise_repeats_with_its_seed_and_changes_with_another():
    first = run_on_surface("bowl", torch.optim.SGD, steps=20, lr=0.05, noise=1.0, seed=3)
    again = run_on_surface("bowl", torch.optim.SGD, steps=20, lr=0.05, noise=1.0, seed=3)
    other = run_on_surface("bowl", torch.optim.SGD, steps=20, lr=0.05, noise=1.0, seed=4)
    exact = run_on_surface("bowl", torch.optim.SGD, steps=20, lr=0.05)
    torch.testing.assert_close(first.points, again.points, rtol=0, atol=0)
    assert not torch.allclose(first.points, other.points)
    assert not torch.allclose(first.points, exact.points)


def test_noise_has_the_stated_standard_deviation():
    # With lr = 1 on a flat direction... use the bowl at its minimum: one SGD step moves the
    # point by -lr * (0 + noise * kick), so the steps' spread is lr * noise.
    steps = [
        run_on_surface(
            "bowl", torch.optim.SGD, steps=1, start=(0.0, 0.0), lr=0.1, noise=2.0, seed=s
        )
        for s in range(400)
    ]
    moves = torch.stack([t.points[1] for t in steps])
    assert moves.std().item() == pytest.approx(0.1 * 2.0, rel=0.1)


def test_a_matrix_parameter_lets_muon_run():
    trajectory = run_on_surface("bowl", torch.optim.Muon, steps=30, param_shape=(1, 2), lr=0.05)
    assert trajectory.final_gap < trajectory.gaps[0].item()


def test_sparse_gradients_let_sparse_adam_run():
    trajectory = run_on_surface("bowl", torch.optim.SparseAdam, steps=100, sparse_grad=True, lr=0.1)
    assert trajectory.final_gap < 0.1 * trajectory.gaps[0].item()


def test_a_scheduler_is_stepped_after_every_step_and_its_lrs_are_recorded():
    trajectory = run_on_surface(
        "bowl",
        torch.optim.SGD,
        steps=6,
        lr=0.08,
        scheduler=lambda optimizer: torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=2, gamma=0.5
        ),
    )
    assert trajectory.lrs == [0.08, 0.08, 0.04, 0.04, 0.02, 0.02]


def test_float32_runs_stay_close_to_float64_runs():
    single = run_on_surface("rosenbrock", torch.optim.Adam, steps=50, dtype=torch.float32, lr=0.05)
    double = run_on_surface("rosenbrock", torch.optim.Adam, steps=50, lr=0.05)
    torch.testing.assert_close(single.points, double.points, rtol=0, atol=1e-4)


def test_a_trajectory_records_its_optimizer_and_hyperparameters():
    trajectory = run_on_surface(
        "saddle", torch.optim.SGD, steps=3, lr=0.1, momentum=0.5, label="heavy ball"
    )
    assert trajectory.optimizer == "heavy ball"
    assert trajectory.hyperparameters == {"lr": 0.1, "momentum": 0.5}
    assert trajectory.surface == "saddle" and trajectory.min_value == -0.5
    assert trajectory.steps == 3 and len(trajectory) == 4


def test_gradient_descent_escapes_the_saddle_after_lingering_near_it():
    trajectory = run_on_surface("saddle", torch.optim.SGD, steps=60, lr=0.1)
    distance_to_saddle = trajectory.points.norm(dim=1)
    assert distance_to_saddle.min().item() < 0.05  # it comes close to the saddle first
    torch.testing.assert_close(
        trajectory.final_point, torch.tensor([0.0, 1.0], dtype=torch.float64), rtol=0, atol=1e-3
    )


def test_a_diverged_run_says_so():
    trajectory = run_on_surface("bowl", torch.optim.SGD, steps=300, lr=1.0)
    assert trajectory.diverged
    assert math.isnan(trajectory.final_gap) or math.isinf(trajectory.final_gap)


def test_accepted_hyperparameters_reads_the_constructor():
    sgd = accepted_hyperparameters(torch.optim.SGD)
    assert sgd["lr"] == 1e-3 and sgd["momentum"] == 0 and "params" not in sgd
    assert accepted_hyperparameters(torch.optim.Adam)["betas"] == (0.9, 0.999)
