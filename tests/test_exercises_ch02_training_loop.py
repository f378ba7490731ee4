"""The training-loop chapter's self-checks fail on a wrong answer and pass on the right one."""

import pytest

from optim_lessons.exercises import attempt
from optim_lessons.exercises.ch02_training_loop import (
    check_half_batch_scale,
    check_learning_rate_edge,
    check_predicted_step,
)

ACCURACIES = {0.01: 0.83, 0.05: 0.82, 0.1: 0.69, 0.3: 0.13}


def test_the_edge_is_the_first_rate_that_loses_accuracy():
    assert attempt(check_learning_rate_edge, ..., ACCURACIES) is False
    with pytest.raises(AssertionError):
        check_learning_rate_edge(0.3, ACCURACIES)  # where training fails outright: too late
    with pytest.raises(AssertionError, match="try larger rates"):
        check_learning_rate_edge(0.05, {0.01: 0.83, 0.03: 0.83, 0.05: 0.82})
    check_learning_rate_edge(0.1, ACCURACIES)


def test_the_halves_must_be_halved():
    for wrong in (1.0, 0.25, 2.0):
        with pytest.raises(AssertionError):
            check_half_batch_scale(wrong)
    check_half_batch_scale(0.5)
    check_half_batch_scale(0.5, seed=3)


def test_the_predicted_step_must_include_the_weight_decay():
    def stub(p, grad, buffer):
        raise NotImplementedError("predict")

    def without_decay(p, grad, buffer):
        return p - 0.001 * (0.9 * buffer + grad)

    def with_decay(p, grad, buffer):
        return p - 0.001 * (0.9 * buffer + grad + 1e-4 * p)

    assert attempt(check_predicted_step, stub) is False
    with pytest.raises(AssertionError):
        check_predicted_step(without_decay)
    check_predicted_step(with_decay)
