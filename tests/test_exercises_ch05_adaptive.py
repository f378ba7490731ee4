"""Effective step sizes, the textbook RMSprop, the lookup table, and the adaptive chapter's
self-checks."""

import dataclasses
import doctest
import math

import pytest
import torch
from _optim_checks import one_cpu_thread  # noqa: F401  (fixture: one CPU thread)

from optim_lessons.exercises.ch05_adaptive import (
    TextbookRMSprop,
    check_eps_crossover,
    check_lr_decay_steps,
    check_paper_adadelta,
    textbook_rmsprop_update,
    train_lookup_table,
)
from optim_lessons.parity import compare_trajectories
from optim_lessons.playground import probes
from optim_lessons.playground.probes import effective_step_sizes
from optim_lessons.playground.surfaces import SURFACES, run_on_surface


@pytest.fixture(autouse=True)
def quiet_sparse_checks():
    """torch warns once about sparse invariant checks unless told explicitly; say it is off."""
    torch.sparse.check_sparse_tensor_invariants.disable()


# ------------------------------------------------------------------- effective step sizes


def test_the_probe_examples_run():
    failures, attempted = doctest.testmod(probes)
    assert attempted > 0
    assert failures == 0


def test_effective_step_size_of_sgd_is_its_learning_rate():
    sizes = effective_step_sizes("bowl", torch.optim.SGD, steps=20, lr=0.05)
    torch.testing.assert_close(sizes.effective, torch.full((20, 2), 0.05, dtype=torch.float64))


def test_effective_step_size_of_adagrad_is_lr_over_root_of_the_summed_squares():
    sizes = effective_step_sizes("bowl", torch.optim.Adagrad, steps=30, lr=1.0)
    expected = 1.0 / (sizes.gradients.pow(2).cumsum(dim=0).sqrt() + 1e-10)
    torch.testing.assert_close(sizes.effective, expected)


def test_effective_step_sizes_follow_the_same_path_as_run_on_surface_with_noise():
    sizes = effective_step_sizes(
        "rosenbrock", torch.optim.RMSprop, steps=40, lr=0.01, noise=0.5, seed=3
    )
    run = run_on_surface("rosenbrock", torch.optim.RMSprop, steps=40, lr=0.01, noise=0.5, seed=3)
    assert torch.equal(sizes.trajectory.points, run.points)
    # The recorded gradients include the noise: they differ from the exact gradients.
    exact = SURFACES["rosenbrock"].gradient(run.points[:-1])
    assert (sizes.gradients - exact).abs().max() > 0.1


def test_effective_step_size_is_nan_where_the_gradient_is_exactly_zero():
    sizes = effective_step_sizes("bowl", torch.optim.SGD, steps=3, start=(1.0, 0.0), lr=0.1)
    assert torch.isnan(sizes.effective[:, 1]).all()
    torch.testing.assert_close(sizes.effective[:, 0], torch.full((3,), 0.1, dtype=torch.float64))


def test_effective_step_sizes_with_zero_steps_are_empty():
    sizes = effective_step_sizes("bowl", torch.optim.SGD, steps=0, lr=0.1)
    assert sizes.effective.shape == (0, 2)
    assert sizes.trajectory.points.shape == (1, 2)


# ---------------------------------------------------------------------- textbook RMSprop


def test_textbook_rmsprop_divides_by_the_root_of_v_plus_eps():
    param = torch.tensor([1.0, -2.0], dtype=torch.float64)
    square_avg = torch.tensor([0.5, 0.0], dtype=torch.float64)
    grad = torch.tensor([0.1, 1e-6], dtype=torch.float64)
    textbook_rmsprop_update(param, grad, square_avg, None, lr=0.1, alpha=0.9, eps=1e-8)
    v = torch.tensor([0.9 * 0.5 + 0.1 * 0.01, 0.1 * 1e-12], dtype=torch.float64)
    torch.testing.assert_close(square_avg, v)
    expected = torch.tensor([1.0, -2.0], dtype=torch.float64) - 0.1 * grad / (v + 1e-8).sqrt()
    torch.testing.assert_close(param, expected)


def test_textbook_rmsprop_centered_subtracts_the_squared_mean_inside_the_root():
    param = torch.zeros(1, dtype=torch.float64)
    square_avg, grad_avg = torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    grad = torch.tensor([2.0], dtype=torch.float64)
    textbook_rmsprop_update(param, grad, square_avg, grad_avg, lr=0.1, alpha=0.5, eps=1e-4)
    # v = 0.5 * 4 = 2, g_bar = 0.5 * 2 = 1, v - g_bar^2 = 1
    torch.testing.assert_close(
        param, torch.tensor([-0.1 * 2 / math.sqrt(1 + 1e-4)], dtype=torch.float64)
    )


def test_textbook_rmsprop_matches_torch_when_eps_is_negligible():
    # With eps = 1e-16 both placements are sqrt(v) to far below the tolerance.
    for centered in (False, True):
        options = {"lr": 0.01, "eps": 1e-16, "centered": centered}
        report = compare_trajectories(TextbookRMSprop, torch.optim.RMSprop, options, steps=30)
        assert report.max_abs_diff < 1e-9


def test_textbook_rmsprop_stalls_where_torch_rmsprop_ignores_the_scale_of_the_loss():
    bowl = SURFACES["bowl"]
    tiny = dataclasses.replace(bowl, function=lambda x, y: 1e-6 * bowl.function(x, y))
    reference = run_on_surface(bowl, torch.optim.RMSprop, steps=100, lr=0.1)
    torch_run = run_on_surface(tiny, torch.optim.RMSprop, steps=100, lr=0.1)
    textbook_run = run_on_surface(tiny, TextbookRMSprop, steps=100, lr=0.1)
    assert (torch_run.points - reference.points).abs().max() < 0.1
    assert textbook_run.final_point.norm() > 0.8 * bowl.start_tensor().norm()


