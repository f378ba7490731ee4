r"""Reference optimizers and self-checks for the chapter "Write your own optimizer".

The chapter builds Lion step by step; its exercises ask you to build three more optimizers in
the same style. Each ``check_*`` function takes *your class*, runs it beside a reference written
here and checks it the way the book's test suite checks its own optimizers: the same path
step for step, the same state under the same keys, a ``state_dict`` that hands over both ways,
torch-style error messages, and a learning-rate scheduler. It raises an ``AssertionError`` that
says what differs, or prints what was checked.

**Signum** (Bernstein, Wang, Azizzadenesheli & Anandkumar, *signSGD: Compressed Optimisation for
Non-Convex Problems*, ICML 2018) steps by the sign of a momentum:

$$
\theta \leftarrow (1 - \gamma\lambda)\,\theta_{t-1}, \qquad
m_t = \beta m_{t-1} + (1 - \beta)\, g_t, \qquad
\theta_t = \theta - \gamma \operatorname{sign}(m_t),
$$

with $m_0 = 0$. The weight decay is decoupled, as in Lion; the paper's algorithm has none.
With $\beta = 0$ it is signSGD. Signum is Lion with $\beta_1 = \beta_2 = \beta$.

**AdaBelief** (Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris & Duncan, *AdaBelief
Optimizer: Adapting Stepsizes by the Belief in Observed Gradients*, NeurIPS 2020, Algorithm 2)
is Adam that divides by the spread of the gradient around its momentum instead of by its size:

$$
\begin{aligned}
m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \\
s_t &= \beta_2 s_{t-1} + (1 - \beta_2)\,(g_t - m_t)^2 + \epsilon, \\
\theta_t &= (1 - \gamma\lambda)\,\theta_{t-1}
    - \gamma\, \frac{m_t / (1 - \beta_1^t)}{\sqrt{s_t / (1 - \beta_2^t)} + \epsilon},
\end{aligned}
$$

with $m_0 = s_0 = 0$. $\epsilon$ enters twice, inside $s_t$ and beside its root, as in the
paper. The weight decay here is decoupled (the paper's algorithm has none; its code offers
both kinds).

**Lion with** ``maximize``: the library's :class:`~optim_lessons.optimizers.Lion` plus
torch.optim's ``maximize`` flag, checked against Lion descending the negated loss.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, ParamsT

from optim_lessons.exercises._parity_checks import (
    assert_close_paths,
    assert_returns_closure_loss,
    check_against,
    check_defaults,
    check_errors,
    check_scheduler,
)
from optim_lessons.optimizers._common import (
    check_betas,
    check_epsilon,
    check_learning_rate,
    check_weight_decay,
    evaluate_closure,
)
from optim_lessons.optimizers.lion import Lion
from optim_lessons.parity import (
    Problem,
    make_problem,
    upside_down,
)

__all__ = [
    "AdaBelief",
    "Signum",
    "adabelief_update",
    "check_adabelief",
    "check_lion_maximize",
    "check_signum",
    "signum_update",
]


# ------------------------------------------------------------------------------------- Signum


def signum_update(
    param: Tensor,
    grad: Tensor,
    momentum_buffer: Tensor,
    *,
    lr: float | Tensor,
    momentum: float,
    weight_decay: float,
) -> None:
    """One Signum step for one parameter; writes into ``param`` and ``momentum_buffer``."""
    param.mul_(1 - lr * weight_decay)  # theta = (1 - lr lambda) theta
    momentum_buffer.mul_(momentum).add_(grad, alpha=1 - momentum)  # m_t = b m + (1 - b) g
    param.add_(momentum_buffer.sgn(), alpha=-lr)  # theta_t = theta - lr sign(m_t)


class Signum(Optimizer):
    """Sign of the momentum (Bernstein et al. 2018), with decoupled weight decay.

    ``Signum(params, lr=1e-3, momentum=0.9, weight_decay=0.0)``; state ``momentum_buffer``,
    zero before the first step.
    """

    def __init__(
        self, params: ParamsT, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0
    ) -> None:
        check_learning_rate(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        check_weight_decay(weight_decay)
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Update every parameter that has a gradient; return the closure's loss, if given."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["momentum_buffer"] = torch.zeros_like(p)
                signum_update(
                    p,
                    p.grad,
                    state["momentum_buffer"],
                    lr=group["lr"],
                    momentum=group["momentum"],
                    weight_decay=group["weight_decay"],
                )
        return loss


# ---------------------------------------------------------------------------------- AdaBelief


def adabelief_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_var: Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One AdaBelief step (``step`` counts from 1); writes into ``param``, ``exp_avg`` and
    ``exp_avg_var``."""
    param.mul_(1 - lr * weight_decay)  # theta = (1 - lr lambda) theta
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)  # m_t = b1 m + (1 - b1) g
    surprise = grad - exp_avg  # g_t - m_t: how far the gradient is from the belief
    exp_avg_var.mul_(beta2).addcmul_(surprise, surprise, value=1 - beta2)  # s = b2 s + (1-b2) d^2
    exp_avg_var.add_(eps)  # ... + eps, inside s_t
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    denominator = (exp_avg_var / bias_correction2).sqrt().add_(eps)  # sqrt(s_hat) + eps
    param.addcdiv_(exp_avg, denominator, value=-lr / bias_correction1)  # theta -= lr m_hat / den


