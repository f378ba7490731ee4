r"""Adam: adaptive moment estimation, with the AMSGrad variant and optional decoupled weight decay.

Paper: D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015),
https://arxiv.org/abs/1412.6980 (Algorithm 1). AMSGrad: S. J. Reddi, S. Kale and S. Kumar,
"On the Convergence of Adam and Beyond" (ICLR 2018), https://openreview.net/forum?id=ryQu7f-RZ.

With learning rate $\gamma$, decay rates $\beta_1, \beta_2$, weight decay $\lambda$ and
$m_0 = v_0 = v_0^{\max} = 0$, step $t$ reads:

$$
\begin{aligned}
g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1})
    \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ with maximize}) \\
g_t &\leftarrow g_t + \lambda \theta_{t-1}
    \quad \text{or, decoupled:} \quad \theta_{t-1} \leftarrow (1 - \gamma\lambda)\,\theta_{t-1} \\
m_t &\leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
v_t &\leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
\hat m_t &\leftarrow m_t / (1 - \beta_1^t) \\
\hat v_t &\leftarrow v_t / (1 - \beta_2^t)
    \quad \text{or, with amsgrad:} \quad
    v_t^{\max} \leftarrow \max(v_{t-1}^{\max}, v_t), \;
    \hat v_t \leftarrow v_t^{\max} / (1 - \beta_2^t) \\
\theta_t &\leftarrow \theta_{t-1} - \gamma\, \hat m_t / \big(\sqrt{\hat v_t} + \epsilon\big)
\end{aligned}
$$

A complex parameter is updated as a pair of real ones (its real and imaginary parts), so
$g_t^2$ squares each part rather than taking $|g_t|^2$.

torch.optim versus the paper:

- The step follows Algorithm 1 exactly, with $\epsilon$ added to $\sqrt{\hat v_t}$ after the bias
  correction, not the paper's faster variant that adds $\hat\epsilon$ to $\sqrt{v_t}$ before it.
- Weight decay is not in the paper: by default it is an L2 penalty added to the gradient (so it
  passes through $m_t$ and $v_t$), and with ``decoupled_weight_decay=True`` it shrinks
  $\theta$ directly by $\gamma\lambda$, which is AdamW.
- With ``amsgrad=True`` the running maximum $v_t^{\max}$ is still divided by $1 - \beta_2^t$,
  whereas Reddi et al.'s AMSGrad uses no bias correction at all.
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

__all__ = ["Adam", "adam_update"]


def adam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Tensor | None,
    *,
    step: float,
    lr: float | Tensor,
    beta1: float | Tensor,
    beta2: float | Tensor,
    eps: float,
    weight_decay: float,
    maximize: bool,
    decoupled_weight_decay: bool,
) -> None:
    r"""One Adam step on one parameter, in place.

    ``param``, ``exp_avg`` ($m$), ``exp_avg_sq`` ($v$) and, for AMSGrad, ``max_exp_avg_sq``
    ($v^{\max}$; pass ``None`` without AMSGrad) are updated in place; ``grad`` is not. ``step``
    is $t$, already counting this step. ``lr``, ``beta1`` and ``beta2`` may be 0-dim tensors.
    """
    if maximize:
        grad = -grad  # g_t <- -grad f: climb instead of descend
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)  # theta <- (1 - gamma lambda) theta  (AdamW)
        else:
            grad = grad.add(param, alpha=weight_decay)  # g_t <- g_t + lambda theta_{t-1}
    # A complex number is two real coordinates: the moments are kept for each one.
    param, grad = as_real(param), as_real(grad)
    exp_avg, exp_avg_sq = as_real(exp_avg), as_real(exp_avg_sq)
    if isinstance(beta1, Tensor):  # a tensor beta1 meets the moment on its device, in its dtype
        beta1_here = beta1.to(device=param.device, dtype=param.dtype)
    else:
        beta1_here = beta1

    exp_avg.lerp_(grad, 1 - beta1_here)  # m_t <- beta1 m_{t-1} + (1 - beta1) g_t
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v_t <- beta2 v + (1-beta2) g^2

    bias_correction1 = 1 - beta1**step  # m_hat_t = m_t / (1 - beta1^t)
    bias_correction2 = 1 - beta2**step  # v_hat_t = v_t / (1 - beta2^t)
    if max_exp_avg_sq is not None:
        max_exp_avg_sq = as_real(max_exp_avg_sq)
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)  # v_max <- max(v_max, v_t)
        second_moment = max_exp_avg_sq
    else:
        second_moment = exp_avg_sq
    denominator = (second_moment.sqrt() / bias_correction2**0.5).add_(eps)  # sqrt(v_hat) + eps
    step_size = lr / bias_correction1
    param.addcdiv_(exp_avg, denominator, value=-step_size)  # theta -= gamma m_hat / (...)


class Adam(Optimizer):
    """Adam, with torch.optim.Adam's arguments, defaults, errors and state.

    The state of a parameter is ``step`` (a float scalar tensor on the CPU, or beside the
    parameter with ``capturable`` or ``fused``), ``exp_avg``, ``exp_avg_sq`` and, with
    ``amsgrad=True``, ``max_exp_avg_sq``.

    ``foreach``, ``fused``, ``capturable`` and ``differentiable`` are checked and stored like
    torch's, and all select the one readable path below. With ``differentiable=True`` the step
    runs with autograd on, as in torch, but its in-place temporaries leave no graph that a
    backward pass can use.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and foreach and not capturable:
            raise ValueError(
                "lr as a Tensor is not supported for capturable=False and foreach=True"
            )
        check_learning_rate(lr)
        check_epsilon(eps)
        # The range checks come before the type and size checks, as in torch.optim.Adam.
        check_beta_ranges(betas)
        check_weight_decay(weight_decay)
        if not (
            (isinstance(betas[0], float) and isinstance(betas[1], float))
            or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))
        ):
            raise ValueError("betas must be either both floats or both Tensors")
        for index, beta in enumerate(betas):
            if isinstance(beta, Tensor):
                if foreach and not capturable:
                    raise ValueError(
                        f"betas[{index}] as a Tensor is not supported for capturable=False and "
                        "foreach=True"
                    )
                if beta.numel() != 1:
                    raise ValueError(f"Tensor betas[{index}] must be 1-element")
        defaults = {
            "lr": lr,
            "betas": (as_scalar(betas[0]), as_scalar(betas[1])),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)
        check_fused_options(fused, foreach, differentiable)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # state dicts saved before these options existed
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("decoupled_weight_decay", False)
        set_switch_defaults(self, ("foreach", "capturable", "differentiable", "fused"))
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
                    raise RuntimeError(
                        "Adam does not support sparse gradients, please consider SparseAdam instead"
                    )
                state = self.state[param]
                if len(state) == 0:
                    if group["fused"]:
                        check_fused_param(param)
                    state["step"] = torch.zeros(
                        (), dtype=step_dtype(group), device=step_device(param, group)
                    )
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(
                        param, memory_format=torch.preserve_format
                    )
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(
                            param, memory_format=torch.preserve_format
                        )
            if group["foreach"] and isinstance(group["lr"], Tensor) and not group["capturable"]:
                raise RuntimeError(
                    "lr as a Tensor is not supported for capturable=False and foreach=True"
                )
            check_switches_at_step(group, params_with_grad, capturable_before_autograd=True)
            beta1, beta2 = group["betas"]
            for param in params_with_grad:
                state = self.state[param]
                state["step"] += 1
                adam_update(
                    param,
                    param.grad,
                    state["exp_avg"],
                    state["exp_avg_sq"],
                    state["max_exp_avg_sq"] if group["amsgrad"] else None,
                    step=state["step"].item(),
                    lr=as_scalar(group["lr"]),
                    beta1=as_scalar(beta1),
                    beta2=as_scalar(beta2),
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                    maximize=group["maximize"],
                    decoupled_weight_decay=group["decoupled_weight_decay"],
                )
        return loss
