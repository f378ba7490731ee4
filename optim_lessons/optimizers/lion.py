r"""Lion: step by the sign of an interpolated momentum.

Chen, Liang, Huang, Real, Wang, Pham, Dong, Luong, Hsieh, Lu & Le, *Symbolic Discovery of
Optimization Algorithms*, NeurIPS 2023 (arXiv:2302.06675), Algorithm 2.

Lion was found by a program search over update rules. It keeps one buffer, the momentum
$m$, and moves every weight by the same amount $\gamma$, in the direction of the sign
of a blend of the momentum and the new gradient. The blend uses $\beta_1$, the momentum
itself the slower $\beta_2$:

$$
\begin{aligned}
\theta &\leftarrow (1 - \gamma\lambda)\, \theta_{t-1}
    && \text{(decoupled weight decay)} \\
c_t &\leftarrow \beta_1 m_{t-1} + (1 - \beta_1)\, g_t
    && \text{(blend)} \\
\theta_t &\leftarrow \theta - \gamma\, \operatorname{sign}(c_t)
    && \text{(step)} \\
m_t &\leftarrow \beta_2 m_{t-1} + (1 - \beta_2)\, g_t
    && \text{(momentum)}
\end{aligned}
$$

with $m_0 = 0$. Every coordinate moves by exactly $\gamma$ (or not at all where
$c_t = 0$), so Lion wants a learning rate 3-10 times smaller than AdamW's.

Lion is not part of torch.optim. This class follows the ``lion-pytorch`` package (its
``Lion``, with the same constructor minus the Triton switch ``use_triton``), and the tests check
it step by step against that package.

lion-pytorch versus the paper:

- The weight decay is applied as $(1-\gamma\lambda)\theta$ before the sign step, which is
  the paper's $\theta - \gamma(\operatorname{sign}(c) + \lambda\theta)$ split into two moves.
- ``decoupled_weight_decay=True`` divides $\lambda$ by the initial learning rate, so the
  decay per step is $\lambda\gamma/\gamma_0$: it follows a schedule but not the scale of
  $\gamma$; the paper has no such option.
- A complex weight moves by $\gamma\, c/|c|$ (``torch.sgn``), a unit step in the complex
  plane; the paper only treats real weights.
- Invalid arguments raise ``ValueError`` here; lion-pytorch checks them with ``assert`` (an
  ``AssertionError``, skipped under ``python -O``). Both reject the same values.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT

from ._common import as_scalar, evaluate_closure

__all__ = ["Lion", "lion_update"]


def lion_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    *,
    lr: float | Tensor,
    weight_decay: float | Tensor,
    beta1: float,
    beta2: float,
) -> None:
    """One Lion step for one parameter.

    Writes into ``param`` and ``exp_avg`` (the momentum); ``grad`` is only read.
    """
    param.mul_(1 - lr * weight_decay)  # theta = (1 - lr lambda) theta
    blend = exp_avg.mul(beta1).add(grad, alpha=1 - beta1)  # c_t = b1 m + (1 - b1) g
    param.add_(blend.sgn_(), alpha=-lr)  # theta_t = theta - lr sign(c_t)
    exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)  # m_t = b2 m + (1 - b2) g


class Lion(torch.optim.Optimizer):
    """Lion with lion-pytorch's hyperparameters, defaults and state."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        decoupled_weight_decay: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not lr > 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        for index, beta in enumerate(betas):
            if not 0.0 <= beta <= 1.0:
                raise ValueError(f"Invalid beta parameter at index {index}: {beta}")
        # Like lion-pytorch, these two live on the optimizer, not in the param groups.
        self._init_lr = lr
        self.decoupled_wd = decoupled_weight_decay
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Update every parameter that has a gradient; return the closure's loss, if given."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            lr = as_scalar(group["lr"])
            beta1, beta2 = group["betas"]
            weight_decay = group["weight_decay"]
            if self.decoupled_wd:
                weight_decay = weight_decay / self._init_lr  # decay lr/lr_0 * lambda per step
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["exp_avg"] = torch.zeros_like(p)
                lion_update(
                    p,
                    p.grad,
                    state["exp_avg"],
                    lr=lr,
                    weight_decay=weight_decay,
                    beta1=beta1,
                    beta2=beta2,
                )
        return loss
