r"""RMSprop: divide the gradient by a running root-mean-square of recent gradients.

Hinton, Srivastava & Swersky, *Neural Networks for Machine Learning*, Lecture 6e, 2012 (the
unpublished slides where RMSprop first appeared); the centered variant with momentum is from
Graves, *Generating Sequences With Recurrent Neural Networks*, 2013 (arXiv:1308.0850),
equations 38-41.

Rprop uses only the sign of the gradient, which breaks down with mini-batches. RMSprop keeps
the idea of ignoring the gradient's scale, but measures the scale with a leaky average of
squared gradients, so mini-batches average out. The centered variant subtracts the squared mean
gradient, dividing by an estimate of the gradient's standard deviation instead:

$$
\begin{aligned}
g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1}) + \lambda\,\theta_{t-1}
    && \text{(gradient, optional L2 penalty)} \\
v_t &\leftarrow \alpha\, v_{t-1} + (1-\alpha)\, g_t^2
    && \text{(mean square)} \\
\bar g_t &\leftarrow \alpha\, \bar g_{t-1} + (1-\alpha)\, g_t
    && \text{(mean gradient, centered only)} \\
\sigma_t &\leftarrow \sqrt{v_t - \bar g_t^2} + \epsilon
    \ \text{(centered)}, \quad \sqrt{v_t} + \epsilon \ \text{(otherwise)}
    && \text{(scale)} \\
b_t &\leftarrow \mu\, b_{t-1} + g_t / \sigma_t
    && \text{(momentum buffer, if } \mu > 0) \\
\theta_t &\leftarrow \theta_{t-1} - \gamma\, b_t
    \ \text{(if } \mu > 0), \quad \theta_{t-1} - \gamma\, g_t / \sigma_t \ \text{(otherwise)}
    && \text{(step)}
\end{aligned}
$$

with $v_0 = \bar g_0 = b_0 = 0$. With ``maximize=True`` the gradient is negated first.

torch.optim versus the paper:

- $\epsilon$ is added after the square root; Graves adds it inside
  ($\sqrt{v - \bar g^2 + \epsilon}$, $\epsilon = 10^{-4}$); the lecture has none.
- The momentum buffer accumulates $g/\sigma$ and the learning rate multiplies the buffer;
  Graves puts the learning rate inside the buffer, which differs once the learning rate changes.
- The default decay is $\alpha = 0.99$; the lecture uses 0.9 and Graves 0.95.
- ``weight_decay`` adds an L2 penalty to the gradient that neither source uses.
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
    check_epsilon,
    check_learning_rate,
    check_switches_at_step,
    check_weight_decay,
    evaluate_closure,
    grad_mode_of_differentiable,
    scalar_dtype,
    set_switch_defaults,
    step_device,
)

__all__ = ["RMSprop", "rmsprop_update"]


def rmsprop_update(
    param: Tensor,
    grad: Tensor,
    square_avg: Tensor,
    grad_avg: Tensor | None,
    momentum_buffer: Tensor | None,
    *,
    lr: float | Tensor,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    maximize: bool,
) -> None:
    """One RMSprop step for one parameter.

    ``grad_avg`` is given for the centered variant and ``momentum_buffer`` when ``momentum > 0``
    (``None`` otherwise). Writes into ``param`` and the state tensors; ``grad`` is only read.
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)  # g_t + lambda * theta_{t-1}
    param, grad, square_avg = as_real(param), as_real(grad), as_real(square_avg)

    square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)  # v_t = a v + (1 - a) g^2
    if grad_avg is not None:
        grad_avg = as_real(grad_avg)
        grad_avg.lerp_(grad, 1 - alpha)  # mean gradient: a g_bar + (1 - a) g
        scale = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()  # sqrt(v - g_bar^2)
    else:
        scale = square_avg.sqrt()  # sqrt(v)
    scale = scale.add_(eps)  # sigma_t

    if momentum_buffer is not None:
        momentum_buffer = as_real(momentum_buffer)
        momentum_buffer.mul_(momentum).addcdiv_(grad, scale)  # b_t = mu b + g / sigma
        param.add_(momentum_buffer, alpha=-lr)  # theta_t = theta_{t-1} - lr b_t
    else:
        param.addcdiv_(grad, scale, value=-lr)  # theta_t = theta_{t-1} - lr g / sigma


class RMSprop(torch.optim.Optimizer):
    """RMSprop with torch.optim.RMSprop's hyperparameters, state and messages.

    ``foreach``, ``capturable`` and ``differentiable`` are checked and stored like torch's, and
    all select the one readable path below. With ``differentiable=True`` the step runs with
    autograd on, as in torch, but its in-place temporaries leave no graph that a backward pass
    can use.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_learning_rate(lr)
        check_epsilon(eps)
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        check_weight_decay(weight_decay)
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "capturable": capturable,
            "foreach": foreach,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        set_switch_defaults(self, ("capturable", "foreach", "differentiable"))

    @grad_mode_of_differentiable
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Update every parameter that has a gradient; return the closure's loss, if given."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            lr = as_scalar(group["lr"])
            momentum, centered = group["momentum"], group["centered"]
            with_grad = [p for p in group["params"] if p.grad is not None]
            if not any(p.grad.is_sparse for p in with_grad):  # torch names a sparse gradient first
                check_switches_at_step(group, with_grad, xla_foreach=True)
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("RMSprop does not support sparse gradients")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.zeros(
                        (), dtype=scalar_dtype(), device=step_device(p, group)
                    )
                    state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    # The optional buffers exist only if their option is on at the first step.
                    if momentum > 0:
                        state["momentum_buffer"] = torch.zeros_like(
                            p, memory_format=torch.preserve_format
                        )
                    if centered:
                        state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                rmsprop_update(
                    p,
                    p.grad,
                    state["square_avg"],
                    state["grad_avg"] if centered else None,
                    state["momentum_buffer"] if momentum > 0 else None,
                    lr=lr,
                    alpha=group["alpha"],
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                    momentum=momentum,
                    maximize=group["maximize"],
                )
        return loss
