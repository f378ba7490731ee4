r"""Rprop as the paper wrote it, state recorders, and the self-checks of the chapter on Rprop,
ASGD and L-BFGS.

``torch.optim.Rprop`` does not take a step back after a sign flip. Riedmiller and Braun's
original rule does ("weight-backtracking"): where the gradient changed sign, the last move of
that weight is undone and its step size shrinks,

$$
\Delta\theta_t = \begin{cases}
-\operatorname{sign}(g_t)\,\Delta_t & \text{if } g_t\,g_{t-1} \ge 0, \\
-\Delta\theta_{t-1} & \text{if } g_t\,g_{t-1} < 0 \quad \text{(back to where it was)},
\end{cases}
$$

and in both variants the remembered gradient is set to zero after a flip, so that the next step
neither grows nor shrinks the step size. :class:`PaperRprop` runs the original rule so that the
chapter can put it beside ``torch.optim.Rprop``.

The chapter reads optimizers' states with the recorders of :mod:`optim_lessons.playground.probes`.
The ``check_*`` functions are the exercises' self-checks: each raises an
``AssertionError`` that says what is wrong, or prints what it verified.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.optimizer import Optimizer, ParamsT

from optim_lessons.optimizers._common import check_learning_rate, evaluate_closure
from optim_lessons.playground.surfaces import SURFACES

__all__ = [
    "PaperRprop",
    "check_asgd_full_average",
    "check_averaged_copy",
    "check_lbfgs_precision",
    "check_rprop_crossing",
    "check_steps_to_cap",
    "paper_rprop_update",
]


# ------------------------------------------------------------------ Rprop with weight-backtracking


def paper_rprop_update(
    param: Tensor,
    grad: Tensor,
    prev: Tensor,
    step_size: Tensor,
    last_move: Tensor,
    *,
    etaminus: float,
    etaplus: float,
    step_size_min: float,
    step_size_max: float,
) -> None:
    """One step of Riedmiller & Braun's Rprop (with weight-backtracking) for one parameter.

    Writes into ``param``, ``prev`` (the last gradient, zero after a flip), ``step_size`` and
    ``last_move`` (the change the step made to ``param``); ``grad`` is only read.
    """
    agreement = grad.mul(prev).sign()  # sign(g_t g_{t-1})
    grow, flip = agreement > 0, agreement < 0
    step_size.copy_(
        torch.where(grow, step_size.mul(etaplus).clamp(max=step_size_max), step_size)
    )  # Delta_t = min(eta+ Delta_{t-1}, Delta_max) while the sign holds
    step_size.copy_(
        torch.where(flip, step_size.mul(etaminus).clamp(min=step_size_min), step_size)
    )  # Delta_t = max(eta- Delta_{t-1}, Delta_min) after a flip
    move = torch.where(flip, -last_move, -grad.sign() * step_size)  # undo, or step by Delta_t
    param.add_(move)
    last_move.copy_(move)
    prev.copy_(grad.masked_fill(flip, 0))  # no adaptation on the step after a flip


class PaperRprop(Optimizer):
    """Rprop as Riedmiller & Braun (1993) wrote it: after a sign flip the weight goes back.

    Hyperparameters as in ``torch.optim.Rprop`` (``lr`` is the initial step size), without
    ``maximize``. The state of a parameter holds ``prev``, ``step_size`` and ``last_move``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
    ) -> None:
        check_learning_rate(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        super().__init__(params, {"lr": lr, "etas": etas, "step_sizes": step_sizes})

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Update every parameter that has a gradient; return the closure's loss, if given."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            etaminus, etaplus = group["etas"]
            step_size_min, step_size_max = group["step_sizes"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.is_complex() or param.grad.is_sparse:
                    raise RuntimeError("PaperRprop takes real, dense parameters and gradients")
                state = self.state[param]
                if len(state) == 0:
                    state["prev"] = torch.zeros_like(param)
                    state["step_size"] = torch.full_like(param, float(group["lr"]))
                    state["last_move"] = torch.zeros_like(param)
                paper_rprop_update(
                    param,
                    param.grad,
                    state["prev"],
                    state["step_size"],
                    state["last_move"],
                    etaminus=etaminus,
                    etaplus=etaplus,
                    step_size_min=step_size_min,
                    step_size_max=step_size_max,
                )
        return loss


# ------------------------------------------------------------------------ exercise self-checks


def check_steps_to_cap(
    answer: int, lr: float = 0.01, etaplus: float = 1.2, step_size_max: float = 50.0
) -> None:
    """Exercise: after how many steps with a gradient of constant sign does Rprop's step size
    first reach its cap ``step_size_max``?

    The check runs ``torch.optim.Rprop`` on $f(w) = w$ (gradient 1 at every step) and counts.
    """
    weight = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Rprop(
        [weight], lr=lr, etas=(0.5, etaplus), step_sizes=(1e-6, step_size_max)
    )
    steps = 0
    while True:
        optimizer.zero_grad()
        weight.sum().backward()
        optimizer.step()
        steps += 1
        if optimizer.state[weight]["step_size"].item() >= step_size_max or steps > 10_000:
            break
    assert answer == steps, (
        f"{answer} is not it. Which step size does the first step use (is there a previous "
        f"gradient to compare with)? From then on it grows by {etaplus} per step until it "
        f"reaches {step_size_max}."
    )
    print(
        f"Right: {steps} steps. The step size grew from {lr} to {step_size_max} "
        f"({step_size_max / lr:.0f} times) by factors of {etaplus}."
    )


def check_averaged_copy(make_copy: Callable[[nn.Module, Optimizer], nn.Module]) -> None:
    """Exercise: ``make_copy(model, optimizer)`` returns a new model that holds ASGD's average
    ``ax`` and leaves ``model`` (and the optimizer) as they were.

    The check trains a small network with ``torch.optim.ASGD`` (averaging from step 5) on random
    data, calls ``make_copy``, and compares.
    """
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 8, generator=generator)
    targets = torch.randn(64, 1, generator=generator)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    optimizer = torch.optim.ASGD(model.parameters(), lr=0.05, t0=5)
    for start in range(0, 64 * 3, 16):
        rows = slice(start % 64, start % 64 + 16)
        optimizer.zero_grad()
        nn.functional.mse_loss(model(inputs[rows]), targets[rows]).backward()
        optimizer.step()
    before = [p.detach().clone() for p in model.parameters()]
    averages = [optimizer.state[p]["ax"].clone() for p in model.parameters()]
    assert any(not torch.equal(b, a) for b, a in zip(before, averages, strict=True)), (
        "the check's own run should make the average differ from the parameters"
    )
    averaged = make_copy(model, optimizer)
    assert isinstance(averaged, nn.Module), "make_copy should return an nn.Module"
    assert averaged is not model, "make_copy should return a new model, not change this one"
    for index, (p, original) in enumerate(zip(model.parameters(), before, strict=True)):
        assert torch.equal(p.detach(), original), (
            f"parameter {index} of the original model changed: keep it as it was"
        )
    copied = list(averaged.parameters())
    assert len(copied) == len(averages), "the copy should have the model's parameters"
    for index, (p, average) in enumerate(zip(copied, averages, strict=True)):
        assert torch.equal(p.detach(), average), (
            f"parameter {index} of the copy is not optimizer.state[p]['ax']"
        )
    print("Right: the copy holds the average ax, and the model still holds the iterate.")


def check_lbfgs_precision(settings: dict[str, Any], calls: int = 3, target: float = 1e-20) -> None:
    """Exercise: choose ``torch.optim.LBFGS`` settings that bring Rosenbrock's function below
    ``target`` within ``calls`` calls of ``step``, from the book's start $(-1.5, 2)$.
    """
    rosenbrock = SURFACES["rosenbrock"]
    point = rosenbrock.start_tensor().requires_grad_(True)
    optimizer = torch.optim.LBFGS([point], **settings)
    evaluations = 0

    def closure() -> Tensor:
        nonlocal evaluations
        evaluations += 1
        optimizer.zero_grad()
        loss = rosenbrock(point)
        loss.backward()
        return loss

    for _ in range(calls):
        optimizer.step(closure)
    value = rosenbrock(point.detach()).item()
    assert math.isfinite(value), f"with {settings} L-BFGS diverged"
    assert value < target, (
        f"with {settings}, f = {value:.3g} after {calls} calls of step ({evaluations} "
        f"evaluations); it must fall below {target:g}. Which of the stopping tests fires first?"
    )
    print(
        f"Right: f = {value:.3g} after {calls} calls of step and {evaluations} evaluations "
        f"of the closure, at ({point[0].item():.12f}, {point[1].item():.12f})."
    )


def check_rprop_crossing(step: int, lr: float = 0.01) -> None:
    """Exercise: on which step does ``torch.optim.Rprop`` (``lr=0.01``) take $y$ below zero on the
    bowl from its start $(-4.5, 1.5)$? Steps count from 1; the check runs Rprop.
    """
    from optim_lessons.playground.surfaces import run_on_surface

    run = run_on_surface("bowl", torch.optim.Rprop, steps=40, lr=lr)
    first = next(t for t in range(1, 41) if run.points[t, 1] < 0)
    y_after = run.points[step, 1].item() if 1 <= step <= 40 else float("nan")
    assert step == first, (
        f"after step {step}, y = {y_after:.4f}; y first goes below 0 on another step"
    )
    print(
        f"Right: step {first} takes y from {run.points[first - 1, 1].item():.4f} to {y_after:.4f}"
    )


def check_asgd_full_average(t0: float, steps: int = 50) -> None:
    """Exercise: which ``t0`` makes ``torch.optim.ASGD``'s ``ax`` the plain mean of *all* its
    iterates? The check runs 50 noisy steps on the bowl and compares ``ax`` with that mean.
    """
    bowl = SURFACES["bowl"]
    point = torch.tensor(bowl.start, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.ASGD([point], lr=0.05, t0=t0)
    generator = torch.Generator().manual_seed(1)
    iterates = []
    for _ in range(steps):
        optimizer.zero_grad()
        bowl(point).backward()
        point.grad.add_(torch.randn(2, generator=generator, dtype=torch.float64), alpha=2.0)
        optimizer.step()
        iterates.append(point.detach().clone())
    gap = (optimizer.state[point]["ax"] - torch.stack(iterates).mean(dim=0)).abs().max().item()
    assert gap < 1e-6, f"with t0 = {t0}, ax is {gap:.3g} away from the mean of all {steps} iterates"
    print(f"Right: with t0 = {t0}, ax is the mean of all {steps} iterates (difference {gap:.1e})")
