r"""ASGD: stochastic gradient descent that also keeps the running average of its iterates.

Polyak & Juditsky, *Acceleration of Stochastic Approximation by Averaging*, SIAM J. Control and
Optimization 30(4), 1992. The step-size schedule and the decay term follow Bottou's averaged-SGD
code and Xu, *Towards Optimal One Pass Large Scale Learning with Averaged Stochastic Gradient
Descent*, 2011.

Plain SGD with a slowly shrinking step size jitters around the minimum. Polyak and Juditsky
showed that the *average* of the iterates, $\bar\theta_t = \frac1t\sum_{i\le t}\theta_i$,
converges at the best possible rate even though the iterates themselves do not. The
parameters follow SGD; the average $\bar\theta$ (``ax``) is kept beside them:

$$
\begin{aligned}
g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1}) + \lambda_{wd}\,\theta_{t-1}
    && \text{(gradient, optional L2 penalty)} \\
\theta_t &\leftarrow (1 - \lambda\,\gamma_{t-1})\,\theta_{t-1} - \gamma_{t-1}\, g_t
    && \text{(decayed SGD step)} \\
\bar\theta_t &\leftarrow \bar\theta_{t-1} + \omega_{t-1}\,(\theta_t - \bar\theta_{t-1})
    && \text{(running average, } \bar\theta_t = \theta_t \text{ while } \omega = 1) \\
\gamma_t &\leftarrow \gamma\,/\,(1 + \lambda\gamma t)^{\alpha}
    && \text{(step-size schedule)} \\
\omega_t &\leftarrow 1\,/\,\max(1,\ t - t_0)
    && \text{(averaging weight)}
\end{aligned}
$$

with $\gamma_0 = \gamma$ (the learning rate) and $\omega_0 = 1$. With ``maximize=True``
the gradient is negated first.

torch.optim versus the paper:

- The paper averages from the first step; torch.optim copies the iterate into ``ax`` until step
  $t_0$ (default $10^6$) and only then starts averaging, so with the defaults ``ax``
  is just the current parameter.
- The averaged point ``ax`` is only kept in the state: the parameters themselves follow SGD, and
  you read the average from ``optimizer.state[p]["ax"]`` yourself.
- The step size follows the schedule $\gamma/(1+\lambda\gamma t)^\alpha$ (default
  $\alpha = 0.75$), one of the slowly decaying schedules the paper's theory allows.
- Each step also shrinks the parameter by $(1-\lambda\gamma_t)$, a decay term from Bottou's
  code that the paper does not have; ``weight_decay`` adds a separate L2 penalty on top.
- The step uses $\gamma_t$ and $\omega$ computed at the end of the previous step, and keeps
  them (and the step counter) as scalar tensors on the parameter's device, $\gamma_t$ in
  float32 even for a float64 parameter.
- A complex parameter is treated as two real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT

from optim_lessons.optimizers._common import (
    as_real,
    as_scalar,
    check_learning_rate,
    check_switches_at_step,
    check_weight_decay,
    evaluate_closure,
    grad_mode_of_differentiable,
    scalar_dtype,
    set_switch_defaults,
)

__all__ = ["ASGD", "asgd_update"]


def asgd_update(
    param: Tensor,
    grad: Tensor,
    ax: Tensor,
    eta: Tensor,
    mu: Tensor,
    step: Tensor,
    *,
    lr: float | Tensor,
    lambd: float,
    alpha: float,
    t0: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """One ASGD step for one parameter.

    Writes into ``param``, ``ax`` and the scalar tensors ``eta``, ``mu``, ``step``; ``grad`` is
    only read.
    """
    if maximize:
        grad = -grad
    param, grad, ax = as_real(param), as_real(grad), as_real(ax)
    step += 1
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)  # g_t + lambda_wd * theta_{t-1}

    eta_value = eta.item()
    param.mul_(1 - lambd * eta_value)  # (1 - lambda gamma_t) theta_{t-1}
    param.add_(grad, alpha=-eta_value)  # ... - gamma_t g_t
    if mu.item() != 1:
        ax.add_(param.sub(ax).mul_(mu))  # bar_theta += omega (theta_t - bar_theta)
    else:
        ax.copy_(param)  # bar_theta = theta_t before averaging starts

    t = step.item()
    eta.copy_(torch.as_tensor(lr / ((1 + lambd * lr * t) ** alpha)))  # gamma_t (state key eta)
    mu.copy_(torch.as_tensor(1 / max(1, t - t0)))  # omega_t (state key mu)


class ASGD(torch.optim.Optimizer):
    """Averaged SGD with torch.optim.ASGD's hyperparameters, state and messages.

    ``foreach``, ``capturable`` and ``differentiable`` are checked and stored like torch's, and
    all select the one readable path below. With ``differentiable=True`` autograd records the
    step, as in torch.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        check_learning_rate(lr)
        check_weight_decay(weight_decay)
        defaults = {
            "lr": lr,
            "lambd": lambd,
            "alpha": alpha,
            "t0": t0,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "capturable": capturable,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        set_switch_defaults(self, ("foreach", "differentiable", "capturable"))

    @grad_mode_of_differentiable
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Update every parameter that has a gradient; return the closure's loss, if given."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            lr = as_scalar(group["lr"])
            with_grad = [p for p in group["params"] if p.grad is not None]
            if not any(p.grad.is_sparse for p in with_grad):  # torch names a sparse gradient first
                check_switches_at_step(group, with_grad, what="params, mus, etas, and state_steps")
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("ASGD does not support sparse gradients")
                state = self.state[p]
                if len(state) == 0:
                    # Unlike most optimizers, ASGD keeps its scalars on the parameter's device.
                    scalar = {"device": p.device, "dtype": scalar_dtype()}
                    state["step"] = torch.zeros((), **scalar)
                    state["eta"] = torch.as_tensor(lr, **scalar).clone().detach()
                    state["mu"] = torch.ones((), **scalar)
                    state["ax"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                asgd_update(
                    p,
                    p.grad,
                    state["ax"],
                    state["eta"],
                    state["mu"],
                    state["step"],
                    lr=lr,
                    lambd=group["lambd"],
                    alpha=group["alpha"],
                    t0=group["t0"],
                    weight_decay=group["weight_decay"],
                    maximize=group["maximize"],
                )
        return loss
