r"""Measuring per-coordinate step sizes, a textbook RMSprop, a sparse lookup table, and the
self-checks of the adaptive step sizes chapter (Adagrad, RMSprop, Adadelta).

Adagrad, RMSprop and Adadelta give every coordinate its own step size. The *effective*
learning rate of a coordinate is the step it took divided by the gradient it was given,

$$
\eta_{t,i} = -\frac{\theta_{t,i} - \theta_{t-1,i}}{g_{t,i}} ,
$$

which is the constant ``lr`` for plain SGD, $\gamma/(\sqrt{G_{t,i}} + \epsilon)$ for Adagrad,
$\gamma/(\sqrt{v_{t,i}} + \epsilon)$ for RMSprop and
$\gamma\sqrt{u_{t-1,i} + \epsilon}/\sqrt{v_{t,i} + \epsilon}$ for Adadelta.
:func:`optim_lessons.playground.probes.effective_step_sizes` measures it on a surface for any
optimizer, without reading the optimizer's state.

:class:`TextbookRMSprop` puts $\epsilon$ *inside* the square root,
$g/\sqrt{v + \epsilon}$, as Graves (2013) and several textbooks write RMSprop;
``torch.optim.RMSprop`` adds it outside, $g/(\sqrt{v} + \epsilon)$.

:func:`train_lookup_table` fits an embedding table whose rows are looked up with very
different frequencies: the setting (sparse features) for which Adagrad was designed.

The ``check_*`` functions are the exercises' self-checks: each raises an ``AssertionError``
that says what is wrong, or prints what was verified.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, ParamsT

from optim_lessons.optimizers._common import (
    check_epsilon,
    check_learning_rate,
    evaluate_closure,
)
from optim_lessons.parity import compare_trajectories

__all__ = [
    "LookupResult",
    "TextbookRMSprop",
    "check_eps_crossover",
    "check_lr_decay_steps",
    "check_paper_adadelta",
    "textbook_rmsprop_update",
    "train_lookup_table",
]


# ---------------------------------------------------------- RMSprop with eps inside the root


def textbook_rmsprop_update(
    param: Tensor,
    grad: Tensor,
    square_avg: Tensor,
    grad_avg: Tensor | None,
    *,
    lr: float,
    alpha: float,
    eps: float,
) -> None:
    r"""One RMSprop step with $\epsilon$ inside the square root, in place.

    $v_t = \alpha v_{t-1} + (1-\alpha) g_t^2$, then
    $\theta_t = \theta_{t-1} - \gamma\, g_t / \sqrt{v_t + \epsilon}$, or, centered (Graves's
    equations without momentum), $\gamma\, g_t / \sqrt{v_t - \bar g_t^2 + \epsilon}$.
    """
    square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)  # v_t = a v + (1 - a) g^2
    variance = square_avg
    if grad_avg is not None:
        grad_avg.lerp_(grad, 1 - alpha)  # g_bar = a g_bar + (1 - a) g
        variance = square_avg.addcmul(grad_avg, grad_avg, value=-1)  # v - g_bar^2
    scale = (variance + eps).sqrt()  # sqrt(v + eps): eps inside the root
    param.addcdiv_(grad, scale, value=-lr)  # theta_t = theta_{t-1} - lr g / sqrt(v + eps)


class TextbookRMSprop(Optimizer):
    """RMSprop with $\\epsilon$ inside the square root (Graves 2013; several textbooks).

    Same names and defaults as ``torch.optim.RMSprop`` (``lr=0.01``, ``alpha=0.99``,
    ``eps=1e-8``, ``centered=False``), same state keys (``step``, ``square_avg``, ``grad_avg``);
    no momentum, weight decay or ``maximize``. Only the place of ``eps`` differs.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        centered: bool = False,
    ) -> None:
        check_learning_rate(lr)
        check_epsilon(eps)
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "centered": centered})

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Update every parameter that has a gradient; return the closure's loss, if given."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if len(state) == 0:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["square_avg"] = torch.zeros_like(param)
                    if group["centered"]:
                        state["grad_avg"] = torch.zeros_like(param)
                state["step"] += 1
                textbook_rmsprop_update(
                    param,
                    param.grad,
                    state["square_avg"],
                    state.get("grad_avg") if group["centered"] else None,
                    lr=float(group["lr"]),
                    alpha=group["alpha"],
                    eps=group["eps"],
                )
        return loss


