r"""NAdam: Adam with Nesterov momentum, and NAdamW with decoupled weight decay.

Paper: T. Dozat, "Incorporating Nesterov Momentum into Adam" (ICLR 2016 workshop),
https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ. Decoupled weight decay: I. Loshchilov and
F. Hutter, "Decoupled Weight Decay Regularization" (ICLR 2019), https://arxiv.org/abs/1711.05101.

Nesterov momentum looks one step ahead: the step uses next step's momentum coefficient on the
moment, plus this step's coefficient on the fresh gradient. NAdam also warms the momentum up
with the schedule $\mu_t = \beta_1 (1 - \tfrac12 \, 0.96^{t\psi})$, where $\psi$ is the momentum
decay. With learning rate $\gamma$, weight decay $\lambda$ and $m_0 = v_0 = 0$:

$$
\begin{aligned}
g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1})
    \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ with maximize}) \\
g_t &\leftarrow g_t + \lambda \theta_{t-1}
    \quad \text{or, decoupled:} \quad \theta_{t-1} \leftarrow (1 - \gamma\lambda)\,\theta_{t-1} \\
\mu_t &\leftarrow \beta_1 \big(1 - \tfrac12 \, 0.96^{t\psi}\big), \qquad
    \mu_{t+1} \leftarrow \beta_1 \big(1 - \tfrac12 \, 0.96^{(t+1)\psi}\big) \\
m_t &\leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
v_t &\leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
\hat m_t &\leftarrow \frac{\mu_{t+1} m_t}{1 - \prod_{i=1}^{t+1} \mu_i}
    + \frac{(1 - \mu_t) g_t}{1 - \prod_{i=1}^{t} \mu_i} \\
\hat v_t &\leftarrow v_t / (1 - \beta_2^t) \\
\theta_t &\leftarrow \theta_{t-1} - \gamma\, \hat m_t / \big(\sqrt{\hat v_t} + \epsilon\big)
\end{aligned}
$$

A complex parameter is updated as a pair of real ones (its real and imaginary parts).

torch.optim versus the paper:

- The schedule, the two momentum products and the placement of $\epsilon$ follow the paper
  (the paper's $0.96^{t/250}$ is $\psi = 0.004$, torch.optim's default ``momentum_decay``).
- Weight decay is not in the paper: by default it is an L2 penalty added to the gradient, and
  with ``decoupled_weight_decay=True`` it shrinks $\theta$ directly by $\gamma\lambda$ (NAdamW).
- torch.optim keeps the running product $\prod_i \mu_i$ as a scalar tensor in the default
  dtype (float32 unless changed), even for float64 parameters, so the product carries float32
  rounding that this module reproduces.
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

__all__ = ["NAdam", "nadam_update"]


def nadam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    mu_product: Tensor,
    *,
    step: float,
    lr: float | Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    momentum_decay: float,
    maximize: bool,
    decoupled_weight_decay: bool,
) -> None:
    r"""One NAdam step on one parameter, in place.

    ``param``, ``exp_avg`` ($m$), ``exp_avg_sq`` ($v$) and ``mu_product`` (the scalar tensor
    $\prod_{i<t} \mu_i$, which becomes $\prod_{i \le t} \mu_i$) are updated in place; ``grad``
    is not. ``step`` is $t$, already counting this step.
    """
    if maximize:
        grad = -grad  # g_t <- -grad f: climb instead of descend
    # A complex number is two real coordinates: the moments are kept for each one.
    param, grad = as_real(param), as_real(grad)
    exp_avg, exp_avg_sq = as_real(exp_avg), as_real(exp_avg_sq)
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)  # theta <- (1 - gamma lambda) theta  (NAdamW)
        else:
            grad = grad.add(param, alpha=weight_decay)  # g_t <- g_t + lambda theta_{t-1}

    mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))  # mu_t
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))  # mu_{t+1}
    mu_product *= mu  # prod_{i<=t} mu_i, rounded to the dtype of the stored product
    product = mu_product.item()
    product_next = product * mu_next  # prod_{i<=t+1} mu_i

    exp_avg.lerp_(grad, 1 - beta1)  # m_t <- beta1 m_{t-1} + (1 - beta1) g_t
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v_t <- beta2 v + (1-beta2) g^2
    bias_correction2 = 1 - beta2**step
    denominator = exp_avg_sq.div(bias_correction2).sqrt().add_(eps)  # sqrt(v_hat_t) + eps
    # theta_t <- theta_{t-1} - gamma m_hat_t / (sqrt(v_hat_t) + eps), m_hat_t in its two parts:
    param.addcdiv_(grad, denominator, value=-lr * (1.0 - mu) / (1.0 - product))  # the gradient
    param.addcdiv_(exp_avg, denominator, value=-lr * mu_next / (1.0 - product_next))  # momentum


class NAdam(Optimizer):
    """NAdam, with torch.optim.NAdam's arguments, defaults, errors and state.

    The state of a parameter is ``step`` and ``mu_product`` (float scalar tensors), ``exp_avg``
    and ``exp_avg_sq``.

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
        momentum_decay: float = 4e-3,
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
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # state dicts saved before these options existed
            group.setdefault("maximize", False)
            group.setdefault("decoupled_weight_decay", False)
        set_switch_defaults(self, ("foreach", "capturable", "differentiable"))
        scalar_state_to_tensors(self, ("step", "mu_product"))

    @grad_mode_of_differentiable
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Take one step for every parameter that has a gradient; return the closure's loss."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            # First every parameter of the group is checked and given its state, then updated.
            params_with_grad = [p for p in group["params"] if p.grad is not None]
            for param in params_with_grad:
                if param.grad.is_sparse:
                    raise RuntimeError("NAdam does not support sparse gradients")
                state = self.state[param]
                if len(state) == 0:
                    where = step_device(param, group)
                    state["step"] = torch.zeros((), dtype=scalar_dtype(), device=where)
                    state["mu_product"] = torch.ones((), dtype=scalar_dtype(), device=where)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(
                        param, memory_format=torch.preserve_format
                    )
            check_switches_at_step(
                group,
                params_with_grad,
                what="params, mu_products and state_steps",
                what_foreach="params, mu_products, and state_steps",
            )
            beta1, beta2 = group["betas"]
            for param in params_with_grad:
                state = self.state[param]
                state["step"] += 1
                nadam_update(
                    param,
                    param.grad,
                    state["exp_avg"],
                    state["exp_avg_sq"],
                    state["mu_product"],
                    step=state["step"].item(),
                    lr=as_scalar(group["lr"]),
                    beta1=beta1,
                    beta2=beta2,
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                    momentum_decay=group["momentum_decay"],
                    maximize=group["maximize"],
                    decoupled_weight_decay=group["decoupled_weight_decay"],
                )
        return loss
