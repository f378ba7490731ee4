"""The gradient-descent chapter's self-checks: each fails on the chapter's placeholder and on a
plausible wrong answer, and passes on the solution."""

import math

import pytest
import torch

from optim_lessons.exercises import attempt
from optim_lessons.exercises.ch03_gradient_descent import (
    check_batch_factor,
    check_largest_curvature,
    check_one_step_rate,
    check_ridge_end,
    check_rotated_bowl_limit,
    check_schedule_choice,
)


def power_iteration(loss, parameters, iterations=200):
    gradient = torch.autograd.grad(loss(), parameters, create_graph=True)
    vector = [torch.ones_like(p) for p in parameters]
    estimate = 0.0
    for _ in range(iterations):
        norm = torch.sqrt(sum((v * v).sum() for v in vector))
        vector = [v / norm for v in vector]
        product = torch.autograd.grad(gradient, parameters, vector, retain_graph=True)
        estimate = sum((h * v).sum() for h, v in zip(product, vector, strict=True)).item()
        vector = [h.detach() for h in product]
    return estimate


@pytest.mark.parametrize(
    ("check", "wrong", "right"),
    [
        (check_rotated_bowl_limit, 0.2, 0.1),  # 2/L with L = 20 (not 2/(L/2))
        (check_one_step_rate, 0.2, 0.1),  # 1/L with L = 10
        (check_batch_factor, 10, 100),  # the standard deviation falls as 1/sqrt(B)
        (check_ridge_end, (-1.5, 0.0), (0.0, 0.0)),  # exact gradients stay on the ridge
        (check_schedule_choice, 10, 50),  # shrinking too fast stalls the flat direction
    ],
)
def test_a_check_says_not_done_not_yet_and_right(check, wrong, right, capsys):
    assert attempt(check, ...) is False
    assert capsys.readouterr().out.startswith("Not done")
    assert attempt(check, wrong) is False
    assert capsys.readouterr().out.startswith("Not yet")
    check(right)
    assert capsys.readouterr().out.startswith("Right")


def test_the_curvature_check_wants_a_converged_power_iteration():
    def stub(loss, parameters):
        raise NotImplementedError("estimate the largest eigenvalue")

    assert attempt(check_largest_curvature, stub) is False
    with pytest.raises(AssertionError):  # three iterations are not enough on this problem
        check_largest_curvature(lambda loss, parameters: power_iteration(loss, parameters, 3))
    check_largest_curvature(power_iteration)


def test_the_batch_factor_is_measured_not_looked_up():
    with pytest.raises(AssertionError):
        check_batch_factor(math.sqrt(10))
    check_batch_factor(100, seed=1)  # another seed, the same answer
