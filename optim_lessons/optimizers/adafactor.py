r"""Adafactor: Adam-like second moments at a fraction of the memory, with relative step sizes.

Shazeer & Stern, *Adafactor: Adaptive Learning Rates with Sublinear Memory Cost*, ICML 2018
(arXiv:1804.04235), Algorithms 4 and 5 (with $\beta_1 = 0$).

Adam stores one second-moment number per weight. For an $n \times m$ matrix Adafactor
stores only $n + m$: the row means $R$ and column means $C$ of the squared
gradients, and rebuilds the full estimate as their outer product (the best rank-1 fit in the
sense of an I-divergence). Vectors keep an ordinary running average $V$. The step size is
*relative* to the size of the weights, and updates that are too large are scaled down:

$$
\begin{aligned}
\hat\beta_{2,t} &\leftarrow 1 - t^{c}
    && \text{(decay that grows towards 1; } c = \text{beta2\_decay}) \\
\rho_t &\leftarrow \min(\gamma,\ 1/\sqrt t)
    && \text{(relative step size)} \\
\alpha_t &\leftarrow \max(\epsilon_2,\ \mathrm{RMS}(\theta_{t-1}))\, \rho_t
    && \text{(absolute step size)} \\
\theta &\leftarrow (1 - \gamma\lambda)\, \theta_{t-1}
    && \text{(decoupled weight decay)} \\
R_t &\leftarrow \hat\beta_{2,t} R_{t-1}
    + (1 - \hat\beta_{2,t})\, \mathrm{mean}_{\text{cols}}(g_t^2)
    && \text{(row factor, matrices)} \\
C_t &\leftarrow \hat\beta_{2,t} C_{t-1}
    + (1 - \hat\beta_{2,t})\, \mathrm{mean}_{\text{rows}}(g_t^2)
    && \text{(column factor, matrices)} \\
\hat V_t &\leftarrow R_t C_t \,/\, \max(\mathrm{mean}(R_t),\ \epsilon_1)
    && \text{(rank-1 estimate, matrices)} \\
\hat V_t &\leftarrow \hat\beta_{2,t} \hat V_{t-1} + (1 - \hat\beta_{2,t})\, g_t^2
    && \text{(vectors and scalars)} \\
U_t &\leftarrow g_t \,/\, \max(\sqrt{\hat V_t},\ \epsilon_1)
    && \text{(normalized gradient)} \\
\hat U_t &\leftarrow U_t \,/\, \max(1,\ \mathrm{RMS}(U_t)/d)
    && \text{(update clipping)} \\
\theta_t &\leftarrow \theta - \alpha_t\, \hat U_t
    && \text{(step)}
\end{aligned}
$$

with $R_0 = C_0 = V_0 = 0$ and
$\mathrm{RMS}(x) = \lVert x\rVert_2/\sqrt{\mathrm{numel}(x)}$.
A tensor with more than two dimensions is factored over its last two, as a stack of matrices.
With ``maximize=True`` the gradient is negated first.

torch.optim versus the paper:

- The relative step size is capped by the learning rate $\gamma$ (default 0.01); the paper
  caps it at the constant 0.01.
- $\epsilon_1$ is not added to $g^2$ inside $R$ and $C$; it bounds the
  denominator $\mathrm{mean}(R)$ and $\sqrt{\hat V}$ from below instead, and defaults to
  the machine epsilon of the parameter's dtype rather than $10^{-30}$.
- $R$ and $C$ hold means where the paper has sums; after the division by
  $\mathrm{mean}(R)$ the estimate $\hat V$ is the same.
- ``weight_decay`` shrinks the weights by $1 - \gamma\lambda$ each step (decoupled, as in
  AdamW); the paper has no weight decay.
- There is no first moment: the paper's optional $\beta_1 > 0$ is not offered.
- $\alpha_t$ uses the RMS of the weights before the weight decay of the same step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT

from optim_lessons.distributed import sharded
from optim_lessons.optimizers._common import (
    as_scalar,
    evaluate_closure,
    scalar_dtype,
    set_switch_defaults,
)

__all__ = ["Adafactor", "adafactor_update"]


def _squared_mean(grad: Tensor, dim: int, like: Tensor | None = None) -> Tensor:
    """mean(g^2) along ``dim``, as a squared norm so that no temporary as large as g is made.

    ``grad`` may be the local piece of a sharded gradient ``like``: where ``dim`` is the
    dimension split over the ranks, the pieces' sums of squares are added up over the ranks
    before the division by the whole length."""
    if like is None or sharded.shard_dim(like) != dim % like.dim():
        return torch.linalg.vector_norm(grad, dim=dim, keepdim=True).square_().div_(grad.size(dim))
    sums = torch.linalg.vector_norm(grad, dim=dim, keepdim=True).square_()
    return sharded.all_sum(sums, like).div_(like.size(dim))


def _mean_over_rows(row_var: Tensor, like: Tensor) -> Tensor:
    """mean(R) over the rows (dimension -2), with the rows of a sharded ``like`` on every rank."""
    if sharded.shard_dim(like) != like.dim() - 2:
        return row_var.mean(dim=-2, keepdim=True)
    total = sharded.all_sum(row_var.sum(dim=-2, keepdim=True), like)
    return total.div_(like.size(-2))


def adafactor_update(
    param: Tensor,
    grad: Tensor,
    row_var: Tensor | None,
    col_var: Tensor | None,
    variance: Tensor | None,
    step: Tensor,
    *,
    lr: float | Tensor,
    beta2_decay: float,
    eps1: float,
    eps2: float,
    d: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """One Adafactor step for one parameter.

    A parameter with two or more dimensions passes ``row_var`` and ``col_var``; a vector or
    scalar passes ``variance`` (the others ``None``). Writes into ``param``, the given state
    tensors and ``step``; ``grad`` is only read.

    ``param`` and ``grad`` may be DTensors sharded over several ranks (FSDP2); the state then
    holds this rank's rows of $R$ (or its columns of $C$) and the whole other factor, as
    plain tensors. Three numbers of the step need the whole tensor, and are summed over the
    ranks: RMS(theta), mean(R) and RMS(U). The factor along the split dimension needs one sum per
    row or column. For an $n \times m$ matrix split by rows, a rank sends per step the
    all-reduce of $m + 3$ numbers (and of 2 for a vector), not the matrix.
    """
    whole = param
    param, grad = sharded.local(param), sharded.local(grad)
    if maximize:
        grad = -grad
    step += 1
    t = step.item()

    one_minus_beta2 = t**beta2_decay  # 1 - beta2_hat_t = t^tau
    rho = min(lr, 1 / (t**0.5))  # rho_t = min(lr, 1 / sqrt(t))
    rms_param = sharded.global_norm(whole).item() / (whole.numel() ** 0.5)  # RMS(theta)
    alpha = max(eps2, rms_param) * rho  # alpha_t
    if weight_decay != 0:
        param.mul_(1 - lr * weight_decay)  # theta = (1 - lr lambda) theta

    if grad.dim() > 1:
        row_var.lerp_(_squared_mean(grad, -1, whole), one_minus_beta2)  # R_t
        col_var.lerp_(_squared_mean(grad, -2, whole), one_minus_beta2)  # C_t
        var_estimate = row_var @ col_var  # R_t C_t (outer product)
        var_estimate.div_(_mean_over_rows(row_var, whole).clamp_(min=eps1))  # / mean(R_t)
    else:
        variance.lerp_(grad * grad, one_minus_beta2)  # V_t
        var_estimate = variance.clone()

    # U_t = g / max(sqrt(V), eps1), written as rsqrt(max(V, eps1^2)) * g.
    update = var_estimate.clamp_(min=eps1 * eps1).rsqrt_().mul_(grad)
    update_norm = sharded.global_norm(update, whole).item()
    clip = max(1.0, update_norm / ((whole.numel() ** 0.5) * d))  # max(1, RMS(U)/d)
    param.add_(update, alpha=-alpha / clip)  # theta_t = theta - alpha_t U_t / clip


class Adafactor(torch.optim.Optimizer):
    """Adafactor with torch.optim.Adafactor's hyperparameters, state and messages.

    ``foreach`` is checked and stored like torch's, and it selects the one readable path below.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {
            "lr": lr,
            "beta2_decay": beta2_decay,
            "eps": eps,
            "d": d,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        set_switch_defaults(self, ("foreach",))

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Update every parameter that has a gradient; return the closure's loss, if given."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            lr = as_scalar(group["lr"])
            eps1, eps2 = group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if torch.is_complex(p):
                    raise RuntimeError("Adafactor does not support complex parameters")
                if p.grad.is_sparse:
                    raise RuntimeError("Adafactor does not support sparse gradients")
                # Like torch.optim, the first parameter's dtype fixes the default eps1 for
                # the whole group.
                if eps1 is None:
                    eps1 = torch.finfo(p.dtype).eps
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.tensor(0.0, dtype=scalar_dtype())  # on the CPU
                    grad = sharded.local(p.grad)  # this rank's piece, if the gradient is sharded
                    if grad.dim() > 1:
                        row_shape, col_shape = list(grad.shape), list(grad.shape)
                        row_shape[-1], col_shape[-2] = 1, 1
                        state["row_var"] = grad.new_zeros(row_shape)  # one per row
                        state["col_var"] = grad.new_zeros(col_shape)  # one per column
                    else:
                        state["variance"] = torch.zeros_like(
                            grad, memory_format=torch.preserve_format
                        )
                adafactor_update(
                    p,
                    p.grad,
                    state.get("row_var"),
                    state.get("col_var"),
                    state.get("variance"),
                    state["step"],
                    lr=lr,
                    beta2_decay=group["beta2_decay"],
                    eps1=eps1,
                    eps2=eps2,
                    d=group["d"],
                    weight_decay=group["weight_decay"],
                    maximize=group["maximize"],
                )
        return loss
