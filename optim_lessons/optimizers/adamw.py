r"""AdamW: Adam with decoupled weight decay.

Paper: I. Loshchilov and F. Hutter, "Decoupled Weight Decay Regularization" (ICLR 2019),
https://arxiv.org/abs/1711.05101 (Algorithm 2, "Adam with decoupled weight decay").

An L2 penalty added to the gradient goes through Adam's moments, so a weight with a large
$\hat v_t$ is barely decayed. AdamW takes the decay out of the gradient and shrinks the weight
directly, before the Adam step (learning rate $\gamma$, weight decay $\lambda$):

$$
\begin{aligned}
g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1})
    \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ with maximize}) \\
\theta_{t-1} &\leftarrow \theta_{t-1} - \gamma \lambda \theta_{t-1} \\
m_t &\leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
v_t &\leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
\hat m_t &\leftarrow m_t / (1 - \beta_1^t), \qquad
    \hat v_t \leftarrow v_t / (1 - \beta_2^t)
    \quad (\text{amsgrad: } v_t^{\max} \text{ in place of } v_t) \\
\theta_t &\leftarrow \theta_{t-1} - \gamma\, \hat m_t / \big(\sqrt{\hat v_t} + \epsilon\big)
\end{aligned}
$$

Everything but the decay line is Adam's step, so this module reuses ``adam_update`` from
``optim_lessons.optimizers.adam`` (with ``decoupled_weight_decay=True``).
As in torch.optim, ``AdamW`` is a subclass of ``Adam`` whose param groups always say
``decoupled_weight_decay=True``; only the default ``weight_decay`` differs (``1e-2``).

torch.optim versus the paper:

- The paper multiplies the decay by the schedule multiplier $\eta_t$ alone
  ($\theta \leftarrow \theta - \eta_t \lambda \theta$), whereas torch.optim multiplies it by the
  whole learning rate $\gamma$, so the decay per step is $\gamma\lambda$ and changes whenever
  $\gamma$ is changed.
- The ``amsgrad`` option (a running maximum of $v_t$) is not in the paper.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.optim.optimizer import ParamsT

from optim_lessons.optimizers.adam import Adam, adam_update

__all__ = ["AdamW", "adam_update"]


class AdamW(Adam):
    """AdamW, with torch.optim.AdamW's arguments, defaults, errors and state (those of Adam).

    ``foreach``, ``fused``, ``capturable`` and ``differentiable`` are checked and stored like
    torch's, and all select Adam's one readable path. With ``differentiable=True`` the step runs
    with autograd on, as in torch, but its in-place temporaries leave no graph that a backward
    pass can use.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # whatever a loaded state dict says, AdamW decouples
            group["decoupled_weight_decay"] = True
