r"""Self-checks for the exercises of the gradient-descent chapter.

Each ``check_*`` function measures the answer it checks: it runs gradient descent, draws
minibatches or takes a Hessian, and raises an ``AssertionError`` that says what is wrong, or
prints what it verified.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from optim_lessons.playground.surfaces import SURFACES, run_on_surface

__all__ = [
    "check_batch_factor",
    "check_largest_curvature",
    "check_one_step_rate",
    "check_ridge_end",
    "check_rotated_bowl_limit",
    "check_schedule_choice",
]


def check_rotated_bowl_limit(lr: float) -> None:
    r"""Exercise: the largest learning rate for which gradient descent converges on the rotated
    bowl. The check takes the Hessian, whose largest eigenvalue $L$ sets the limit $2/L$, and
    accepts 1%.
    """
    hessian = torch.autograd.functional.hessian(
        SURFACES["rotated_bowl"], torch.zeros(2, dtype=torch.float64)
    )
    limit = 2 / torch.linalg.eigvalsh(hessian).max().item()
    assert abs(lr / limit - 1) <= 0.01, (
        f"lr {lr:.4g} is {'above' if lr > limit else 'below'} the limit: the error along the "
        f"steepest direction is multiplied by {1 - lr * 2 / limit:+.3f} per step"
    )
    print(f"Right: the limit is 2/L = {limit:.3f}, as on the bowl before it was turned")


def check_one_step_rate(lr: float) -> None:
    r"""Exercise: the learning rate that takes gradient descent on $f(x) = 5x^2$ to the minimum in
    one step, from any start. The check takes one step from several starts."""
    starts = torch.tensor([3.0, -1.0, 0.25, 100.0], dtype=torch.float64, requires_grad=True)
    (5 * starts**2).sum().backward()
    after = (starts - lr * starts.grad).detach()
    assert after.abs().max() < 1e-12, (
        f"one step at lr {lr} takes the starts {starts.detach().tolist()} to {after.tolist()}"
    )
    print(f"Right: one step at lr {lr} lands on 0 from every start")


def check_batch_factor(factor: float, draws: int = 4000, seed: int = 0) -> None:
    """Exercise: by how much must the batch grow to cut the standard deviation of the minibatch
    gradient tenfold? The check draws minibatch gradients of a least-squares problem with
    10,000 examples at batch 10 and at ``10 * factor`` and measures their spread (within 5%).
    """
    assert factor >= 1, f"a larger batch is {factor} times the smaller one, at least 1"
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(10_000, generator=generator, dtype=torch.float64)
    targets = 2 * inputs + torch.randn(10_000, generator=generator, dtype=torch.float64)
    per_example = 2 * (0.5 * inputs - targets) * inputs  # gradient at w = 0.5 of (w x - y)^2

    def spread(batch: int) -> float:
        rows = torch.randint(0, len(inputs), (draws, batch), generator=generator)
        return per_example[rows].mean(dim=1).std().item()

    small, large = spread(10), spread(round(10 * factor))
    assert 9.5 <= small / large <= 10.5, (
        f"a batch {factor} times larger cuts the standard deviation {small / large:.2f}-fold, "
        "not tenfold"
    )
    print(
        f"Right: batch 10 -> {round(10 * factor)} cuts the standard deviation "
        f"{small / large:.2f}-fold (measured on {draws} minibatches each)"
    )


def check_ridge_end(point: tuple[float, float], steps: int = 200, lr: float = 0.1) -> None:
    """Exercise: where does gradient descent (``lr=0.1``, 200 steps) end on the saddle surface
    when it starts on the ridge at $(-1.5, 0)$? The check runs it and accepts 0.01."""
    run = run_on_surface("saddle", torch.optim.SGD, steps=steps, start=(-1.5, 0.0), lr=lr)
    end = run.final_point
    gap = math.dist(point, end.tolist())
    assert gap <= 0.01, f"the run ends {gap:.3g} away from {tuple(point)}"
    print(
        f"Right: it ends at ({end[0].item():.4f}, {end[1].item():.4f}), f = "
        f"{run.losses[-1].item():.4f}"
    )


def check_schedule_choice(constant: int, steps: int = 400) -> None:
    r"""Exercise: which schedule $\eta_t = 0.05\,c/(c + t)$, $c = 50$ or $c = 10$, ends lower on
    the noisy bowl (mean $f$ over the last 100 of 400 steps)? The check runs both."""
    assert constant in (50, 10), f"the answer is 50 or 10, got {constant!r}"
    results = {}
    for c in (50, 10):

        def shrinking(optimizer: torch.optim.Optimizer, c: int = c) -> Any:
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: c / (c + t))

        run = run_on_surface(
            "bowl", torch.optim.SGD, steps=steps, lr=0.05, noise=2.0, seed=1, scheduler=shrinking
        )
        results[c] = run.losses[-100:].mean().item()
    best = min(results, key=results.__getitem__)
    assert constant == best, (
        f"c = {constant} ends at mean f {results[constant]:.4f}, c = {best} at {results[best]:.4f}"
    )
    print(
        f"Right: c = {best} ends lower, mean f {results[best]:.4f} against {results[60 - best]:.4f}"
    )


def check_largest_curvature(largest_curvature: Callable[..., float], seed: int = 0) -> None:
    """Exercise: ``largest_curvature(loss, parameters)`` estimates the largest eigenvalue of the
    Hessian of ``loss()`` (a function of no arguments) in ``parameters`` from Hessian-vector
    products. The check runs it on a small softmax classifier, whose full Hessian it can still
    build, and compares with the exact eigenvalue (within 1%).
    """
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(64, 6, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 3, (64,), generator=generator)
    weight = torch.randn(3, 6, generator=generator, dtype=torch.float64).requires_grad_()

    def loss() -> torch.Tensor:
        return torch.nn.functional.cross_entropy(images @ weight.T, labels)

    def loss_of(flat: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(images @ flat.view(3, 6).T, labels)

    exact = (
        torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, weight.detach().flatten()))
        .max()
        .item()
    )
    estimate = float(largest_curvature(loss, [weight]))
    assert abs(estimate / exact - 1) <= 0.01, (
        f"your estimate is {estimate:.4g}, the exact largest eigenvalue {exact:.4g}"
    )
    print(f"Right: {estimate:.4f} against the exact {exact:.4f}, from Hessian-vector products only")
