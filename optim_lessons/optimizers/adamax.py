r"""Adamax: Adam with the infinity norm in place of the second moment.

Paper: D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015),
https://arxiv.org/abs/1412.6980, Section 7.1 and Algorithm 2.

Adam divides by an exponentially weighted $L^2$ norm of past gradients; letting the norm's power
go to infinity turns that average into a running maximum $u_t$, which needs no bias correction.
With learning rate $\gamma$, decay rates $\beta_1, \beta_2$, weight decay $\lambda$ and
$m_0 = u_0 = 0$:

$$
\begin{aligned}
g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1})
    \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ with maximize}) \\
g_t &\leftarrow g_t + \lambda \theta_{t-1} \\
m_t &\leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
u_t &\leftarrow \max\big(\beta_2 u_{t-1},\; |g_t| + \epsilon\big) \\
\theta_t &\leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} \, \frac{m_t}{u_t}
\end{aligned}
$$

A complex parameter is updated as a pair of real ones, so $|g_t|$ is taken on the real and the
imaginary part separately.

torch.optim versus the paper:

- The paper's maximum is $\max(\beta_2 u_{t-1}, |g_t|)$; torch.optim adds $\epsilon$ to $|g_t|$
  inside the maximum, so $u_t$ never reaches zero and the division is always safe.
- Weight decay (an L2 penalty added to the gradient) is not in the paper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, ParamsT

from optim_lessons.optimizers._common import (
    as_real,
    as_scalar,
    check_beta_ranges,
    check_epsilon,
    check_learning_rate,
    check_switches_at_step,
    check_weight_decay,
    evaluate_closure,
    grad_mode_of_differentiable,
    scalar_dtype,
    scalar_state_to_tensors,
    set_switch_defaults,
    step_device,
)

__all__ = ["Adamax", "adamax_update"]


def adamax_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_inf: Tensor,
    *,
    step: float,
    lr: float | Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """One Adamax step on one parameter, in place.

    ``param``, ``exp_avg`` ($m$) and ``exp_inf`` ($u$) are updated in place; ``grad`` is not.
    ``step`` is $t$, already counting this step.
    """
    if maximize:
        grad = -grad  # g_t <- -grad f: climb instead of descend
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)  # g_t <- g_t + lambda theta_{t-1}
    # A complex number is two real coordinates: the moments are kept for each one.
    param, grad = as_real(param), as_real(grad)
    exp_avg, exp_inf = as_real(exp_avg), as_real(exp_inf)

    exp_avg.lerp_(grad, 1 - beta1)  # m_t <- beta1 m_{t-1} + (1 - beta1) g_t
    torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps), out=exp_inf)  # u_t <- max(...)
    bias_correction = 1 - beta1**step
    param.addcdiv_(exp_avg, exp_inf, value=-(lr / bias_correction))  # theta -= gamma m / (...)


class Adamax(Optimizer):
    """Adamax, with torch.optim.Adamax's arguments, defaults, errors and state.

    The state of a parameter is ``step`` (a float scalar tensor), ``exp_avg`` and ``exp_inf``.

    ``foreach``, ``capturable`` and ``differentiable`` are checked and stored like torch's, and
    all select the one readable path below. With ``differentiable=True`` the step runs with
    autograd on, as in torch, but its in-place temporaries leave no graph that a backward pass
    can use.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        check_learning_rate(lr)
        check_epsilon(eps)
        check_beta_ranges(betas)
        check_weight_decay(weight_decay)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "capturable": capturable,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # state dicts saved before these options existed
            group.setdefault("maximize", False)
        set_switch_defaults(self, ("foreach", "differentiable", "capturable"))
        scalar_state_to_tensors(self)

    @grad_mode_of_differentiable
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Take one step for every parameter that has a gradient; return the closure's loss."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            # First every parameter of the group is checked and given its state, then updated.
            params_with_grad = [p for p in group["params"] if p.grad is not None]
            for param in params_with_grad:
                if param.grad.is_sparse:
                    raise RuntimeError("Adamax does not support sparse gradients")
                state = self.state[param]
                if len(state) == 0:
                    state["step"] = torch.zeros(
                        (), dtype=scalar_dtype(), device=step_device(param, group)
                    )
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_inf"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            check_switches_at_step(group, params_with_grad)
            beta1, beta2 = group["betas"]
            for param in params_with_grad:
                state = self.state[param]
                state["step"] += 1
                adamax_update(
                    param,
                    param.grad,
                    state["exp_avg"],
                    state["exp_inf"],
                    step=state["step"].item(),
                    lr=as_scalar(group["lr"]),
                    beta1=beta1,
                    beta2=beta2,
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                    maximize=group["maximize"],
                )
        return loss
