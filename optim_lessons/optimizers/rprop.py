r"""Rprop: move each weight by its own step size, using only the sign of the gradient.

Riedmiller & Braun, *A Direct Adaptive Method for Faster Backpropagation Learning: The RPROP
Algorithm*, IEEE International Conference on Neural Networks, 1993.

The size of a gradient says little about how far to go, so Rprop ignores it. Every weight
keeps a step size $\Delta$. While the gradient keeps its sign, the step size grows by
$\eta_+$; when the sign flips, the last step jumped over a minimum, so the step size
shrinks by $\eta_-$ and the weight waits one step:

$$
\begin{aligned}
s_t &\leftarrow \operatorname{sign}(g_t\, g_{t-1})
    && \text{(did the gradient keep its sign?)} \\
\Delta_t &\leftarrow \operatorname{clip}\big(\Delta_{t-1} \cdot
    \{\eta_+ \text{ if } s_t > 0;\ \eta_- \text{ if } s_t < 0;\ 1 \text{ if } s_t = 0\},\
    \Delta_{\min}, \Delta_{\max}\big)
    && \text{(adapt the step size)} \\
g_t &\leftarrow 0 \ \text{ where } s_t < 0
    && \text{(no move after a sign flip)} \\
\theta_t &\leftarrow \theta_{t-1} - \operatorname{sign}(g_t)\, \Delta_t
    && \text{(step)} \\
g_{t-1} &\leftarrow g_t
    && \text{(remember, zeros included)}
\end{aligned}
$$

with $g_0 = 0$ and $\Delta_0 = \gamma$ (the learning rate). With ``maximize=True``
the gradient is negated first.

torch.optim versus the paper:

- After a sign flip the paper takes the previous step back ("weight-backtracking"); torch.optim
  only skips the move, the variant Igel & Hüsken (2000) call iRprop⁻.
- The initial step size is the learning rate (default 0.01); the paper suggests 0.1.
- The step size is clipped to $[\Delta_{\min}, \Delta_{\max}]$ on every step, not only when
  it grows or shrinks.
- A complex parameter is treated as two real ones, each with its own step size.
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
    evaluate_closure,
    grad_mode_of_differentiable,
    scalar_dtype,
    set_switch_defaults,
    step_device,
)

__all__ = ["Rprop", "rprop_update"]


def rprop_update(
    param: Tensor,
    grad: Tensor,
    prev: Tensor,
    step_size: Tensor,
    *,
    etaminus: float,
    etaplus: float,
    step_size_min: float,
    step_size_max: float,
    maximize: bool,
) -> None:
    """One Rprop step for one parameter.

    Writes into ``param``, ``prev`` (the last gradient) and ``step_size``; ``grad`` is only read.
    """
    if maximize:
        grad = -grad
    param, grad, prev, step_size = (as_real(t) for t in (param, grad, prev, step_size))

    agreement = grad.mul(prev).sign()  # s_t = sign(g_t g_{t-1})
    factor = (
        agreement.masked_fill(agreement > 0, etaplus)
        .masked_fill_(agreement < 0, etaminus)
        .masked_fill_(agreement == 0, 1)
    )  # eta+ / eta- / 1
    step_size.mul_(factor).clamp_(step_size_min, step_size_max)  # Delta_t
    grad = grad.masked_fill(agreement < 0, 0)  # no move after a sign flip
    param.addcmul_(grad.sign(), step_size, value=-1)  # theta_t = theta - sign(g) Delta
    prev.copy_(grad)  # g_{t-1} for the next step


class Rprop(torch.optim.Optimizer):
    """Rprop with torch.optim.Rprop's hyperparameters, state and messages.

    ``foreach``, ``capturable`` and ``differentiable`` are checked and stored like torch's, and
    all select the one readable path below. With ``differentiable=True`` the step runs with
    autograd on, as in torch, but its in-place temporaries leave no graph that a backward pass
    can use.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_learning_rate(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {
            "lr": lr,
            "etas": etas,
            "step_sizes": step_sizes,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
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
            etaminus, etaplus = group["etas"]
            step_size_min, step_size_max = group["step_sizes"]
            with_grad = [p for p in group["params"] if p.grad is not None]
            if not any(p.grad.is_sparse for p in with_grad):  # torch names a sparse gradient first
                check_switches_at_step(group, with_grad, xla_foreach=True)
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Rprop does not support sparse gradients")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.zeros(
                        (), dtype=scalar_dtype(), device=step_device(p, group)
                    )
                    state["prev"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    # Delta_0 = lr, for the real and the imaginary part of a complex weight.
                    lr = group["lr"]
                    initial = complex(lr, lr) if p.is_complex() else as_scalar(lr)
                    state["step_size"] = torch.full_like(p.grad, initial)
                state["step"] += 1
                rprop_update(
                    p,
                    p.grad,
                    state["prev"],
                    state["step_size"],
                    etaminus=etaminus,
                    etaplus=etaplus,
                    step_size_min=step_size_min,
                    step_size_max=step_size_max,
                    maximize=group["maximize"],
                )
        return loss
