r"""Instruments that record what an optimizer does, step by step, without changing it.

- :func:`effective_step_sizes` runs an optimizer on a 2D surface and measures each coordinate's
  *effective* learning rate, the step taken divided by the gradient given,
  $\eta_{t,i} = -(\theta_{t,i} - \theta_{t-1,i}) / g_{t,i}$: the constant ``lr`` for plain
  SGD, $\gamma/(\sqrt{G_{t,i}} + \epsilon)$ for Adagrad. It never reads the optimizer's state,
  so it works for any optimizer.
- :func:`record_state` runs an optimizer on a surface and copies entries of its state after
  every step (Rprop's step sizes, ASGD's average ``ax``, L-BFGS's evaluation count).
- :func:`watch` calls a measurement after every few steps of any optimizer in any training loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer

from optim_lessons.playground.surfaces import Surface, Trajectory, run_on_surface

__all__ = ["StepSizes", "Watched", "effective_step_sizes", "record_state", "watch"]


# ------------------------------------------------------------------- effective step sizes


@dataclass
class StepSizes:
    """What :func:`effective_step_sizes` measured.

    Attributes:
        trajectory: the run itself (points and losses), as :func:`run_on_surface` returns it.
        gradients: shape ``(steps, 2)``, the gradient each step was given (noise included).
        effective: shape ``(steps, 2)``, the step taken divided by that gradient, per
            coordinate, negated so that a step downhill counts as positive; ``nan`` where a
            gradient was exactly zero.
    """

    trajectory: Trajectory
    gradients: Tensor
    effective: Tensor


class _GradientRecorder:
    """Passed to :func:`run_on_surface` as its scheduler: after every step it copies the
    gradient the step used (still in ``.grad``, since the closure put it there)."""

    def __init__(self, optimizer: Optimizer) -> None:
        self.param = optimizer.param_groups[0]["params"][0]
        self.gradients: list[Tensor] = []

    def step(self) -> None:
        grad = self.param.grad.detach().reshape(2).to("cpu", torch.float64).clone()
        self.gradients.append(grad)


def effective_step_sizes(
    surface: Surface | str,
    optimizer_cls: Callable[..., Optimizer],
    steps: int = 100,
    **settings: Any,
) -> StepSizes:
    """Run ``optimizer_cls`` on ``surface`` and measure each coordinate's effective learning rate.

    ``settings`` go to :func:`run_on_surface` (``start``, ``noise``,
    ``seed``, ``dtype``, ``label``) and to the optimizer (``lr=...`` and the rest), so the path
    is the one ``run_on_surface`` gives with the same arguments.

    >>> sizes = effective_step_sizes("bowl", torch.optim.SGD, steps=5, lr=0.05)
    >>> [round(value, 12) for value in sizes.effective[-1].tolist()]
    [0.05, 0.05]
    """
    recorders: list[_GradientRecorder] = []

    def recorder(optimizer: Optimizer) -> _GradientRecorder:
        recorders.append(_GradientRecorder(optimizer))
        return recorders[0]

    trajectory = run_on_surface(surface, optimizer_cls, steps, scheduler=recorder, **settings)
    gradients = (
        torch.stack(recorders[0].gradients) if steps else torch.zeros(0, 2, dtype=torch.float64)
    )
    moves = trajectory.points.diff(dim=0)
    effective = torch.where(gradients != 0, -moves / gradients, torch.nan)
    return StepSizes(trajectory, gradients, effective)


# -------------------------------------------------------------------------------- state records


def _snapshot(value: Any) -> Tensor:
    """A state entry as a flat float64 CPU tensor (a number becomes a 1-element tensor)."""
    if isinstance(value, Tensor):
        value = value.detach()
        if value.is_complex():
            value = torch.view_as_real(value)
        return value.to("cpu", torch.float64).reshape(-1).clone()
    return torch.tensor([float(value)], dtype=torch.float64)


def record_state(
    surface: Surface | str,
    optimizer_cls: Callable[..., Optimizer],
    keys: Sequence[str],
    steps: int = 100,
    *,
    label: str | None = None,
    **settings: Any,
) -> tuple[Trajectory, dict[str, Tensor]]:
    """:func:`run_on_surface`, also recording ``optimizer.state`` after
    every step.

    ``settings`` go to ``run_on_surface`` (``start``, ``noise``, ``seed``, ...) and on to the
    optimizer (``lr``, ...). Returns the trajectory and, per key, a tensor with one row per
    step: ``records["step_size"][t]`` holds Rprop's step sizes after step ``t + 1``. A number
    in the state (L-BFGS's ``func_evals``) gives a column of shape ``(steps, 1)``.

    >>> path, records = record_state("bowl", torch.optim.Rprop, ["step_size"], steps=3)
    >>> records["step_size"][:, 0].tolist()  # lr 0.01 grows by 1.2 while the sign holds
    [0.01, 0.012, 0.0144]
    """
    recorded: dict[str, list[Tensor]] = {key: [] for key in keys}

    def build(params: list[Tensor], **hyperparameters: Any) -> Optimizer:
        optimizer = optimizer_cls(params, **hyperparameters)
        (point,) = params

        def record(opt: Optimizer, args: Any, kwargs: Any) -> None:
            for key in keys:
                recorded[key].append(_snapshot(opt.state[point][key]))

        optimizer.register_step_post_hook(record)
        return optimizer

    name = label or getattr(optimizer_cls, "__name__", type(optimizer_cls).__name__)
    trajectory = run_on_surface(surface, build, steps, label=name, **settings)
    empty = torch.empty(0, 0, dtype=torch.float64)
    return trajectory, {
        key: torch.stack(values) if values else empty for key, values in recorded.items()
    }


@dataclass
class Watched:
    """What :func:`watch` measured: ``values[i]`` right after optimizer step ``steps[i]``."""

    steps: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    handle: Any = None

    def stop(self) -> None:
        """Stop measuring (remove the hook from the optimizer)."""
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


def watch(optimizer: Optimizer, measure: Callable[[], Any], every: int = 1) -> Watched:
    """Call ``measure()`` after every ``every``-th ``optimizer.step`` and keep what it returns.

    It runs as a step hook, so it works inside any training loop, e.g.
    ``watch(optimizer, lambda: evaluate(model, loader).loss, every=10)`` before
    ``train(model, optimizer, ...)``. ``measure`` runs with gradients off.
    """
    if every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    watched = Watched()
    count = 0

    def after_step(opt: Optimizer, args: Any, kwargs: Any) -> None:
        nonlocal count
        count += 1
        if count % every == 0:
            with torch.no_grad():
                watched.values.append(measure())
            watched.steps.append(count)

    watched.handle = optimizer.register_step_post_hook(after_step)
    return watched
