r"""Adadelta: a per-coordinate step size that carries its own units.

Zeiler, *ADADELTA: An Adaptive Learning Rate Method*, 2012 (arXiv:1212.5701), Algorithm 1.

Adagrad divides by the root of *all* past squared gradients, so its steps shrink forever.
Adadelta keeps two leaky averages instead: one of the squared gradients, $v$, and one of
the squared updates, $D$. The ratio of their roots has the units of the parameter, so the
method needs no learning rate at all in the paper:

$$
\begin{aligned}
g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1}) + \lambda\,\theta_{t-1}
    && \text{(gradient, optional L2 penalty)} \\
v_t &\leftarrow \rho\, v_{t-1} + (1-\rho)\, g_t^2
    && \text{(average of squared gradients)} \\
\Delta_t &\leftarrow \frac{\sqrt{D_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t
    && \text{(RMS ratio times gradient)} \\
D_t &\leftarrow \rho\, D_{t-1} + (1-\rho)\, \Delta_t^2
    && \text{(average of squared updates)} \\
\theta_t &\leftarrow \theta_{t-1} - \gamma\, \Delta_t
    && \text{(step)}
\end{aligned}
$$

with $v_0 = D_0 = 0$. With ``maximize=True`` the gradient is negated first.

torch.optim versus the paper:

- The update is multiplied by a learning rate $\gamma$ (default 1.0); the paper has none.
- ``weight_decay`` adds $\lambda\theta$ to the gradient, an L2 penalty the paper does not use.
- The default decay is $\rho = 0.9$; the paper's experiments use 0.95.
- A complex parameter is treated as two real ones (real and imaginary parts get separate averages).
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

__all__ = ["Adadelta", "adadelta_update"]


def adadelta_update(
    param: Tensor,
    grad: Tensor,
    square_avg: Tensor,
    acc_delta: Tensor,
    *,
    lr: float | Tensor,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """One Adadelta step for one parameter.

    Writes the new values into ``param``, ``square_avg`` and ``acc_delta``; ``grad`` is only read.
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)  # g_t + lambda * theta_{t-1}
    grad, square_avg, acc_delta = (as_real(t) for t in (grad, square_avg, acc_delta))

    square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)  # v_t = rho v + (1 - rho) g^2
    rms_square_avg = square_avg.add(eps).sqrt_()  # RMS[v]_t = sqrt(v_t + eps)
    # Delta_t = RMS[D]_{t-1} / RMS[v]_t * g_t, computed in place to spare full-size temporaries
    delta = acc_delta.add(eps).sqrt_().div_(rms_square_avg).mul_(grad)
    acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)  # D_t = rho D + (1 - rho) Delta^2
    if torch.is_complex(param):  # the moments are per real coordinate; the step is a number
        delta = torch.view_as_complex(delta)
    param.add_(delta, alpha=-lr)  # theta_t = theta_{t-1} - lr * Delta


class Adadelta(torch.optim.Optimizer):
    """Adadelta with torch.optim.Adadelta's hyperparameters, state and messages.

    ``foreach``, ``capturable`` and ``differentiable`` are checked and stored like torch's, and
    all select the one readable path below. With ``differentiable=True`` the step runs with
    autograd on, as in torch, but its in-place temporaries leave no graph that a backward pass
    can use.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_learning_rate(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        check_epsilon(eps)
        check_weight_decay(weight_decay)
        defaults = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        set_switch_defaults(self, ("foreach", "capturable", "differentiable"))

    @grad_mode_of_differentiable
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Update every parameter that has a gradient; return the closure's loss, if given."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            lr = as_scalar(group["lr"])
            with_grad = [p for p in group["params"] if p.grad is not None]
            if not any(p.grad.is_sparse for p in with_grad):  # torch names a sparse gradient first
                check_switches_at_step(group, with_grad, xla_single=False)
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Adadelta does not support sparse gradients")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.zeros(
                        (), dtype=scalar_dtype(), device=step_device(p, group)
                    )
                    state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["acc_delta"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                adadelta_update(
                    p,
                    p.grad,
                    state["square_avg"],
                    state["acc_delta"],
                    lr=lr,
                    rho=group["rho"],
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                    maximize=group["maximize"],
                )
        return loss
