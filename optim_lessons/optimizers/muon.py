r"""Muon: momentum, then replace the update matrix by the nearest orthogonal matrix.

Jordan, Jin, Boza, You, Cesista, Newhouse & Bernstein, *Muon: An optimizer for hidden layers in
neural networks*, 2024 (https://kellerjordan.github.io/posts/muon/); the ``match_rms_adamw``
scaling is from Liu et al., *Muon is Scalable for LLM Training*, 2025 (arXiv:2502.16982).

The momentum of a weight matrix is usually dominated by a few directions. Muon keeps the
directions but sets every singular value to (about) one: if $B = U\Sigma V^\top$, it steps
along $UV^\top$, the orthogonal matrix closest to $B$. An SVD would be too slow, so
a few Newton-Schulz iterations of an odd quintic polynomial push the singular values of the
normalized matrix towards one:

$$
\begin{aligned}
B_t &\leftarrow \mu B_{t-1} + (1 - \mu)\, g_t
    && \text{(momentum, as a moving average)} \\
\tilde B_t &\leftarrow (1 - \mu)\, g_t + \mu B_t
    \ \text{(nesterov)}, \quad B_t \ \text{(otherwise)}
    && \text{(what gets orthogonalized)} \\
X_0 &\leftarrow \tilde B_t / \max(\lVert \tilde B_t \rVert_F,\ \epsilon)
    && \text{(singular values into } [0, 1]) \\
X_{k+1} &\leftarrow a X_k + (b A_k + c A_k^2)\, X_k, \quad A_k = X_k X_k^\top
    && \text{(Newton-Schulz, } k < \text{ns\_steps}) \\
\theta &\leftarrow (1 - \gamma\lambda)\, \theta_{t-1}
    && \text{(decoupled weight decay)} \\
\theta_t &\leftarrow \theta - \gamma' X_{\text{ns\_steps}}
    && \text{(step with the adjusted learning rate)}
\end{aligned}
$$

with $B_0 = 0$, $(a, b, c) = (3.4445, -4.7750, 2.0315)$ and, for an
$A \times B$ weight, $\gamma' = \gamma\sqrt{\max(1, A/B)}$ (``"original"``),
$0.2\,\gamma\sqrt{\max(A, B)}$ (``"match_rms_adamw"``) or $\gamma\sqrt{A/B}$
(``"spectral_unclamped"``). The iteration runs in bfloat16, on the transpose when the matrix is
taller than wide (so that $A_k$ is the smaller Gram matrix).

torch.optim versus the paper:

- The momentum buffer is a moving average, $\mu B + (1-\mu) g$, where the post sums
  $\mu B + g$; both buffers, and both Nesterov blends, differ only by the factor
  $1-\mu$, which the normalization removes (up to $\epsilon$).
- The matrix is divided by $\max(\lVert\cdot\rVert_F, \epsilon)$; the post divides by
  $\lVert\cdot\rVert_F + \epsilon$.
- Weight decay is on by default ($\lambda = 0.1$), decoupled and scaled by the unadjusted
  learning rate; the post's code defaults to none.
- The default learning rate is $10^{-3}$; the post's code uses 0.02.
- Only 2-D parameters are accepted; the post flattens convolution filters into matrices.
- torch.optim's own docstring writes the summed momentum $\mu B + g$, but its code, and
  this module, use the moving average.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT

from optim_lessons.distributed import sharded

from ._common import as_scalar, evaluate_closure

__all__ = ["Muon", "adjusted_learning_rate", "muon_update", "zeropower_via_newton_schulz"]

#: The quintic's coefficients from the post: they maximize the slope at zero.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
ADJUST_LR_FNS = ("original", "match_rms_adamw", "spectral_unclamped")


def zeropower_via_newton_schulz(
    grad: Tensor,
    ns_coefficients: tuple[float, float, float],
    ns_steps: int,
    eps: float,
    dtype: torch.dtype = torch.bfloat16,
) -> Tensor:
    """An approximately orthogonal matrix with the singular vectors of ``grad``.

    The singular values come out near one, not exactly one: with the default coefficients
    and five steps, those above a twentieth of the largest land roughly between 0.7 and 1.2,
    while much smaller ones stay small. That is cheaper than an SVD and trains as well.
    Returns a new matrix in ``dtype`` (bfloat16, as torch's Muon computes it; float32 shows
    what the low precision costs) and leaves ``grad`` untouched.
    """
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if len(grad.shape) != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = ns_coefficients
    tall = grad.size(0) > grad.size(1)
    x = grad.to(dtype)
    if tall:
        x = x.T  # work with the smaller Gram matrix X X^T
    x = x / x.norm().clamp(min=eps)  # X_0: Frobenius norm 1, so every singular value <= 1
    for _ in range(ns_steps):
        gram = x @ x.T  # A = X X^T
        polynomial = torch.addmm(gram, gram, gram, beta=b, alpha=c)  # b A + c A^2
        x = torch.addmm(x, polynomial, x, beta=a)  # X = a X + (b A + c A^2) X
    return x.T if tall else x


def adjusted_learning_rate(
    lr: float | Tensor, adjust_lr_fn: str | None, shape: torch.Size
) -> float | Tensor:
    """The learning rate scaled for an ``A x B`` weight so that updates of differently shaped
    matrices have comparable size."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))  # Keller Jordan's code
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))  # update RMS like AdamW's (Moonshot)
    elif adjust_lr_fn == "spectral_unclamped":
        ratio = math.sqrt(rows / cols)  # Bernstein's spectral scaling
    else:
        ratio = 1.0
    return lr * ratio


