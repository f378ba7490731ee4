r"""SparseAdam: a lazy Adam for sparse gradients, which touches only the rows a gradient holds.

Paper: D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015),
https://arxiv.org/abs/1412.6980. The lazy variant, which updates the moments only where the
gradient is present, is the one embedding tables commonly use (``nn.Embedding(sparse=True)``).

An embedding lookup produces a gradient for the few rows it read. Adam would still decay the
moments of every other row and move them; SparseAdam leaves them alone. For the set $R_t$ of rows
in the gradient, with learning rate $\gamma$, decay rates $\beta_1, \beta_2$ and $m_0 = v_0 = 0$:

$$
\begin{aligned}
g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1})
    \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ with maximize}), \text{ sparse} \\
m_t[R_t] &\leftarrow \beta_1 m_{t-1}[R_t] + (1 - \beta_1)\, g_t[R_t] \\
v_t[R_t] &\leftarrow \beta_2 v_{t-1}[R_t] + (1 - \beta_2)\, g_t[R_t]^2 \\
\alpha_t &\leftarrow \gamma \sqrt{1 - \beta_2^t} \,/\, (1 - \beta_1^t) \\
\theta_t[R_t] &\leftarrow \theta_{t-1}[R_t]
    - \alpha_t\, m_t[R_t] / \big(\sqrt{v_t[R_t]} + \epsilon\big)
\end{aligned}
$$

Rows outside $R_t$ keep their $m$, $v$ and $\theta$. The step count $t$ counts the optimizer's
steps for the whole parameter, not the times a given row was seen.

torch.optim versus the paper:

- Adam's paper updates every coordinate at every step; SparseAdam updates only the rows the
  gradient holds, so a row's moments decay only on the steps it is seen, while the bias
  correction still uses the parameter's global step count.
- The step folds both bias corrections into $\alpha_t$ and adds $\epsilon$ to the uncorrected
  $\sqrt{v_t}$, the paper's faster ordering (its $\hat\epsilon$), not Algorithm 1's that
  torch.optim.Adam uses, so for the same $\epsilon$ the two differ slightly.
- There is no weight decay, and the learning rate and $\epsilon$ must be strictly positive.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, ParamsT

from optim_lessons.optimizers._common import (
    as_scalar,
    check_beta_ranges,
    evaluate_closure,
)

__all__ = ["SparseAdam", "sparse_adam_update"]


def sparse_adam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    *,
    step: int,
    lr: float | Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    maximize: bool,
) -> None:
    """One SparseAdam step on one dense parameter with a sparse gradient, in place.

    ``param``, ``exp_avg`` ($m$) and ``exp_avg_sq`` ($v$) change only at the rows the
    gradient holds; ``grad`` is not changed. ``step`` is $t$, already counting this step.
    """
    if maximize:
        grad = -grad  # g_t <- -grad f: climb instead of descend
    grad = grad.coalesce()  # one entry per row: the update is not linear in the gradient
    rows, grad_values = grad.indices(), grad.values()
    if grad_values.numel() == 0:
        return  # an empty gradient moves nothing

    def on_rows(values: Tensor) -> Tensor:
        """A sparse tensor holding ``values`` at the gradient's rows."""
        # The rows come from a coalesced gradient, so the invariants hold by construction.
        return torch.sparse_coo_tensor(
            rows, values, grad.size(), is_coalesced=True, check_invariants=False
        )

    # m_t[R] <- beta1 m[R] + (1 - beta1) g[R], written as m[R] += (1 - beta1)(g[R] - m[R])
    old_exp_avg = exp_avg.sparse_mask(grad).values()
    exp_avg_change = grad_values.sub(old_exp_avg).mul_(1 - beta1)
    exp_avg.add_(on_rows(exp_avg_change))
    # v_t[R] <- beta2 v[R] + (1 - beta2) g[R]^2, written the same way
    old_exp_avg_sq = exp_avg_sq.sparse_mask(grad).values()
    exp_avg_sq_change = grad_values.pow(2).sub_(old_exp_avg_sq).mul_(1 - beta2)
    exp_avg_sq.add_(on_rows(exp_avg_sq_change))

    new_exp_avg = exp_avg_change.add_(old_exp_avg)  # m_t[R]
    denominator = exp_avg_sq_change.add_(old_exp_avg_sq).sqrt_().add_(eps)  # sqrt(v_t[R]) + eps
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr * math.sqrt(bias_correction2) / bias_correction1  # alpha_t
    # theta_t[R] <- theta_{t-1}[R] - alpha_t m_t[R] / (sqrt(v_t[R]) + eps)
    param.add_(on_rows(-step_size * new_exp_avg.div_(denominator)))


class SparseAdam(Optimizer):
    """SparseAdam, with torch.optim.SparseAdam's arguments, defaults, errors and state.

    The state of a parameter is ``step`` (a Python int, unlike Adam's tensor), ``exp_avg`` and
    ``exp_avg_sq``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 < lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        check_beta_ranges(betas)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "maximize": maximize}
        super().__init__(params, defaults)

        # [group index, index in the group] of every parameter SparseAdam cannot handle.
        sparse_params, complex_params = [], []
        for group_index, group in enumerate(self.param_groups):
            for param_index, param in enumerate(group["params"]):
                if param.is_sparse:
                    sparse_params.append([group_index, param_index])
                if param.is_complex():
                    complex_params.append([group_index, param_index])
        if sparse_params:
            raise ValueError(
                f"Sparse params at indices {sparse_params}: "
                "SparseAdam requires dense parameter tensors"
            )
        if complex_params:
            raise ValueError(
                f"Complex params at indices {complex_params}: "
                "SparseAdam does not support complex parameters"
            )

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Take one step for every parameter that has a gradient; return the closure's loss."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            # As in torch.optim, each parameter's count goes up while the group is checked, so a
            # dense gradient further down the group stops the step after earlier counts moved.
            params_with_grad = []
            for param in group["params"]:
                if param.grad is None:
                    continue
                params_with_grad.append(param)
                if not param.grad.is_sparse:
                    raise RuntimeError(
                        "SparseAdam does not support dense gradients, please consider Adam instead"
                    )
                state = self.state[param]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(
                        param, memory_format=torch.preserve_format
                    )
                state["step"] += 1
            beta1, beta2 = group["betas"]
            for param in params_with_grad:
                state = self.state[param]
                sparse_adam_update(
                    param,
                    param.grad,
                    state["exp_avg"],
                    state["exp_avg_sq"],
                    step=state["step"],
                    lr=as_scalar(group["lr"]),
                    beta1=beta1,
                    beta2=beta2,
                    eps=group["eps"],
                    maximize=group.get("maximize", False),  # absent from older state dicts
                )
        return loss
