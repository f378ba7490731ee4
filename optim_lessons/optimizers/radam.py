r"""RAdam: rectified Adam, which turns the adaptive step on only once its variance is tractable.

Paper: L. Liu, H. Jiang, P. He, W. Chen, X. Liu, J. Gao and J. Han, "On the Variance of the
Adaptive Learning Rate and Beyond" (ICLR 2020), https://arxiv.org/abs/1908.03265 (Algorithm 2).

In the first steps $v_t$ averages only a few squared gradients, so Adam's adaptive rate
$1/\sqrt{\hat v_t}$ has a huge variance. RAdam estimates the length $\rho_t$ of the simple moving
average that $v_t$ approximates; while it is short, it takes plain momentum steps, and after that
it multiplies the adaptive step by a rectification $r_t$ that removes the excess variance. With
learning rate $\gamma$, decay rates $\beta_1, \beta_2$, weight decay $\lambda$ and
$m_0 = v_0 = 0$:

$$
\begin{aligned}
g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1})
    \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ with maximize}) \\
g_t &\leftarrow g_t + \lambda \theta_{t-1}
    \quad \text{or, decoupled:} \quad \theta_{t-1} \leftarrow (1 - \gamma\lambda)\,\theta_{t-1} \\
m_t &\leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
v_t &\leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
\hat m_t &\leftarrow m_t / (1 - \beta_1^t) \\
\rho_\infty &\leftarrow 2 / (1 - \beta_2) - 1 \\
\rho_t &\leftarrow \rho_\infty - 2 t \beta_2^t / (1 - \beta_2^t) \\
\text{if } \rho_t > 5: \quad
    l_t &\leftarrow \sqrt{1 - \beta_2^t} \,/\, \big(\sqrt{v_t} + \epsilon\big) \\
    r_t &\leftarrow \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
                            {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}} \\
    \theta_t &\leftarrow \theta_{t-1} - \gamma\, \hat m_t\, l_t\, r_t \\
\text{else:} \quad
    \theta_t &\leftarrow \theta_{t-1} - \gamma\, \hat m_t
\end{aligned}
$$

A complex parameter is updated as a pair of real ones (its real and imaginary parts).

torch.optim versus the paper:

- The paper switches the adaptive step on when $\rho_t > 4$; torch.optim waits for
  $\rho_t > 5$, close to the authors' released code (which tests $\rho_t \ge 5$).
- The paper's adaptive rate is $l_t = \sqrt{(1 - \beta_2^t) / v_t}$ with no $\epsilon$;
  torch.optim, like the released code, adds $\epsilon$ to $\sqrt{v_t}$ before the bias
  correction, unlike its Adam, which adds it to $\sqrt{\hat v_t}$ after.
- Weight decay is not in the paper: by default it is an L2 penalty added to the gradient, and
  with ``decoupled_weight_decay=True`` it shrinks $\theta$ directly by $\gamma\lambda$.
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

__all__ = ["RAdam", "radam_update"]


def radam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    *,
    step: float,
    lr: float | Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
    decoupled_weight_decay: bool,
) -> None:
    """One RAdam step on one parameter, in place.

    ``param``, ``exp_avg`` ($m$) and ``exp_avg_sq`` ($v$) are updated in place; ``grad`` is
    not. ``step`` is $t$, already counting this step.
    """
    if maximize:
        grad = -grad  # g_t <- -grad f: climb instead of descend
    # A complex number is two real coordinates: the moments are kept for each one.
    param, grad = as_real(param), as_real(grad)
    exp_avg, exp_avg_sq = as_real(exp_avg), as_real(exp_avg_sq)
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)  # theta <- (1 - gamma lambda) theta
        else:
            grad = grad.add(param, alpha=weight_decay)  # g_t <- g_t + lambda theta_{t-1}

    exp_avg.lerp_(grad, 1 - beta1)  # m_t <- beta1 m_{t-1} + (1 - beta1) g_t
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v_t <- beta2 v + (1-beta2) g^2
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    bias_corrected_exp_avg = exp_avg / bias_correction1  # m_hat_t

    rho_inf = 2 / (1 - beta2) - 1  # rho_infinity: the longest moving average v_t can stand for
    rho_t = rho_inf - 2 * step * beta2**step / bias_correction2  # rho_t: the one it stands for now
    if rho_t > 5.0:
        adaptive_lr = bias_correction2**0.5 / exp_avg_sq.sqrt().add_(eps)  # l_t
        rectification = (
            (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        ) ** 0.5  # r_t
        # theta_t <- theta_{t-1} - gamma m_hat_t l_t r_t
        param.add_(bias_corrected_exp_avg * lr * adaptive_lr * rectification, alpha=-1.0)
    else:  # too few squared gradients averaged yet: a plain momentum step
        param.add_(bias_corrected_exp_avg * lr, alpha=-1.0)  # theta_t <- theta - gamma m_hat_t


class RAdam(Optimizer):
    """RAdam, with torch.optim.RAdam's arguments, defaults, errors and state.

    The state of a parameter is ``step`` (a float scalar tensor), ``exp_avg`` and ``exp_avg_sq``.

    ``foreach``, ``capturable`` and ``differentiable`` are checked and stored like torch's, and
    all select the one readable path below. With ``differentiable=True`` autograd records the
    step, as in torch.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
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
            "capturable": capturable,
            "differentiable": differentiable,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # state dicts saved before these options existed
            group.setdefault("maximize", False)
            group.setdefault("decoupled_weight_decay", False)
        set_switch_defaults(self, ("foreach", "capturable", "differentiable"))
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
                    raise RuntimeError("RAdam does not support sparse gradients")
                state = self.state[param]
                if len(state) == 0:
                    state["step"] = torch.zeros(
                        (), dtype=scalar_dtype(), device=step_device(param, group)
                    )
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(
                        param, memory_format=torch.preserve_format
                    )
            check_switches_at_step(group, params_with_grad)
            beta1, beta2 = group["betas"]
            for param in params_with_grad:
                state = self.state[param]
                state["step"] += 1
                radam_update(
                    param,
                    param.grad,
                    state["exp_avg"],
                    state["exp_avg_sq"],
                    step=state["step"].item(),
                    lr=as_scalar(group["lr"]),
                    beta1=beta1,
                    beta2=beta2,
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                    maximize=group["maximize"],
                    decoupled_weight_decay=group["decoupled_weight_decay"],
                )
        return loss
