"""The papers' momentum form, the rate formula, and the self-checks of the momentum chapter."""

import math

import pytest
import torch
from _optim_checks import one_cpu_thread  # noqa: F401  (fixture: one CPU thread)

from optim_lessons.exercises import attempt
from optim_lessons.exercises.ch04_momentum import (
    PaperMomentum,
    check_buffer_rescaling,
    check_climbed_function,
    check_first_difference,
    check_nesterov_limit,
    check_tuned_momentum,
    momentum_rate,
)
from optim_lessons.parity import compare_trajectories
from optim_lessons.playground.surfaces import SURFACES


def bowl(point):
    return 0.5 * (point[0] ** 2 + 20 * point[1] ** 2)


def run(optimizer_cls, steps, lr_at=None, **kwargs):
    """Points (and velocities, for PaperMomentum) on the bowl; ``lr_at(step)`` sets the rate."""
    point = torch.tensor([-4.5, 1.5], dtype=torch.float64, requires_grad=True)
    optimizer = optimizer_cls([point], **kwargs)

    def closure():
        optimizer.zero_grad()
        loss = bowl(point)
        loss.backward()
        return loss

    points, velocities = [point.detach().clone()], [torch.zeros(2, dtype=torch.float64)]
    for step in range(steps):
        if lr_at is not None:
            optimizer.param_groups[0]["lr"] = lr_at(step)
        optimizer.step(closure)
        points.append(point.detach().clone())
        velocity = optimizer.state[point].get("velocity")
        velocities.append(velocity.clone() if velocity is not None else None)
    return torch.stack(points), velocities


def test_paper_momentum_follows_torch_sgd_at_a_constant_learning_rate():
    report = compare_trajectories(
        PaperMomentum, torch.optim.SGD, {"lr": 0.02, "momentum": 0.9}, steps=40
    )
    assert report.max_abs_diff < 1e-12


def test_paper_momentum_leaves_torch_sgd_when_the_learning_rate_drops():
    def step_schedule(step):
        return 0.05 if step < 20 else 0.005

    ours, _ = run(PaperMomentum, 40, step_schedule, lr=0.05, momentum=0.9)
    torchs, _ = run(torch.optim.SGD, 40, step_schedule, lr=0.05, momentum=0.9)
    assert (ours[:21] - torchs[:21]).abs().max() < 1e-12
    assert (ours - torchs).abs().max() > 0.1


def test_torch_nesterov_walks_the_papers_look_ahead_points():
    momentum = 0.9
    paper_points, velocities = run(PaperMomentum, 60, lr=0.05, momentum=momentum, nesterov=True)
    torch_points, _ = run(torch.optim.SGD, 60, lr=0.05, momentum=momentum, nesterov=True)
    look_ahead = paper_points + momentum * torch.stack(velocities)
    assert (look_ahead - torch_points).abs().max() < 1e-12
    assert (paper_points - torch_points).abs().max() > 0.1  # the paper's own iterates differ


def test_paper_nesterov_puts_the_parameter_back_before_stepping():
    point = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    optimizer = PaperMomentum([point], lr=0.1, momentum=0.5, nesterov=True)
    optimizer.state[point]["velocity"] = torch.tensor([0.4, 0.2], dtype=torch.float64)
    seen = []

    def closure():
        optimizer.zero_grad()
        seen.append(point.detach().clone())
        loss = (point**2).sum() / 2
        loss.backward()
        return loss

    optimizer.step(closure)
    look_ahead = torch.tensor([1.2, -1.9], dtype=torch.float64)
    torch.testing.assert_close(seen[0], look_ahead)
    velocity = 0.5 * torch.tensor([0.4, 0.2], dtype=torch.float64) - 0.1 * look_ahead
    start = torch.tensor([1.0, -2.0], dtype=torch.float64)
    torch.testing.assert_close(point.detach(), start + velocity)


def test_paper_nesterov_needs_a_closure():
    point = torch.zeros(2, requires_grad=True)
    point.grad = torch.ones(2)
    with pytest.raises(ValueError, match="needs a closure"):
        PaperMomentum([point], lr=0.1, nesterov=True).step()


@pytest.mark.parametrize("lr, momentum", [(-0.1, 0.9), (0.1, -0.5)])
def test_paper_momentum_rejects_negative_hyperparameters(lr, momentum):
    with pytest.raises(ValueError, match="Invalid"):
        PaperMomentum([torch.zeros(1, requires_grad=True)], lr=lr, momentum=momentum)


