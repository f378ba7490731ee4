r"""Adagrad: a per-coordinate learning rate that shrinks with the sum of past squared gradients.

Paper: J. Duchi, E. Hazan and Y. Singer, "Adaptive Subgradient Methods for Online Learning and
Stochastic Optimization" (JMLR 12, 2011), https://jmlr.org/papers/v12/duchi11a.html (the
diagonal version).

Coordinates that have seen large gradients take small steps, and rarely-seen coordinates keep
large ones, which suits sparse features. With learning rate $\gamma$, learning-rate decay
$\eta$, weight decay $\lambda$ and initial accumulator value $G_0$:

$$
\begin{aligned}
g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1})
    \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ with maximize}) \\
g_t &\leftarrow g_t + \lambda \theta_{t-1} \\
\tilde\gamma_t &\leftarrow \gamma / \big(1 + (t - 1)\eta\big) \\
G_t &\leftarrow G_{t-1} + g_t^2 \\
\theta_t &\leftarrow \theta_{t-1} - \tilde\gamma_t \, g_t / \big(\sqrt{G_t} + \epsilon\big)
\end{aligned}
$$

With a sparse gradient only the rows that the gradient holds are touched, in $G_t$ and in
$\theta_t$. A complex parameter is updated as a pair of real ones, and its accumulator starts at
$G_0 + iG_0$.

torch.optim versus the paper:

- The learning-rate decay $\tilde\gamma_t = \gamma / (1 + (t-1)\eta)$ is not in the paper.
- The paper starts the sum of squares at zero and relies on $\delta$ (here $\epsilon$) alone;
  torch.optim lets it start at ``initial_accumulator_value``.
- Weight decay (an L2 penalty added to the gradient) is not in the paper, and torch.optim
  refuses it with sparse gradients.
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
    check_epsilon,
    check_fused_options,
    check_fused_param,
    check_learning_rate,
    check_switches_at_step,
    check_weight_decay,
    evaluate_closure,
    grad_mode_of_differentiable,
    scalar_state_to_tensors,
    set_switch_defaults,
    step_device,
    step_dtype,
)

__all__ = ["Adagrad", "adagrad_update"]


def adagrad_update(
    param: Tensor,
    grad: Tensor,
    state_sum: Tensor,
    *,
    step: float,
    lr: float | Tensor,
    lr_decay: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
) -> None:
    """One Adagrad step on one parameter, in place.

    ``param`` and ``state_sum`` ($G$) are updated in place; ``grad`` (dense or sparse) is not.
    ``step`` is $t$, already counting this step.
    """
    if maximize:
        grad = -grad  # g_t <- -grad f: climb instead of descend
    if weight_decay != 0:
        if grad.is_sparse:
            raise RuntimeError("weight_decay option is not compatible with sparse gradients")
        grad = grad.add(param, alpha=weight_decay)  # g_t <- g_t + lambda theta_{t-1}
    decayed_lr = lr / (1 + (step - 1) * lr_decay)  # gamma_t <- gamma / (1 + (t - 1) eta)

    if grad.is_sparse:
        grad = grad.coalesce()  # one entry per row: the update is not linear in the gradient
        rows, values = grad.indices(), grad.values()
        # G_t <- G_{t-1} + g_t^2, on the rows the gradient holds
        state_sum.add_(torch.sparse_coo_tensor(rows, values.pow(2), grad.size()))
        std_values = state_sum.sparse_mask(grad).values().sqrt_().add_(eps)  # sqrt(G_t) + eps
        step_values = values / std_values
        # theta_t <- theta_{t-1} - gamma_t g_t / (sqrt(G_t) + eps), on the same rows
        param.add_(torch.sparse_coo_tensor(rows, step_values, grad.size()), alpha=-decayed_lr)
    else:
        # A complex number is two real coordinates: the sum is kept for each one.
        param, grad, state_sum = as_real(param), as_real(grad), as_real(state_sum)
        state_sum.addcmul_(grad, grad, value=1)  # G_t <- G_{t-1} + g_t^2
        std = state_sum.sqrt().add_(eps)  # sqrt(G_t) + eps
        param.addcdiv_(grad, std, value=-decayed_lr)  # theta_t <- theta - gamma_t g_t / (...)


class Adagrad(Optimizer):
    """Adagrad, with torch.optim.Adagrad's arguments, defaults, errors and state.

    The state of a parameter is ``step`` (a float scalar tensor) and ``sum``. Unlike most
    optimizers, it is created when the optimizer is built, for every parameter, and always
    from the ``initial_accumulator_value`` given to the constructor: a param group's own value
    is ignored, as in torch.optim.

    ``foreach``, ``fused`` and ``differentiable`` are checked and stored like torch's, and all
    select the one readable path below. With ``differentiable=True`` the step runs with autograd
    on, as in torch, but its in-place temporaries leave no graph that a backward pass can use.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_learning_rate(lr)
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        check_weight_decay(weight_decay)
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(
                f"Invalid initial_accumulator_value value: {initial_accumulator_value}"
            )
        check_epsilon(eps)
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)
        check_fused_options(fused, foreach, differentiable)
        for group in self.param_groups:
            for param in group["params"]:
                self._init_state(param, group, initial_accumulator_value)

    def _init_state(self, param: Tensor, group: dict, initial_accumulator_value: float) -> None:
        state = self.state[param]
        state["step"] = torch.zeros((), dtype=step_dtype(group), device=step_device(param, group))
        start = initial_accumulator_value
        if torch.is_complex(param):  # both the real and the imaginary part start at G_0
            start = complex(initial_accumulator_value, initial_accumulator_value)
        state["sum"] = torch.full_like(param, start, memory_format=torch.preserve_format)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # state dicts saved before these options existed
            group.setdefault("maximize", False)
        set_switch_defaults(self, ("foreach", "differentiable", "fused"))
        scalar_state_to_tensors(self)

    def share_memory(self) -> None:
        """Move every ``sum`` into shared memory, for Hogwild-style training across processes."""
        for group in self.param_groups:
            for param in group["params"]:
                self.state[param]["sum"].share_memory_()

    @grad_mode_of_differentiable
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Take one step for every parameter that has a gradient; return the closure's loss."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            params_with_grad = [p for p in group["params"] if p.grad is not None]
            for param in params_with_grad:
                if group["fused"]:
                    check_fused_param(param)
                if len(self.state[param]) == 0:  # a parameter added after construction
                    self._init_state(param, group, self.defaults["initial_accumulator_value"])
            if group["fused"] and any(p.grad.is_sparse for p in params_with_grad):
                raise RuntimeError("`fused` does not support sparse grad or complex param")
            check_switches_at_step(group, params_with_grad)
            for param in params_with_grad:
                state = self.state[param]
                state["step"] += 1
                adagrad_update(
                    param,
                    param.grad,
                    state["sum"],
                    step=state["step"].item(),
                    lr=as_scalar(group["lr"]),
                    lr_decay=group["lr_decay"],
                    weight_decay=group["weight_decay"],
                    eps=group["eps"],
                    maximize=group["maximize"],
                )
        return loss
