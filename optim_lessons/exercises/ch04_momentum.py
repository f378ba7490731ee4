r"""Momentum in the papers' form, its rate on a quadratic, and the momentum chapter's self-checks.

``torch.optim.SGD`` keeps the learning rate *outside* its momentum buffer:

$$
b_t = \mu\, b_{t-1} + g_t, \qquad \theta_t = \theta_{t-1} - \gamma\, b_t .
$$

Polyak's heavy ball (1964) and Sutskever et al. (2013) keep it *inside* a velocity:

$$
\Delta\theta_t = \mu\, \Delta\theta_{t-1} - \gamma\, g_t, \qquad
\theta_t = \theta_{t-1} + \Delta\theta_t ,
$$

and Sutskever et al.'s Nesterov momentum takes the gradient at the look-ahead point
$\theta_{t-1} + \mu \Delta\theta_{t-1}$ instead of at $\theta_{t-1}$. :class:`PaperMomentum` runs
that form so that a chapter can put it next to ``torch.optim.SGD``: the same path while $\gamma$ is
constant, two different paths once a scheduler changes it.

The ``check_*`` functions are the self-checks of the chapter's exercises: each raises an
``AssertionError`` that says what is wrong, or prints what was verified.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, ParamsT

from optim_lessons.optimizers._common import evaluate_closure

__all__ = [
    "PaperMomentum",
    "check_buffer_rescaling",
    "check_climbed_function",
    "check_first_difference",
    "check_nesterov_limit",
    "check_tuned_momentum",
    "momentum_rate",
    "paper_momentum_update",
]


def paper_momentum_update(
    param: Tensor, grad: Tensor, velocity: Tensor, *, lr: float, momentum: float
) -> Tensor:
    """One heavy-ball step in the papers' form, in place on ``param`` and ``velocity``.

    ``grad`` is the gradient at ``param`` (heavy ball) or at the look-ahead point
    ``param + momentum * velocity`` (Nesterov, as Sutskever et al. write it); the caller chooses.
    """
    velocity.mul_(momentum).add_(grad, alpha=-lr)  # dtheta_t <- mu dtheta_{t-1} - lr g_t
    param.add_(velocity)  # theta_t <- theta_{t-1} + dtheta_t
    return velocity


class PaperMomentum(Optimizer):
    """Momentum with the learning rate inside the velocity (Polyak 1964; Sutskever et al. 2013).

    The state of a parameter is ``{"velocity": Tensor}``, zero before the first step. With
    ``nesterov=True`` every step needs a closure: the gradient is taken at the look-ahead point
    ``param + momentum * velocity``, and the parameter is put back before it moves.
    """

    def __init__(
        self, params: ParamsT, lr: float = 1e-3, momentum: float = 0.9, nesterov: bool = False
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "nesterov": nesterov})

    def _velocity(self, param: Tensor) -> Tensor:
        state = self.state[param]
        if "velocity" not in state:
            state["velocity"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state["velocity"]

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Take one step for every parameter that has a gradient; return the closure's loss."""
        looking_ahead = any(group["nesterov"] for group in self.param_groups)
        saved: list[tuple[Tensor, Tensor]] = []
        if looking_ahead:
            if closure is None:
                raise ValueError(
                    "Nesterov momentum in the papers' form needs a closure: the gradient is "
                    "taken at the look-ahead point param + momentum * velocity"
                )
            for group in self.param_groups:
                if group["nesterov"]:
                    for param in group["params"]:
                        saved.append((param, param.detach().clone()))
                        param.add_(self._velocity(param), alpha=group["momentum"])
        loss = evaluate_closure(closure)
        for param, original in saved:  # back from the look-ahead point, bit for bit
            param.copy_(original)
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                paper_momentum_update(
                    param,
                    param.grad,
                    self._velocity(param),
                    lr=float(group["lr"]),
                    momentum=group["momentum"],
                )
        return loss