def muon_update(
    param: Tensor,
    grad: Tensor,
    momentum_buffer: Tensor,
    *,
    lr: float | Tensor,
    weight_decay: float,
    momentum: float,
    nesterov: bool,
    ns_coefficients: tuple[float, float, float],
    ns_steps: int,
    eps: float,
    adjust_lr_fn: str | None,
) -> None:
    """One Muon step for one weight matrix.

    Writes into ``param`` and ``momentum_buffer``; ``grad`` is only read.

    ``param``, ``grad`` and ``momentum_buffer`` may be DTensors sharded over several ranks
    (FSDP2). The momentum is element-wise and stays sharded, but Newton-Schulz multiplies whole
    matrices: orthogonalizing each rank's block of rows on its own would give a different (and
    wrong) update. So every rank gathers the whole matrix $\tilde B_t$, runs the iteration
    on it, and keeps its own rows of the result. Per step and per $n \times m$ matrix over
    $N$ ranks, a rank sends its $nm/N$ numbers to each of the others (an all-gather,
    $nm(N-1)/N$ numbers over a ring), and every rank repeats the same Newton-Schulz work.
    """
    if grad.ndim != 2:
        raise ValueError("Param gradient must be a 2D matrix")
    momentum_buffer.lerp_(grad, 1 - momentum)  # B_t = mu B + (1 - mu) g
    update = grad.lerp(momentum_buffer, momentum) if nesterov else momentum_buffer  # B~_t
    whole = sharded.full(update)  # the whole matrix (an all-gather when it is sharded)
    orthogonal = zeropower_via_newton_schulz(whole, ns_coefficients, ns_steps, eps)  # X_ns
    param.mul_(1 - lr * weight_decay)  # theta = (1 - lr lambda) theta
    sharded.local(param).add_(
        sharded.shard_of(orthogonal, param),  # this rank's rows of X_ns
        alpha=-adjusted_learning_rate(lr, adjust_lr_fn, param.shape),
    )


class Muon(torch.optim.Optimizer):
    """Muon with torch.optim.Muon's hyperparameters, state and messages (2-D parameters only)."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ADJUST_LR_FNS:
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = {
            "lr": lr,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_coefficients": ns_coefficients,
            "eps": eps,
            "ns_steps": ns_steps,
            "adjust_lr_fn": adjust_lr_fn,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(
                        "Muon only supports 2D parameters whereas we found a parameter with "
                        f"size: {p.size()}"
                    )

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Update every weight matrix that has a gradient; return the closure's loss, if given."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            lr = as_scalar(group["lr"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                if torch.is_complex(p):
                    raise RuntimeError("Muon does not support complex parameters")
                if p.grad.is_sparse:
                    raise RuntimeError("Muon does not support sparse gradients")
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(
                        p.grad, memory_format=torch.preserve_format
                    )
                muon_update(
                    p,
                    p.grad,
                    state["momentum_buffer"],
                    lr=lr,
                    weight_decay=group["weight_decay"],
                    momentum=group["momentum"],
                    nesterov=group["nesterov"],
                    ns_coefficients=group["ns_coefficients"],
                    ns_steps=group["ns_steps"],
                    eps=group["eps"],
                    adjust_lr_fn=group["adjust_lr_fn"],
                )
        return loss