# ------------------------------------------------------------------- a sparse lookup table


@dataclass
class LookupResult:
    """What :func:`train_lookup_table` measured.

    Attributes:
        visits: shape ``(rows,)``, how many times each row was looked up during training.
        errors: shape ``(rows,)``, each row's distance to its target after training.
        initial_errors: shape ``(rows,)``, the same distance before training.
        optimizer: the optimizer after training (its state can be read).
    """

    visits: Tensor
    errors: Tensor
    initial_errors: Tensor
    optimizer: Optimizer


def train_lookup_table(
    optimizer_cls: Callable[..., Optimizer],
    *,
    steps: int = 100,
    rows: int = 200,
    dim: int = 4,
    batch_size: int = 64,
    sparse: bool = True,
    seed: int = 0,
    **hyperparameters: Any,
) -> LookupResult:
    r"""Fit an embedding table to random targets, looking rows up with very unequal frequencies.

    Row $i$ is drawn with probability proportional to $1/(i+1)$ (a Zipf law, like word
    frequencies): row 0 fills about a sixth of every batch, the last rows appear a few times in
    a whole run.
    The loss is half the mean squared distance between the looked-up rows and their targets,
    so a row's gradient is its error times the share of the batch it filled. With
    ``sparse=True`` the gradient is a sparse tensor holding only the looked-up rows (as
    ``nn.Embedding(sparse=True)`` gives it); with ``sparse=False`` it is dense, zero elsewhere.
    The same ``seed`` gives the same table, targets and batches for every optimizer.
    """
    generator = torch.Generator().manual_seed(seed)
    table = torch.randn(rows, dim, generator=generator, dtype=torch.float64)
    targets = torch.randn(rows, dim, generator=generator, dtype=torch.float64)
    weights = 1.0 / torch.arange(1, rows + 1, dtype=torch.float64)
    batches = torch.multinomial(weights, steps * batch_size, replacement=True, generator=generator)
    batches = batches.reshape(steps, batch_size)

    weight = table.clone().requires_grad_(True)
    optimizer = optimizer_cls([weight], **hyperparameters)
    for index in batches:
        optimizer.zero_grad()
        looked_up = torch.nn.functional.embedding(index, weight, sparse=sparse)
        loss = 0.5 * ((looked_up - targets[index]) ** 2).sum(dim=1).mean()
        loss.backward()
        optimizer.step()
    visits = torch.bincount(batches.flatten(), minlength=rows)
    errors = (weight.detach() - targets).norm(dim=1)
    return LookupResult(visits, errors, (table - targets).norm(dim=1), optimizer)


# --------------------------------------------------------------------------- exercise self-checks


def _first_small_adagrad_step(lr_decay: float, fraction: float, cap: int = 100_000) -> list[float]:
    """The step sizes ``torch.optim.Adagrad`` takes when every gradient is exactly 1, up to and
    including the first one no larger than ``fraction`` of the first step."""
    point = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adagrad([point], lr=1.0, lr_decay=lr_decay)
    sizes: list[float] = []
    while len(sizes) < cap and (not sizes or sizes[-1] > fraction * sizes[0]):
        before = point.detach().clone()
        point.grad = torch.ones(1, dtype=torch.float64)
        optimizer.step()
        sizes.append(float((before - point.detach()).abs()))
    return sizes


def check_lr_decay_steps(answer: int, lr_decay: float = 0.01, fraction: float = 0.1) -> None:
    """Exercise: with a gradient that never changes, at which step does ``torch.optim.Adagrad``
    (with ``lr_decay``) first take a step no larger than ``fraction`` of its first step?

    The check runs ``torch.optim.Adagrad`` and measures it; ``answer`` counts steps from 1.
    """
    if isinstance(answer, bool) or not isinstance(answer, int) or answer < 1:
        raise AssertionError(f"the answer is a step number (an integer from 1), got {answer!r}")
    sizes = _first_small_adagrad_step(lr_decay, fraction)
    first = len(sizes)
    assert answer <= first, f"step {first} is already at or below {fraction} of the first step"
    assert answer >= first, (
        f"at step {answer} the step is still {sizes[answer - 1] / sizes[0]:.4f} of the first "
        f"one, above {fraction}"
    )
    before = f"; step {first - 1}: {sizes[-2] / sizes[0]:.4f}" if first > 1 else ""
    print(
        f"Right: step {first} is the first at or below {fraction} of the first step "
        f"({sizes[-1] / sizes[0]:.4f}{before})"
    )


