r"""Schedule-Free SGD and AdamW, and the wrapper that makes any optimizer schedule-free.

Paper: A. Defazio, X. Yang, H. Mehta, K. Mishchenko, A. Khaled and A. Cutkosky, "The Road Less
Scheduled" (NeurIPS 2024), https://arxiv.org/abs/2405.15682 (Algorithm 1). Reference code: the
``schedulefree`` package (``SGDScheduleFree``, ``AdamWScheduleFree``, ``ScheduleFreeWrapper``),
whose names, defaults, param-group keys and state keys these classes keep.

Schedule-Free replaces the rate schedule by an average. It keeps three sequences: $z$, plain
(S)GD steps at a constant rate; $x$, a running weighted average of the $z$'s, the point you
evaluate; and $y$, between the two, where the gradient is taken. With momentum-like
interpolation $\beta$ (``momentum``, or AdamW's $\beta_1$) and rate $\gamma_t$:

$$
\begin{aligned}
y_t &= (1 - \beta)\, z_t + \beta\, x_t \\
z_{t+1} &= z_t - \gamma_t\, d_t, \qquad
    d_t = g_t + \lambda y_t \ \text{(SGD)}, \quad
    d_t = \frac{g_t}{\sqrt{v_t / (1 - \beta_2^{t})} + \epsilon} + \lambda y_t \ \text{(AdamW)} \\
x_{t+1} &= (1 - c_{t+1})\, x_t + c_{t+1}\, z_{t+1}, \qquad
    c_{t+1} = \frac{w_{t+1}}{\sum_{i \le t+1} w_i}, \quad
    w_{t} = t^{\,r}\, \gamma_{\max,t}^{\,p}
\end{aligned}
$$

with $g_t = \nabla f(y_t)$, AdamW's $v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2$, $\lambda$ =
``weight_decay``, $r$ = ``r``, $p$ = ``weight_lr_power`` and $\gamma_{\max,t}$ the largest rate
so far. Warm-up is built in: $\gamma_t = \gamma \min(1, t / \text{warmup\_steps})$. With
$w_t$ constant, $x$ is the plain mean of the $z$'s (Polyak averaging, SWA); $\beta = 0$ makes
$y = z$, $\beta = 1$ makes $y = x$ (primal averaging), and $\beta = 0.9$ sits between.

Only two sequences are stored: the parameter holds $y$ while training and $z$ is the state
``z``; $x$ is recovered from them, $x = (y - (1 - \beta) z)/\beta$, and $y$ is updated directly:

$$
y_{t+1} = (1 - c_{t+1})\, y_t + c_{t+1} z_t + \gamma_t\big(\beta (1 - c_{t+1}) - 1\big) d_t .
$$

That is why the optimizer has modes. ``optimizer.eval()`` moves every parameter from $y$ to $x$
(call it before evaluating or saving), ``optimizer.train()`` moves it back to $y$ (before the
next step). ``step()`` raises when not in train mode. BatchNorm statistics measured at $y$ do not
fit $x$; recompute them (``optim_lessons.averaging.update_bn``) before evaluating such a model.

The package versus the paper:

- Algorithm 1 folds Adam's bias correction into the rate, $\gamma_t \sqrt{1 - \beta_2^t}$, with
  $\epsilon$ added to $\sqrt{v_t}$; the package divides $v_t$ by $1 - \beta_2^t$ before the
  root, so $\epsilon$ is not scaled by the correction. There is no $\beta_1$ moment: $\beta_1$ is
  the interpolation.
- The paper weights the average by $\gamma_t^2$; the package by $(t)^r \gamma_{\max,t}^p$, the
  largest rate so far, so a rate lowered by hand does not lower the weights ($r = 0$, $p = 2$
  is the paper's choice).
- Weight decay is taken at $y$, where the gradient is, not at $x$ or $z$.

The wrapper, ``ScheduleFreeWrapper(base)``, runs the same $x, y, z$ bookkeeping around any
optimizer, whose ``step()`` plays the part of $z_{t+1} = z_t - \gamma_t d_t$: before it the
parameter is set to $z$, after it back to $y$. Its optional ``weight_decay_at_y`` decays at $y$
(the base optimizer's own weight decay would act at $z$). The package's wrapper stores $z$ in
the base optimizer's state before the base's first step, so bases that create their state only
when it is empty (torch's Adam and RMSprop) fail with a KeyError; this one hides $z$ from the
base during its step and works with any base.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, ParamsT

from optim_lessons.optimizers._common import check_weight_decay, evaluate_closure

__all__ = ["SGDScheduleFree", "AdamWScheduleFree", "ScheduleFreeWrapper", "schedule_free_update"]

NOT_IN_TRAIN_MODE = (
    "Optimizer was not in train mode when step is called. "
    "Please insert .train() and .eval() calls on the "
    "optimizer. See documentation for details."
)


def schedule_free_update(
    y: Tensor, z: Tensor, direction: Tensor, *, lr: float, beta: float, ckp1: float
) -> None:
    r"""One Schedule-Free step, in place: ``y`` (the parameter) and ``z`` move, ``direction``
    ($d_t$, the gradient or Adam's normalized gradient, weight decay included) does not.
    ``ckp1`` is $c_{t+1}$, the new point's weight in the average $x$."""
    y.lerp_(z, ckp1)  # (1 - c) y_t + c z_t: the average's part of y_{t+1}
    y.add_(direction, alpha=lr * (beta * (1 - ckp1) - 1))  # + gamma (beta (1 - c) - 1) d_t
    z.sub_(direction, alpha=lr)  # z_{t+1} = z_t - gamma d_t


def average_weight(
    group: dict[str, Any],
    lr: float,
    r: float,
    weight_lr_power: float,
    lr_max_floor: float = -1.0,
) -> float:
    r"""$c_{t+1} = w_{t+1} / \sum w_i$ with $w = (k+1)^r \gamma_{\max}^p$; updates the group's
    running ``lr_max`` and ``weight_sum`` (a group without them starts from ``lr_max_floor``
    and 0)."""
    lr_max = group["lr_max"] = max(lr, group.get("lr_max", lr_max_floor))
    weight = ((group.get("k", 0) + 1) ** r) * (lr_max**weight_lr_power)
    weight_sum = group["weight_sum"] = group.get("weight_sum", 0.0) + weight
    return weight / weight_sum


def warmed_up_lr(group: dict[str, Any]) -> float:
    """gamma_t = gamma min(1, (k+1) / warmup_steps), also kept as ``scheduled_lr`` for logging."""
    k, warmup_steps = group["k"], group["warmup_steps"]
    schedule = (k + 1) / warmup_steps if k < warmup_steps else 1.0
    group["scheduled_lr"] = group["lr"] * schedule
    return group["scheduled_lr"]


def _move_between_y_and_x(
    optimizer: Any,
    groups: list[dict[str, Any]],
    to_x: bool,
    beta_of: Callable[[dict[str, Any]], float],
) -> None:
    """eval(): y -> x = lerp(y, z, 1 - 1/beta); train(): x -> y = lerp(x, z, 1 - beta)."""
    for group in groups:
        beta = beta_of(group)
        for param in group["params"]:
            state = optimizer.state[param]
            if "z" in state:
                weight = 1 - 1 / beta if to_x else 1 - beta
                param.lerp_(state["z"].to(param.device), weight)


class _ScheduleFree(Optimizer):
    """The train/eval switch that the SGD and AdamW versions share."""

    def _beta(self, group: dict[str, Any]) -> float:
        raise NotImplementedError

    @torch.no_grad()
    def eval(self) -> None:
        """Put every parameter at $x$, the average: evaluate and save in this mode."""
        for group in self.param_groups:
            if group["train_mode"]:
                _move_between_y_and_x(self, [group], to_x=True, beta_of=self._beta)
                group["train_mode"] = False

    @torch.no_grad()
    def train(self) -> None:
        """Put every parameter at $y$, where the next gradient is taken."""
        for group in self.param_groups:
            if not group["train_mode"]:
                _move_between_y_and_x(self, [group], to_x=False, beta_of=self._beta)
                group["train_mode"] = True

    def _start(self, closure: Callable[[], float | Tensor] | None) -> float | Tensor | None:
        if not self.param_groups[0]["train_mode"]:
            raise Exception(NOT_IN_TRAIN_MODE)
        return evaluate_closure(closure)


class SGDScheduleFree(_ScheduleFree):
    """Schedule-Free SGD, with ``schedulefree.SGDScheduleFree``'s arguments and state (``z``).

    ``foreach`` is accepted and kept in the groups for compatibility; there is one code path.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2,
        foreach: bool | None = True,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        check_weight_decay(weight_decay)
        if momentum <= 0 or momentum >= 1:
            raise ValueError(f"Momentum must be between 0 and 1 exclusive: {momentum}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            r=r,
            k=0,
            warmup_steps=warmup_steps,
            train_mode=False,
            weight_sum=0.0,
            lr_max=-1.0,
            scheduled_lr=0.0,
            weight_lr_power=weight_lr_power,
            weight_decay=weight_decay,
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _beta(self, group: dict[str, Any]) -> float:
        return group["momentum"]

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        loss = self._start(closure)
        for group in self.param_groups:
            lr = warmed_up_lr(group)  # gamma_t
            try:
                ckp1 = average_weight(group, lr, group["r"], group["weight_lr_power"])  # c_{t+1}
            except ZeroDivisionError:  # every weight zero (lr = 0): x does not move
                ckp1 = 0
            for param in [p for p in group["params"] if p.grad is not None]:
                state = self.state[param]
                if "z" not in state:
                    state["z"] = torch.clone(param, memory_format=torch.preserve_format)
                direction = param.grad
                if group["weight_decay"] != 0:
                    direction = direction.add(param, alpha=group["weight_decay"])  # g + lambda y
                schedule_free_update(
                    param, state["z"], direction, lr=lr, beta=group["momentum"], ckp1=ckp1
                )
            group["k"] += 1
        return loss


class AdamWScheduleFree(_ScheduleFree):
    """Schedule-Free AdamW, with ``schedulefree.AdamWScheduleFree``'s arguments and state
    (``z``, ``exp_avg_sq``). ``foreach`` is accepted for compatibility; there is one code path.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        foreach: bool | None = True,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            r=r,
            k=0,
            warmup_steps=warmup_steps,
            train_mode=False,
            weight_sum=0.0,
            lr_max=-1.0,
            scheduled_lr=0.0,
            weight_lr_power=weight_lr_power,
            weight_decay=weight_decay,
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _beta(self, group: dict[str, Any]) -> float:
        return group["betas"][0]

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        loss = self._start(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            bias_correction2 = 1 - beta2 ** (group["k"] + 1)  # 1 - beta2^t
            lr = warmed_up_lr(group)  # gamma_t
            try:
                ckp1 = average_weight(group, lr, group["r"], group["weight_lr_power"])  # c_{t+1}
            except ZeroDivisionError:
                ckp1 = 0
            for param in [p for p in group["params"] if p.grad is not None]:
                state = self.state[param]
                if "z" not in state:
                    state["z"] = torch.clone(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(
                        param, memory_format=torch.preserve_format
                    )
                grad, exp_avg_sq = param.grad, state["exp_avg_sq"]
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v_t
                denominator = exp_avg_sq.div(bias_correction2).sqrt_().add_(group["eps"])
                direction = grad.div(denominator)  # g / (sqrt(v_t / (1 - beta2^t)) + eps)
                if group["weight_decay"] != 0:
                    direction.add_(param, alpha=group["weight_decay"])  # + lambda y
                schedule_free_update(param, state["z"], direction, lr=lr, beta=beta1, ckp1=ckp1)
            group["k"] += 1
        return loss


class ScheduleFreeWrapper:
    """``schedulefree.ScheduleFreeWrapper``: Schedule-Free averaging around any optimizer.

    The base optimizer's ``step()`` is the $z$ update; the wrapper keeps $z$ in the state
    (``z``) and the parameter at $y$ while training. Read its rate from ``group["lr"]`` (times
    ``group["d"]`` for D-Adaptation-style optimizers that keep one).
    """

    def __init__(
        self,
        base: Optimizer,
        weight_decay_at_y: float = 0.0,
        momentum: float = 0.9,
        weight_lr_power: float = 2,
        r: float = 0,
    ) -> None:
        self.base = base
        self.weight_decay_at_y = weight_decay_at_y
        self.weight_lr_power = weight_lr_power
        self.r = r
        self.momentum = momentum
        self.train_mode = False

    # The wrapper is the optimizer the training loop sees: these go to the base.
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        return self.base.add_param_group(param_group)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        return self.base.load_state_dict(state_dict)

    def state_dict(self) -> dict[str, Any]:
        return self.base.state_dict()

    def zero_grad(self, set_to_none: bool = True) -> None:
        return self.base.zero_grad(set_to_none)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.base.param_groups

    @property
    def state(self) -> Any:
        return self.base.state

    @torch.no_grad()
    def eval(self) -> None:
        if self.train_mode:
            _move_between_y_and_x(
                self, self.param_groups, to_x=True, beta_of=lambda group: self.momentum
            )
        self.train_mode = False

    @torch.no_grad()
    def train(self) -> None:
        if not self.train_mode:
            _move_between_y_and_x(
                self, self.param_groups, to_x=False, beta_of=lambda group: self.momentum
            )
        self.train_mode = True

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        if not self.train_mode:
            raise Exception(NOT_IN_TRAIN_MODE)
        loss = evaluate_closure(closure)
        beta = self.momentum
        averages: dict[Tensor, Tensor] = {}  # x of each parameter, while the base steps z
        for group in self.param_groups:
            lr = group["lr"]
            for param in [p for p in group["params"] if p.grad is not None]:
                state = self.state[param]
                if "z" not in state:
                    state["z"] = torch.clone(param, memory_format=torch.preserve_format)
                z = state["z"]
                if self.weight_decay_at_y != 0.0:  # z -= gamma lambda y; y moves along
                    z.sub_(param, alpha=lr * self.weight_decay_at_y)
                    param.sub_(param, alpha=lr * self.weight_decay_at_y * (1 - beta))
                averages[param] = param.lerp(z, 1 - 1 / beta)  # x = (y - (1 - beta) z) / beta
                param.copy_(z)  # the base optimizer steps the parameter, so it must hold z

        # The base optimizer must not see ``z``: optimizers that create their state when it is
        # empty (Adam, RMSprop) would find it non-empty and skip that.
        zs = {param: self.state[param].pop("z") for param in averages}
        self.base.step()  # z_{t+1} = z_t - gamma d_t, whatever d_t the base computes
        for param, z in zs.items():
            self.state[param]["z"] = z

        for group in self.param_groups:
            lr = group["lr"] * group.get("d", 1.0)
            ckp1 = average_weight(group, lr, self.r, self.weight_lr_power, lr_max_floor=0)
            for param in [p for p in group["params"] if p.grad is not None]:
                z = self.state[param]["z"]
                z.copy_(param)  # z_{t+1}
                param.copy_(averages[param]).lerp_(z, ckp1)  # x_{t+1} = lerp(x_t, z_{t+1}, c)
                param.lerp_(z, 1 - beta)  # y_{t+1} = lerp(x_{t+1}, z_{t+1}, 1 - beta)
            group["k"] = group.get("k", 0) + 1
        return loss
