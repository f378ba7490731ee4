"""Self-checks for the exercises of the puzzle chapter.

Each ``check_*`` function solves the puzzle it is given with the reader's settings and raises
an ``AssertionError`` that says what is wrong, or prints what it verified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["check_adaptive_rates", "check_momentum_choice", "check_own_descent", "check_sgd_rate"]


def _home(run: Any) -> int:
    return int(run.pieces_in_place()[-1])


def check_sgd_rate(puzzle: Any, lr: float, steps: int = 100) -> None:
    """Exercise: a learning rate for which plain SGD puts every piece home in ``steps`` steps."""
    run = puzzle.solve(torch.optim.SGD, steps, lr=lr)
    pieces = len(puzzle.home)
    assert _home(run) == pieces, (
        f"at lr {lr}, {_home(run)} of {pieces} pieces are home after {steps} steps"
    )
    print(f"Right: at lr {lr} all {pieces} pieces are home after {steps} steps")


def check_momentum_choice(
    puzzle: Any, solving: Iterable[float], lr: float = 0.1, steps: int = 100
) -> None:
    """Exercise: which of the momentum values 0.5, 0.9 and 0.99 (at ``lr=0.1``) put every piece
    home in ``steps`` steps? ``solving`` is the set of those that do; the check runs all three."""
    truth = {
        m
        for m in (0.5, 0.9, 0.99)
        if _home(puzzle.solve(torch.optim.SGD, steps, lr=lr, momentum=m)) == len(puzzle.home)
    }
    yours = set(solving)
    assert yours == truth, f"you said {sorted(yours)}; " + "; ".join(
        f"momentum {m} {'solves' if m in truth else 'does not solve'} it"
        for m in sorted(yours ^ truth)
    )
    print(f"Right: momentum {sorted(truth)} solves it in {steps} steps, the others do not")


def check_adaptive_rates(
    puzzle: Any, rmsprop_lr: float, adagrad_lr: float, steps: int = 100
) -> None:
    """Exercise: learning rates for which ``torch.optim.RMSprop`` and ``torch.optim.Adagrad`` put
    every piece home within ``steps`` steps."""
    pieces = len(puzzle.home)
    for cls, lr in ((torch.optim.RMSprop, rmsprop_lr), (torch.optim.Adagrad, adagrad_lr)):
        home = _home(puzzle.solve(cls, steps, lr=lr))
        assert home == pieces, f"{cls.__name__} at lr {lr}: {home} of {pieces} pieces home"
    print(
        f"Right: RMSprop at lr {rmsprop_lr} and Adagrad at lr {adagrad_lr} put all {pieces} "
        f"pieces home within {steps} steps"
    )


def check_own_descent(
    puzzle: Any, my_step: Callable[[Any, float], Any], lr: float = 0.5, steps: int = 20
) -> None:
    """Exercise: ``my_step(puzzle, lr)`` does one step of gradient descent on the puzzle by hand
    (loss, backward, update, zero). The check runs it ``steps`` times from the puzzle's start
    and compares the positions with ``torch.optim.SGD``'s after as many steps."""
    puzzle.reset()
    for _ in range(steps):
        my_step(puzzle, lr)
    mine = puzzle.positions.detach().clone()
    leftover = puzzle.positions.grad
    reference = puzzle.solve(torch.optim.SGD, steps, lr=lr).positions[-1].to(mine)
    puzzle.reset()
    gap = (mine - reference).abs().max().item()
    assert gap < 1e-6, f"after {steps} steps your pieces are up to {gap:.3g} from SGD's"
    assert leftover is None or not leftover.any(), "the last gradient was not zeroed"
    print(
        f"Right: the same positions as torch.optim.SGD after {steps} steps "
        f"(largest difference {gap:.1e})"
    )
