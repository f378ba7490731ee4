r"""Adam as one Triton kernel, written by hand: what ``fused=True`` does on a GPU.

A GPU runs a kernel as many small programs at once. Here each program takes one block of
``BLOCK_SIZE`` consecutive numbers of the flat buffers (the layout of
:mod:`optim_lessons.fast.flat`), and for each number:

1. loads $\theta, g, m, v$ (and $v^{\max}$ with AMSGrad) from memory, once;
2. computes the whole Adam step in registers;
3. stores $\theta, m, v$ once.

That is the least memory traffic an Adam step can have, 28 bytes per float32 parameter (see
:mod:`optim_lessons.benchmarks.roofline`), and one kernel launch per group instead of about
eight per parameter tensor. The scalars that change every step (the step size
$\gamma / (1 - \beta_1^t)$ and $\sqrt{1 - \beta_2^t}$) are computed on the host in Python and
passed as arguments: a kernel argument that is a float does not trigger a recompile.

Where it runs:

- on CUDA tensors, for real (triton ships with torch's Linux wheels);
- on CPU tensors under Triton's interpreter, which runs each program in NumPy: set
  ``TRITON_INTERPRET=1`` in the environment *before* triton is first imported. That is how the
  tests check it on a machine without a GPU; it is slow, and only for checking.

Parity: the kernel rounds like the readable class except where the compiler fuses a multiply
and an add; the tests bound the difference (``tests/test_fast_triton.py``).
"""

from __future__ import annotations

import os
from typing import Any

import triton
import triton.language as tl

from optim_lessons.fast.flat import FlatAdam, FlatAdamW, FlatGroup
from optim_lessons.optimizers._common import as_real

__all__ = ["BLOCK_SIZE", "TritonAdam", "TritonAdamW", "adam_kernel", "interpreting"]

#: Numbers per program: large enough to keep a GPU's memory system busy.
BLOCK_SIZE = 1024


def interpreting() -> bool:
    """Whether Triton runs kernels in its interpreter (on CPU tensors) in this process."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@triton.jit
def adam_kernel(
    param_ptr,
    grad_ptr,
    exp_avg_ptr,
    exp_avg_sq_ptr,
    max_exp_avg_sq_ptr,
    n_elements,
    beta1,
    beta2,
    eps,
    weight_decay,
    decay_factor,
    step_size,
    bias_correction2_sqrt,
    MAXIMIZE: tl.constexpr,
    COUPLED_DECAY: tl.constexpr,
    DECOUPLED_DECAY: tl.constexpr,
    AMSGRAD: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # This program's block of the flat buffers; the last block may run past the end.
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n_elements
    param = tl.load(param_ptr + offsets, mask=inside)
    grad = tl.load(grad_ptr + offsets, mask=inside)
    exp_avg = tl.load(exp_avg_ptr + offsets, mask=inside)
    exp_avg_sq = tl.load(exp_avg_sq_ptr + offsets, mask=inside)

    if MAXIMIZE:
        grad = -grad  # g <- -grad f
    if DECOUPLED_DECAY:
        param = param * decay_factor  # theta <- (1 - gamma lambda) theta  (AdamW)
    if COUPLED_DECAY:
        grad = grad + weight_decay * param  # g <- g + lambda theta
    exp_avg = exp_avg + (1 - beta1) * (grad - exp_avg)  # m <- beta1 m + (1 - beta1) g
    exp_avg_sq = exp_avg_sq * beta2 + (1 - beta2) * grad * grad  # v <- beta2 v + (1-beta2) g^2
    second_moment = exp_avg_sq
    if AMSGRAD:
        max_exp_avg_sq = tl.load(max_exp_avg_sq_ptr + offsets, mask=inside)
        max_exp_avg_sq = tl.maximum(max_exp_avg_sq, exp_avg_sq)  # v_max <- max(v_max, v)
        tl.store(max_exp_avg_sq_ptr + offsets, max_exp_avg_sq, mask=inside)
        second_moment = max_exp_avg_sq
    denominator = tl.sqrt(second_moment) / bias_correction2_sqrt + eps  # sqrt(v_hat) + eps
    param = param - step_size * exp_avg / denominator  # theta <- theta - gamma m_hat / (...)

    tl.store(param_ptr + offsets, param, mask=inside)
    tl.store(exp_avg_ptr + offsets, exp_avg, mask=inside)
    tl.store(exp_avg_sq_ptr + offsets, exp_avg_sq, mask=inside)


def _as_float(value: Any) -> float:
    return float(value)  # a 0-dim tensor hyperparameter becomes a kernel argument


class TritonAdam(FlatAdam):
    """Adam over flat buffers, each group updated by one launch of :func:`adam_kernel`.

    Takes torch.optim.Adam's arguments and keeps its state; parameters must be float32 or
    float64 (or complex), on a CUDA device, or on the CPU under ``TRITON_INTERPRET=1``.
    """

    def _update_group(self, flat: FlatGroup, step: float, hyper: dict[str, Any]) -> None:
        if not flat.param.is_cuda and not interpreting():
            raise RuntimeError(
                "TritonAdam runs on CUDA tensors; on the CPU only under Triton's interpreter "
                "(TRITON_INTERPRET=1 set before triton is imported). Use FlatAdam or "
                "CompiledAdam on the CPU."
            )
        lr, beta1, beta2 = hyper["lr"], hyper["beta1"], hyper["beta2"]
        weight_decay = hyper["weight_decay"]
        decoupled = hyper["decoupled_weight_decay"]
        param = as_real(flat.param)
        max_exp_avg_sq = flat.states.get("max_exp_avg_sq")
        n_elements = param.numel()
        grid = (triton.cdiv(n_elements, BLOCK_SIZE),)
        adam_kernel[grid](
            param,
            as_real(flat.grad),
            as_real(flat.states["exp_avg"]),
            as_real(flat.states["exp_avg_sq"]),
            as_real(max_exp_avg_sq) if max_exp_avg_sq is not None else param,  # unused then
            n_elements,
            _as_float(beta1),
            _as_float(beta2),
            float(hyper["eps"]),
            float(weight_decay),
            _as_float(1 - lr * weight_decay),
            _as_float(lr / (1 - beta1**step)),
            _as_float((1 - beta2**step) ** 0.5),
            MAXIMIZE=hyper["maximize"],
            COUPLED_DECAY=weight_decay != 0 and not decoupled,
            DECOUPLED_DECAY=weight_decay != 0 and decoupled,
            AMSGRAD=max_exp_avg_sq is not None,
            BLOCK=BLOCK_SIZE,
        )


class TritonAdamW(TritonAdam, FlatAdamW):
    """AdamW (torch.optim.AdamW's arguments and defaults) as one Triton kernel per group."""
