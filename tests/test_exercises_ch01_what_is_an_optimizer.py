"""The puzzle chapter's self-checks fail on a wrong answer and pass on the solution."""

import pytest
import torch

from optim_lessons.exercises import attempt
from optim_lessons.exercises.ch01_what_is_an_optimizer import (
    check_adaptive_rates,
    check_momentum_choice,
    check_own_descent,
    check_sgd_rate,
)
from optim_lessons.playground.puzzle import Puzzle


@pytest.fixture(scope="module")
def puzzle():
    return Puzzle(grid=4, seed=0, scramble=0.6)


def test_the_sgd_rate_check_solves_the_puzzle(puzzle, capsys):
    assert attempt(check_sgd_rate, puzzle, ...) is False
    with pytest.raises(AssertionError, match="2 of 16 pieces"):
        check_sgd_rate(puzzle, 0.25)
    check_sgd_rate(puzzle, 0.5)


def test_the_momentum_check_wants_exactly_the_solving_values(puzzle):
    with pytest.raises(AssertionError, match="0.99 does not solve it"):
        check_momentum_choice(puzzle, {0.9, 0.99})
    check_momentum_choice(puzzle, {0.9})


def test_the_adaptive_check_needs_both_rates_to_work(puzzle):
    with pytest.raises(AssertionError, match="RMSprop at lr 0.03"):
        check_adaptive_rates(puzzle, 0.03, 0.1)
    check_adaptive_rates(puzzle, 0.01, 0.1)


def test_the_own_descent_check_wants_the_gradient_zeroed(puzzle):
    def stub(puzzle, lr):
        raise NotImplementedError("write the step")

    def accumulating(puzzle, lr):
        puzzle.loss().backward()
        with torch.no_grad():
            puzzle.positions -= lr * puzzle.positions.grad

    def descending(puzzle, lr):
        accumulating(puzzle, lr)
        puzzle.positions.grad = None

    assert attempt(check_own_descent, puzzle, stub) is False
    with pytest.raises(AssertionError):
        check_own_descent(puzzle, accumulating)
    check_own_descent(puzzle, descending)