def test_momentum_rate_without_momentum_is_plain_gradient_descent():
    for lr, curvature in [(0.09, 1.0), (0.09, 20.0), (0.12, 20.0)]:
        assert momentum_rate(lr, 0.0, curvature) == pytest.approx(abs(1 - lr * curvature))
        nesterov = momentum_rate(lr, 0.0, curvature, nesterov=True)
        assert nesterov == pytest.approx(abs(1 - lr * curvature))


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize(
    "lr, momentum, curvature",
    [(0.09, 0.5, 1.0), (0.09, 0.5, 20.0), (0.02, 0.8, 20.0), (0.05, 0.9, 3.0)],
)
def test_momentum_rate_predicts_how_fast_torch_sgd_shrinks_the_error(
    lr, momentum, curvature, nesterov
):
    x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([x], lr=lr, momentum=momentum, nesterov=nesterov)
    sizes = []
    for _ in range(400):
        optimizer.zero_grad()
        (0.5 * curvature * x**2).sum().backward()
        optimizer.step()
        sizes.append(abs(x.item()) + 1e-300)
    # Average shrink per step over the last 200 steps (oscillating runs pass through small values).
    measured = (max(sizes[-20:]) / max(sizes[180:200])) ** (1 / 200)
    assert measured == pytest.approx(momentum_rate(lr, momentum, curvature, nesterov), rel=0.02)


def test_nesterov_diverges_on_steep_directions_where_heavy_ball_does_not():
    lr, momentum = 0.09, 0.9
    assert momentum_rate(lr, momentum, 20.0) < 1
    assert momentum_rate(lr, momentum, 20.0, nesterov=True) > 1
    # The limit 2 (1 + mu) / (1 + 2 mu) on lr * curvature, just inside and just outside.
    limit = 2 * (1 + momentum) / (1 + 2 * momentum)
    assert momentum_rate(0.99 * limit, momentum, 1.0, nesterov=True) < 1
    assert momentum_rate(1.01 * limit, momentum, 1.0, nesterov=True) > 1


def test_check_tuned_momentum_accepts_the_optimal_pair(capsys):
    root = math.sqrt(20.0)
    check_tuned_momentum(4 / (root + 1) ** 2, ((root - 1) / (root + 1)) ** 2)
    assert "Tuned" in capsys.readouterr().out


@pytest.mark.parametrize("lr, momentum", [(2 / 21, 0.0), (0.09, 0.9), (0.2, 0.5)])
def test_check_tuned_momentum_rejects_plain_sgd_too_much_momentum_and_divergence(lr, momentum):
    with pytest.raises(AssertionError):
        check_tuned_momentum(lr, momentum)


def test_check_buffer_rescaling_accepts_the_rescaled_buffer(capsys):
    def rescale(optimizer, old_lr, new_lr):
        for group in optimizer.param_groups:
            for param in group["params"]:
                optimizer.state[param]["momentum_buffer"].mul_(old_lr / new_lr)

    check_buffer_rescaling(rescale)
    assert "Same path" in capsys.readouterr().out


@pytest.mark.parametrize("wrong", ["nothing", "inverse"])
def test_check_buffer_rescaling_rejects_a_wrong_rescaling(wrong):
    def rescale(optimizer, old_lr, new_lr):
        if wrong == "inverse":
            for param in optimizer.param_groups[0]["params"]:
                optimizer.state[param]["momentum_buffer"].mul_(new_lr / old_lr)

    with pytest.raises(AssertionError, match="differ"):
        check_buffer_rescaling(rescale)


def test_the_first_difference_check_wants_step_one():
    assert attempt(check_first_difference, ...) is False
    with pytest.raises(AssertionError, match="first differ earlier"):
        check_first_difference(2)
    check_first_difference(1)


def test_the_nesterov_limit_check_wants_the_formula_not_heavy_balls():
    with pytest.raises(AssertionError, match="the limit is lower"):
        check_nesterov_limit(2 * (1 + 0.9) / 20)  # heavy ball's limit
    check_nesterov_limit(2 * (1 + 0.9) / (1 + 2 * 0.9) / 20)


def test_the_climbed_function_check_wants_the_decay_term():
    bowl = SURFACES["bowl"]

    def stub(x, y):
        raise NotImplementedError("return the function")

    assert attempt(check_climbed_function, stub) is False
    with pytest.raises(AssertionError):
        check_climbed_function(lambda x, y: -bowl.function(x, y))
    with pytest.raises(AssertionError):  # the decay pulls towards 0: a minus sign, not a plus
        check_climbed_function(lambda x, y: -bowl.function(x, y) + 0.25 * (x**2 + y**2))
    check_climbed_function(lambda x, y: -bowl.function(x, y) - 0.25 * (x**2 + y**2))
