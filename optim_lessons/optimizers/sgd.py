r"""Stochastic gradient descent, with optional momentum, dampening and Nesterov momentum.

Papers: H. Robbins and S. Monro, "A Stochastic Approximation Method" (1951) for the plain step;
B. T. Polyak, "Some methods of speeding up the convergence of iteration methods" (1964) for
momentum; I. Sutskever, J. Martens, G. Dahl and G. Hinton, "On the importance of initialization
and momentum in deep learning" (ICML 2013), http://proceedings.mlr.press/v28/sutskever13.html,
for Nesterov momentum in deep learning.

With learning rate $\gamma$, momentum $\mu$, dampening $\tau$ and weight decay $\lambda$, one step
reads:

$$
\begin{aligned}
g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1})
    \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ with maximize}) \\
g_t &\leftarrow g_t + \lambda \theta_{t-1} \\
b_t &\leftarrow \begin{cases}
    g_t & t = 1 \\
    \mu b_{t-1} + (1 - \tau) g_t & t > 1
\end{cases} \\
d_t &\leftarrow \begin{cases}
    g_t + \mu b_t & \text{nesterov} \\
    b_t & \text{otherwise}
\end{cases} \\
\theta_t &\leftarrow \theta_{t-1} - \gamma d_t
\end{aligned}
$$

With $\mu = 0$ there is no buffer and $d_t = g_t$: the plain step
$\theta_t = \theta_{t-1} - \gamma g_t$.

torch.optim versus the paper:

- Sutskever et al. keep the learning rate inside the velocity ($v_t = \mu v_{t-1} - \gamma g_t$,
  $\theta_t = \theta_{t-1} + v_t$); torch.optim keeps it outside ($b_t = \mu b_{t-1} + g_t$,
  $\theta_t = \theta_{t-1} - \gamma b_t$), which is the same path at a constant rate but not once a
  scheduler changes $\gamma$.
- The buffer starts at the first gradient instead of zero, so dampening only acts from step 2.
- Nesterov momentum takes the gradient at $\theta_{t-1}$ and steps along $g_t + \mu b_t$, instead
  of taking the gradient at the look-ahead point $\theta_{t-1} + \mu v_{t-1}$ as the paper does.
- Dampening and weight decay (an L2 penalty added to the gradient) are not in the papers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor
from torch.optim.optimizer import Optimizer, ParamsT

from optim_lessons.optimizers._common import (
    as_scalar,
    check_fused_options,
    check_fused_param,
    evaluate_closure,
    grad_mode_of_differentiable,
)

__all__ = ["SGD", "sgd_update"]


def sgd_update(
    param: Tensor,
    grad: Tensor,
    momentum_buffer: Tensor | None,
    *,
    lr: float | Tensor,
    momentum: float,
    dampening: float,
    weight_decay: float | Tensor,
    nesterov: bool,
    maximize: bool,
) -> Tensor | None:
    """One SGD step on one parameter, in place.

    ``param`` (and an existing ``momentum_buffer``) change in place; ``grad`` does not. Returns
    the momentum buffer to keep for the next step: a new one on the first step with momentum,
    ``None`` without momentum. Sparse and complex gradients go through the same lines.
    """
    if maximize:
        grad = -grad  # g_t <- -grad f: climb instead of descend
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)  # g_t <- g_t + lambda theta_{t-1}
    if momentum != 0:
        if momentum_buffer is None:
            momentum_buffer = grad.detach().clone()  # b_1 <- g_1
        else:
            # b_t <- mu b_{t-1} + (1 - tau) g_t
            momentum_buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
        if nesterov:
            grad = grad.add(momentum_buffer, alpha=momentum)  # d_t <- g_t + mu b_t
        else:
            grad = momentum_buffer  # d_t <- b_t
    param.add_(grad, alpha=-lr)  # theta_t <- theta_{t-1} - gamma d_t
    return momentum_buffer


class SGD(Optimizer):
    """Stochastic gradient descent, with torch.optim.SGD's arguments, defaults, errors and state.

    The state of a parameter is ``{"momentum_buffer": Tensor}`` once it has had a gradient with
    ``momentum != 0``; without momentum SGD keeps no state at all.

    ``foreach``, ``fused`` and ``differentiable`` are checked and stored like torch's, and all
    select the one readable path below. With ``differentiable=True`` autograd records the step,
    as in torch.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float | Tensor = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        # SGD compares with `< 0.0` where the other optimizers use `not 0.0 <= x`: NaN passes here.
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)
        check_fused_options(fused, foreach, differentiable)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # state dicts saved before these options existed
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", False)  # torch's SGD fills in False here, not None

    @grad_mode_of_differentiable
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Take one step for every parameter that has a gradient; return the closure's loss."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            momentum = group["momentum"]
            if group["fused"]:
                with_grad = [p for p in group["params"] if p.grad is not None]
                for param in with_grad:
                    check_fused_param(param)
                if any(p.grad.is_sparse for p in with_grad):
                    raise RuntimeError("`_fused_sgd` does not support sparse gradients")
            for param in group["params"]:
                if param.grad is None:
                    continue
                # Without momentum nothing is stored, not even an empty state entry.
                buffer = self.state[param].get("momentum_buffer") if momentum != 0 else None
                buffer = sgd_update(
                    param,
                    param.grad,
                    buffer,
                    lr=as_scalar(group["lr"]),
                    momentum=momentum,
                    dampening=group["dampening"],
                    weight_decay=group["weight_decay"],
                    nesterov=group["nesterov"],
                    maximize=group["maximize"],
                )
                if momentum != 0:
                    self.state[param]["momentum_buffer"] = buffer
        return loss