def test_textbook_rmsprop_rejects_bad_hyperparameters():
    param = [torch.zeros(1, requires_grad=True)]
    for kwargs, message in (
        (dict(lr=-1.0), "Invalid learning rate"),
        (dict(eps=-1.0), "Invalid epsilon"),
        (dict(alpha=-0.5), "Invalid alpha"),
    ):
        with pytest.raises(ValueError, match=message):
            TextbookRMSprop(param, **kwargs)


# ----------------------------------------------------------------------- the lookup table


def test_lookup_table_visits_follow_a_zipf_law_and_are_the_same_for_every_optimizer():
    sgd = train_lookup_table(torch.optim.SGD, lr=1.0)
    adagrad = train_lookup_table(torch.optim.Adagrad, lr=1.0)
    assert torch.equal(sgd.visits, adagrad.visits)
    assert int(sgd.visits.sum()) == 100 * 64
    assert sgd.visits[0] > 5 * sgd.visits[100:].float().mean()
    assert torch.equal(sgd.initial_errors, adagrad.initial_errors)


def test_adagrad_fits_rare_rows_where_sgd_at_its_largest_stable_rate_does_not():
    visits = train_lookup_table(torch.optim.SGD, lr=12.0).visits
    rare = visits < 5
    sgd = train_lookup_table(torch.optim.SGD, lr=12.0)
    adagrad = train_lookup_table(torch.optim.Adagrad, lr=2.0)
    assert adagrad.errors[rare].mean() < 0.25 * sgd.errors[rare].mean()
    too_fast = train_lookup_table(torch.optim.SGD, lr=16.0)  # the most frequent rows diverge
    assert too_fast.errors[visits >= 300].mean() > too_fast.initial_errors[visits >= 300].mean()


def test_adagrad_with_sparse_and_dense_gradients_gives_the_same_table():
    sparse = train_lookup_table(torch.optim.Adagrad, lr=2.0, sparse=True)
    dense = train_lookup_table(torch.optim.Adagrad, lr=2.0, sparse=False)
    (sparse_table,) = sparse.optimizer.param_groups[0]["params"]
    (dense_table,) = dense.optimizer.param_groups[0]["params"]
    torch.testing.assert_close(sparse_table, dense_table, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------- self-checks


def test_check_lr_decay_steps_accepts_the_first_step_at_a_tenth(capsys):
    answer = next(t for t in range(1, 1000) if (1 + (t - 1) * 0.01) * math.sqrt(t) >= 10)
    check_lr_decay_steps(answer)
    assert "Right" in capsys.readouterr().out


@pytest.mark.parametrize("offset", [-1, 1])
def test_check_lr_decay_steps_rejects_one_step_too_early_or_too_late(offset):
    answer = next(t for t in range(1, 1000) if (1 + (t - 1) * 0.01) * math.sqrt(t) >= 10)
    with pytest.raises(AssertionError):
        check_lr_decay_steps(answer + offset)


def test_check_lr_decay_steps_without_decay_is_about_a_hundred(capsys):
    # The step is 1 / (sqrt(t) + eps) against a first step of 1 / (1 + eps): at t = 100 it is
    # still a hair above a tenth (eps = 1e-10), so the first step at or below is 101.
    check_lr_decay_steps(101, lr_decay=0.0)
    with pytest.raises(AssertionError):
        check_lr_decay_steps(100, lr_decay=0.0)


@pytest.mark.parametrize("answer", [0, 2.5, True])
def test_check_lr_decay_steps_rejects_answers_that_are_not_step_numbers(answer):
    with pytest.raises(AssertionError, match="step number"):
        check_lr_decay_steps(answer)


def test_check_eps_crossover_accepts_the_solution_of_the_quadratic(capsys):
    eps = 1e-8
    a, b, c = 0.21, 2.42 * eps, 1.21 * eps**2 - eps
    s = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    check_eps_crossover(s * s, gap=0.1)
    assert "Right" in capsys.readouterr().out


def test_check_eps_crossover_rejects_the_first_order_approximation_at_ten_percent():
    with pytest.raises(AssertionError):
        check_eps_crossover(1e-8 / (2 * 0.1), gap=0.1)


def test_check_eps_crossover_accepts_fifty_eps_for_one_percent(capsys):
    check_eps_crossover(50 * 1e-8)
    assert "Right" in capsys.readouterr().out


def test_check_paper_adadelta_accepts_zeilers_algorithm(capsys):
    def update(param, grad, square_avg, acc_delta, *, rho, eps):
        square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        step = -(acc_delta + eps).sqrt() / (square_avg + eps).sqrt() * grad
        acc_delta.mul_(rho).addcmul_(step, step, value=1 - rho)
        param.add_(step)

    check_paper_adadelta(update)
    assert "Same path" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", ["eps outside the roots", "update stored after a step of 2"])
def test_check_paper_adadelta_rejects_a_wrong_update(mistake):
    def update(param, grad, square_avg, acc_delta, *, rho, eps):
        square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        if mistake == "eps outside the roots":
            step = -(acc_delta.sqrt() + eps) / (square_avg.sqrt() + eps) * grad
        else:
            step = -(acc_delta + eps).sqrt() / (square_avg + eps).sqrt() * grad * 2
        acc_delta.mul_(rho).addcmul_(step, step, value=1 - rho)
        param.add_(step)

    with pytest.raises(AssertionError, match="leaves torch.optim.Adadelta"):
        check_paper_adadelta(update)