class AdaBelief(Optimizer):
    """AdaBelief (Zhuang et al. 2020, Algorithm 2) with decoupled weight decay.

    ``AdaBelief(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-16, weight_decay=0.0)``; state
    ``step`` (a float32 tensor, like torch.optim's Adam), ``exp_avg`` and ``exp_avg_var``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-16,
        weight_decay: float = 0.0,
    ) -> None:
        check_learning_rate(lr)
        check_epsilon(eps)
        check_betas(betas)
        check_weight_decay(weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Update every parameter that has a gradient; return the closure's loss, if given."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_var"] = torch.zeros_like(p)
                state["step"] += 1
                adabelief_update(
                    p,
                    p.grad,
                    state["exp_avg"],
                    state["exp_avg_var"],
                    step=int(state["step"]),
                    lr=group["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                )
        return loss


# ------------------------------------------------------------------------------------ checks


def check_signum(cls: type[Optimizer], steps: int = 25) -> None:
    """Exercise: write ``Signum(params, lr=1e-3, momentum=0.9, weight_decay=0.0)`` with state
    ``momentum_buffer`` (zero before the first step) and torch's error messages.

    Runs your class beside :class:`Signum` in float64 and float32, with signSGD
    (``momentum=0``), weight decay and two param groups, and checks the defaults, the errors,
    the state, a ``state_dict`` handover both ways and a OneCycleLR schedule.
    """
    check_defaults(cls, {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0})
    check_errors(
        cls,
        Signum,
        [{"lr": -1.0}, {"momentum": -0.1}, {"momentum": 1.0}, {"weight_decay": -0.1}],
    )
    assert_returns_closure_loss(cls, {"lr": 1e-2})
    cases = [
        ("lr 0.01", {"lr": 1e-2}, {}),
        (
            "lr 0.01, momentum 0.5, weight_decay 0.1",
            {"lr": 1e-2, "momentum": 0.5, "weight_decay": 0.1},
            {},
        ),
        ("signSGD (momentum 0)", {"lr": 1e-2, "momentum": 0.0}, {}),
        ("float32, weight_decay 0.1", {"lr": 1e-2, "weight_decay": 0.1}, {"dtype": torch.float32}),
        (
            "two param groups",
            {"lr": 1e-2},
            {"groups": [{"momentum": 0.5}, {"lr": 3e-2, "weight_decay": 0.2}]},
        ),
    ]
    runs = check_against(cls, Signum, "Signum", cases, ("momentum_buffer",), steps)
    check_scheduler(cls, Signum, {"lr": 1e-2, "weight_decay": 0.1}, "Signum")
    print(
        f"{cls.__name__} passes: defaults, 4 error messages, the closure's loss, {runs} runs of "
        f"{steps} steps beside Signum (paths and momentum_buffer), state_dict handover both "
        "ways, a OneCycleLR schedule"
    )


def check_adabelief(cls: type[Optimizer], steps: int = 25) -> None:
    """Exercise: write ``AdaBelief(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-16,
    weight_decay=0.0)`` with state ``step``, ``exp_avg`` and ``exp_avg_var`` and torch's error
    messages (those of torch.optim.Adam).

    Runs your class beside :class:`AdaBelief`, including a large ``eps`` (where it matters
    whether $\\epsilon$ is added inside $s_t$ as well as beside its root), and checks the
    defaults, errors, state, a ``state_dict`` handover both ways and a OneCycleLR schedule.
    """
    check_defaults(cls, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-16, "weight_decay": 0.0})
    check_errors(
        cls,
        AdaBelief,
        [
            {"lr": -1.0},
            {"eps": -1e-8},
            {"betas": (1.0, 0.999)},
            {"betas": (0.9, -0.5)},
            {"weight_decay": -0.1},
        ],
    )
    assert_returns_closure_loss(cls, {"lr": 1e-2})
    cases = [
        ("lr 0.01", {"lr": 1e-2}, {}),
        (
            "lr 0.01, betas (0.5, 0.9), weight_decay 0.1",
            {"lr": 1e-2, "betas": (0.5, 0.9), "weight_decay": 0.1},
            {},
        ),
        ("eps 1e-3 (inside s_t and beside its root)", {"lr": 1e-2, "eps": 1e-3}, {}),
        ("float32, eps 1e-3", {"lr": 1e-2, "eps": 1e-3}, {"dtype": torch.float32}),
        (
            "two param groups",
            {"lr": 1e-2},
            {"groups": [{"betas": (0.8, 0.99)}, {"lr": 3e-2, "weight_decay": 0.2}]},
        ),
    ]
    runs = check_against(
        cls, AdaBelief, "AdaBelief", cases, ("step", "exp_avg", "exp_avg_var"), steps
    )
    check_scheduler(cls, AdaBelief, {"lr": 1e-2, "weight_decay": 0.1}, "AdaBelief")
    print(
        f"{cls.__name__} passes: defaults, 5 error messages, the closure's loss, {runs} runs of "
        f"{steps} steps beside AdaBelief (paths, step, exp_avg, exp_avg_var), state_dict "
        "handover both ways, a OneCycleLR schedule"
    )


def _final_params(
    cls: type[Optimizer], kwargs: dict[str, Any], problem: Problem, steps: int
) -> tuple[list[Tensor], list[Tensor]]:
    """Run ``steps`` steps; return the parameters and, for the last step, the gradients the
    closure left in ``.grad`` before ``step`` could change them (and ``.grad`` after)."""
    params = problem.clone_params()
    optimizer = cls(params, **copy.deepcopy(kwargs))
    seen: list[Tensor] = []

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = problem.loss_fn(params)
        loss.backward()
        seen[:] = [p.grad.clone() for p in params]
        return loss

    for _ in range(steps):
        optimizer.step(closure)
    grads_after = [p.grad for p in params]
    unchanged = [torch.equal(a, b) for a, b in zip(seen, grads_after, strict=True)]
    assert all(unchanged), (
        "step changed p.grad: negate into a new tensor (e.g. -p.grad), as torch.optim does, "
        "and leave the gradient the user computed as it was"
    )
    return [p.detach() for p in params], seen


def check_lion_maximize(cls: type[Optimizer], steps: int = 25) -> None:
    """Exercise: give Lion torch.optim's ``maximize`` flag (keyword-only, ``False`` by default,
    stored in each param group), as ``cls(params, lr, betas, weight_decay, *,
    decoupled_weight_decay=False, maximize=False)``.

    Checks that ``maximize=False`` follows the library's Lion; that climbing the negated loss
    with ``maximize=True`` follows Lion descending the loss, step for step; that ``step`` leaves
    ``p.grad`` as it was; and that a ``state_dict`` saved by the library's Lion (whose groups
    have no ``maximize`` key) loads and runs, the way torch.optim's optimizers fill in a key
    that older state_dicts lack (``__setstate__``).
    """
    kwargs = {"lr": 1e-2, "weight_decay": 0.1}
    sample = cls([torch.zeros(2, requires_grad=True)], **kwargs)
    assert sample.defaults.get("maximize") is False, (
        "maximize should be a hyperparameter with default False, stored in the param groups "
        f"(defaults are {sample.defaults})"
    )
    problem = make_problem("dense")
    plain, _ = _final_params(cls, kwargs, problem, steps)
    reference, _ = _final_params(Lion, kwargs, problem, steps)
    assert_close_paths("Lion", plain, reference, torch.float64, "with maximize=False")
    climbed, _ = _final_params(cls, dict(kwargs, maximize=True), upside_down(problem), steps)
    assert_close_paths(
        "Lion",
        climbed,
        reference,
        torch.float64,
        "maximize=True on the negated loss against Lion descending the loss",
    )
    # A state_dict from an optimizer that never had the flag.
    params = problem.clone_params()
    old = Lion(params, **kwargs)
    for _ in range(5):
        old.zero_grad()
        problem.loss_fn(params).backward()
        old.step()
    saved = old.state_dict()
    assert "maximize" not in saved["param_groups"][0]
    new = cls(params, **kwargs)
    new.load_state_dict(copy.deepcopy(saved))
    try:
        new.zero_grad()
        problem.loss_fn(params).backward()
        new.step()
    except KeyError as error:
        raise AssertionError(
            f"after loading a state_dict whose groups have no 'maximize', step raised "
            f"KeyError({error}); fill the key in with __setstate__ (group.setdefault)"
        ) from None
    print(
        f"{cls.__name__} passes: maximize=False follows Lion; maximize=True climbs the negated "
        f"loss on Lion's path for {steps} steps; p.grad left unchanged; an older state_dict "
        "loads and steps"
    )