def _denominator_gap(v: float, eps: float) -> float:
    """How much larger the textbook denominator sqrt(v + eps) is than torch's sqrt(v) + eps."""
    return math.sqrt(v + eps) / (math.sqrt(v) + eps) - 1


def check_eps_crossover(answer: float, eps: float = 1e-8, gap: float = 0.01) -> None:
    r"""Exercise: below which mean square $v$ does $\sqrt{v + \epsilon}$ exceed
    $\sqrt{v} + \epsilon$ by more than ``gap`` (1% by default)?

    The check finds the crossover by bisection (on a log scale) and accepts an answer within 5%.
    """
    assert answer > 0, f"the crossover is a positive mean square, got {answer!r}"
    low, high = eps * 1e-6, 1.0  # the gap is large at low and tiny at high
    for _ in range(200):
        middle = math.sqrt(low * high)
        if _denominator_gap(middle, eps) > gap:
            low = middle
        else:
            high = middle
    crossover = math.sqrt(low * high)
    ratio = answer / crossover
    assert 1 / 1.05 <= ratio <= 1.05, (
        f"at v = {answer:.3g} the textbook denominator is "
        f"{100 * _denominator_gap(answer, eps):.3g}% larger than torch's, not {100 * gap:.3g}%"
    )
    print(
        f"Right: v = {answer:.3g} (the crossover is at {crossover:.3g}, about "
        f"{crossover / eps:.3g} eps; below it the two RMSprops differ by more than {gap:.0%})"
    )


class _UpdateFunctionAdadelta(Optimizer):
    """Runs a reader's Adadelta update function, with torch's state, for the self-check."""

    def __init__(
        self,
        params: ParamsT,
        update: Callable[..., Any],
        rho: float = 0.9,
        eps: float = 1e-6,
    ) -> None:
        self.update = update
        super().__init__(params, {"rho": rho, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if len(state) == 0:
                    state["square_avg"] = torch.zeros_like(param)
                    state["acc_delta"] = torch.zeros_like(param)
                self.update(
                    param,
                    param.grad,
                    state["square_avg"],
                    state["acc_delta"],
                    rho=group["rho"],
                    eps=group["eps"],
                )
        return loss


def check_paper_adadelta(
    update: Callable[..., Any], rho: float = 0.95, eps: float = 1e-6, steps: int = 50
) -> None:
    """Exercise: write Zeiler's Algorithm 1, with no learning rate at all, as
    ``update(param, grad, square_avg, acc_delta, *, rho, eps)`` changing ``param``,
    ``square_avg`` and ``acc_delta`` in place.

    The check runs it beside ``torch.optim.Adadelta`` (``lr=1.0``, its default) on the parity
    problem for ``steps`` steps, in float64, and asserts the paths agree to 1e-9.
    """

    def ours(params: ParamsT, rho: float, eps: float) -> Optimizer:
        return _UpdateFunctionAdadelta(params, update, rho=rho, eps=eps)

    report = compare_trajectories(ours, torch.optim.Adadelta, {"rho": rho, "eps": eps}, steps=steps)
    assert report.max_abs_diff < 1e-9, (
        f"your update leaves torch.optim.Adadelta(lr=1.0) by up to {report.max_abs_diff:.3g} "
        f"(first above 1e-9 at step "
        f"{next(i for i, d in enumerate(report.max_abs_diff_per_step, 1) if d >= 1e-9)})"
    )
    print(
        f"Same path as torch.optim.Adadelta(lr=1.0) for {steps} steps: largest difference "
        f"{report.max_abs_diff:.1e}"
    )