def momentum_rate(lr: float, momentum: float, curvature: float, nesterov: bool = False) -> float:
    r"""How much one step of ``torch.optim.SGD`` shrinks the error on $f(x) = \frac{h}{2}x^2$.

    On a quadratic with curvature $h$ the pair (error, momentum buffer) evolves linearly, so
    after many steps the error shrinks by the spectral radius of a 2-by-2 matrix per step:

    - heavy ball: $\begin{pmatrix} 1 + \mu - \gamma h & -\mu \\ 1 & 0 \end{pmatrix}$ acting on
      $(\theta_t, \theta_{t-1})$;
    - torch's Nesterov: $\begin{pmatrix} 1 - \gamma h (1 + \mu) & -\gamma \mu^2 \\ h & \mu
      \end{pmatrix}$ acting on $(\theta_t, b_t)$.

    A value below 1 converges (smaller is faster); above 1 diverges. With ``momentum=0`` both
    reduce to plain gradient descent's $|1 - \gamma h|$.
    """
    if nesterov:
        matrix = [[1 - lr * curvature * (1 + momentum), -lr * momentum**2], [curvature, momentum]]
    else:
        matrix = [[1 + momentum - lr * curvature, -momentum], [1.0, 0.0]]
    eigenvalues = torch.linalg.eigvals(torch.tensor(matrix, dtype=torch.float64))
    return float(eigenvalues.abs().max())


# --------------------------------------------------------------------------- exercise self-checks


def check_tuned_momentum(
    lr: float, momentum: float, smallest: float = 1.0, largest: float = 20.0
) -> None:
    r"""Exercise: tune SGD with momentum on a quadratic whose curvatures run from ``smallest`` to
    ``largest`` (the book's bowl by default).

    Passes when the slowest direction converges within 2% of the best rate heavy ball can
    reach, $(\sqrt{\kappa} - 1)/(\sqrt{\kappa} + 1)$ with $\kappa = $ ``largest / smallest``.
    """
    kappa = largest / smallest
    best = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    rate = max(momentum_rate(lr, momentum, h) for h in (smallest, largest))
    assert rate < 1, f"lr={lr}, momentum={momentum} diverges (rate {rate:.4f} per step)"
    assert rate <= best * 1.02, (
        f"lr={lr}, momentum={momentum} shrinks the error by {rate:.4f} per step; "
        f"the best heavy ball can do is {best:.4f}"
    )
    plain = (kappa - 1) / (kappa + 1)
    print(
        f"Tuned: {rate:.4f} per step (best possible {best:.4f}; plain gradient descent at "
        f"its best: {plain:.4f})"
    )


def check_buffer_rescaling(
    rescale: Callable[[torch.optim.Optimizer, float, float], Any],
    *,
    steps: int = 60,
    lr: float = 0.05,
    momentum: float = 0.9,
    drop_at: tuple[int, ...] = (20, 40),
    factor: float = 0.1,
) -> None:
    """Exercise: make ``torch.optim.SGD`` follow the papers' path through a learning-rate drop.

    ``rescale(optimizer, old_lr, new_lr)`` is called right after each drop (the learning rate
    is already ``new_lr``) and may change the optimizer's momentum buffers in place. The check
    runs ``torch.optim.SGD`` with it and :class:`PaperMomentum` without it on the bowl
    $\\frac{1}{2}(x^2 + 20 y^2)$, through the same schedule, and asserts the two paths agree.
    """
    start = (-4.5, 1.5)

    def bowl(point: Tensor) -> Tensor:
        return 0.5 * (point[0] ** 2 + 20 * point[1] ** 2)

    paths: dict[str, list[Tensor]] = {}
    for name in ("torch", "paper"):
        point = torch.tensor(start, dtype=torch.float64, requires_grad=True)
        if name == "torch":
            optimizer: Optimizer = torch.optim.SGD([point], lr=lr, momentum=momentum)
        else:
            optimizer = PaperMomentum([point], lr=lr, momentum=momentum)
        path = [point.detach().clone()]
        for step in range(1, steps + 1):
            optimizer.zero_grad()
            bowl(point).backward()
            optimizer.step()
            path.append(point.detach().clone())
            if step in drop_at:
                old_lr = optimizer.param_groups[0]["lr"]
                optimizer.param_groups[0]["lr"] = old_lr * factor
                if name == "torch":
                    rescale(optimizer, old_lr, old_lr * factor)
        paths[name] = path
    pairs = zip(paths["torch"], paths["paper"], strict=True)
    gap = max(float((a - b).abs().max()) for a, b in pairs)
    assert gap < 1e-9, (
        f"the two paths differ by up to {gap:.3g}: after a drop from lr to lr', torch's buffer "
        "must still describe the same velocity dtheta = -lr * b"
    )
    print(f"Same path through {len(drop_at)} drops: largest difference {gap:.1e}")


def check_first_difference(step: int, steps: int = 60) -> None:
    """Exercise: after which step do ``SGD(lr=0.1, momentum=0.9, dampening=0.9)`` and
    ``SGD(lr=0.01, momentum=0.9)`` first stand at different points of the bowl?

    Steps count from 1 (the point after the first ``step()``). The check runs both.
    """
    from optim_lessons.playground.surfaces import run_on_surface

    damped = run_on_surface(
        "bowl", torch.optim.SGD, steps=steps, lr=0.1, momentum=0.9, dampening=0.9
    )
    scaled = run_on_surface("bowl", torch.optim.SGD, steps=steps, lr=0.01, momentum=0.9)
    apart = (damped.points - scaled.points).norm(dim=1)
    first = next(t for t in range(1, steps + 1) if apart[t] > 0)
    assert step == first, (
        f"after step {step} the two runs are {apart[step].item():.3g} apart; they first "
        f"differ {'earlier' if first < step else 'later'}"
    )
    print(f"Right: they differ from step {first} on, by {apart[first].item():.3g} there")


def check_nesterov_limit(lr: float, momentum: float = 0.9, curvature: float = 20.0) -> None:
    """Exercise: the largest learning rate for which torch's Nesterov step converges on
    $f = \\frac{h}{2}\\theta^2$ (the bowl's steep direction, $h = 20$, by default).

    The check finds the limit by bisection on :func:`momentum_rate` and accepts 0.5%.
    """
    low, high = 0.0, 4.0 / curvature  # converges at low, diverges at high
    for _ in range(100):
        middle = (low + high) / 2
        if momentum_rate(middle, momentum, curvature, nesterov=True) < 1:
            low = middle
        else:
            high = middle
    assert abs(lr / low - 1) <= 0.005, (
        f"at lr {lr:.4g} one step multiplies the error by "
        f"{momentum_rate(lr, momentum, curvature, nesterov=True):.4f}; the limit is "
        f"{'lower' if lr > low else 'higher'}"
    )
    print(f"Right: the limit is {low:.4f}, where the rate per step reaches 1")


def check_climbed_function(
    climbed: Callable[[Tensor, Tensor], Tensor], weight_decay: float = 0.5, steps: int = 50
) -> None:
    """Exercise: which function does ``SGD(maximize=True, weight_decay=weight_decay)`` climb on
    the upside-down bowl? ``climbed(x, y)`` is your answer, written with torch operations.

    The check climbs ``climbed`` with ``maximize=True`` and no weight decay, and compares the
    path with the one that weight decay gives on the upside-down bowl.
    """
    import dataclasses

    from optim_lessons.playground.surfaces import SURFACES, run_on_surface

    bowl = SURFACES["bowl"]
    upside_down = dataclasses.replace(bowl, function=lambda x, y: -bowl.function(x, y))
    yours = dataclasses.replace(bowl, function=climbed)
    options = {"lr": 0.05, "momentum": 0.9, "maximize": True}
    truth = run_on_surface(
        upside_down, torch.optim.SGD, steps=steps, weight_decay=weight_decay, **options
    )
    run = run_on_surface(yours, torch.optim.SGD, steps=steps, **options)
    gap = (truth.points - run.points).abs().max().item()
    assert gap < 1e-9, f"climbing your function leaves the path by up to {gap:.3g}"
    print(f"Right: the same path for {steps} steps (largest difference {gap:.1e})")
