r"""Compiled optimizers: the pure update function through ``torch.compile``, one loop per group.

The flat-buffer optimizers of :mod:`optim_lessons.fast.flat` still run Adam as about eight
operations, and each operation is a full pass over memory: read its inputs, write its output.
A step that reads $\theta, g, m, v$ once and writes $\theta, m, v$ once moves 28 bytes per
parameter (float32); eight passes move about three times that. ``torch.compile`` sees the
whole update function, and its Inductor backend *fuses* it: one loop (a C++ loop with vector
instructions on a CPU, a Triton kernel on a GPU) that loads each number once, does all the
arithmetic in registers and stores each result once. That is what torch's hand-written
``fused=True`` kernels do, and here it costs a dozen lines of Python.

Three details make the difference between fast and slow:

- **Scalars as 0-dim tensors.** Dynamo specializes a compiled function on the Python numbers
  it is given: passing the bias correction $1 - \beta_1^t$ as a float would recompile at every
  step. Passed as 0-dim tensors, they are data, and the one compiled loop serves every step.
- **Scalar arithmetic outside the loop.** The bias corrections and the step size are computed
  once per step in Python, not inside the compiled function: Inductor would otherwise compute
  $\beta_1^t$ inside its loop, once per vector of eight numbers.
- **Flat buffers.** One call per group gives one loop per group (the layout of ``flat.py``),
  and each group size compiles once.

Booleans (``maximize``, ``amsgrad``, ``nesterov``, whether there is weight decay) are Python
constants: changing one compiles a second version.

On a CPU, Inductor writes C++ and needs a C++ compiler (Debian: ``apt-get install g++``).
Without one, the first step raises a ``RuntimeError`` that says so; the flat optimizers need
none. The first step of each group size compiles (about 10 to 30 s on a small CPU; Inductor
keeps the result on disk for the next run).

Parity: Inductor contracts ``a * b + c`` into fused multiply-adds and computes each line in
registers, so the result can differ from the readable class in the last bit of a float32 per
step; the tests bound the difference after 25 steps (``tests/test_fast_compiled.py``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from optim_lessons.fast.flat import FlatAdagrad, FlatAdam, FlatAdamW, FlatGroup, FlatSGD
from optim_lessons.optimizers._common import as_real

__all__ = [
    "CompiledAdagrad",
    "CompiledAdam",
    "CompiledAdamW",
    "CompiledSGD",
    "MISSING_COMPILER_MESSAGE",
    "adagrad_fused",
    "adam_fused",
    "cpp_compiler",
    "sgd_fused",
]

MISSING_COMPILER_MESSAGE = (
    "torch.compile needs a C++ compiler to build its CPU code, and none was found (looked for "
    "$CXX, g++, c++ and clang++). Install one (Debian/Ubuntu: apt-get install g++), or use the "
    "flat-buffer optimizers of optim_lessons.fast.flat, which need none."
)


def cpp_compiler() -> str | None:
    """The C++ compiler Inductor would find on this machine, or None."""
    candidates = [os.environ.get("CXX"), "g++", "c++", "clang++"]
    for name in candidates:
        if name and shutil.which(name):
            return name
    return None


# The update functions. Every tensor argument is a flat buffer or a 0-dim tensor; the keyword
# flags are Python constants. Each mutates param and its states in place, like the readable
# update functions, so that the views the model holds see the result.


def adam_fused(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Tensor | None,
    one_minus_beta1: Tensor,
    beta2: Tensor,
    one_minus_beta2: Tensor,
    step_size: Tensor,
    bias_correction2_sqrt: Tensor,
    eps: Tensor,
    weight_decay: Tensor,
    decay_factor: Tensor,
    *,
    maximize: bool,
    coupled_decay: bool,
    decoupled_decay: bool,
) -> None:
    """One Adam step on flat buffers (the equations of
    :func:`optim_lessons.optimizers.adam.adam_update`); ``step_size`` is
    $\\gamma / (1 - \\beta_1^t)$ and ``decay_factor`` is $1 - \\gamma\\lambda$."""
    if maximize:
        grad = -grad
    if decoupled_decay:
        param.mul_(decay_factor)  # theta <- (1 - gamma lambda) theta  (AdamW)
    if coupled_decay:
        grad = grad + weight_decay * param  # g <- g + lambda theta
    exp_avg.add_(one_minus_beta1 * (grad - exp_avg))  # m <- beta1 m + (1 - beta1) g
    exp_avg_sq.mul_(beta2).add_(one_minus_beta2 * grad * grad)  # v <- beta2 v + (1-beta2) g^2
    second_moment = exp_avg_sq
    if max_exp_avg_sq is not None:
        max_exp_avg_sq.copy_(torch.maximum(max_exp_avg_sq, exp_avg_sq))  # v_max <- max(v_max, v)
        second_moment = max_exp_avg_sq
    denominator = second_moment.sqrt() / bias_correction2_sqrt + eps  # sqrt(v_hat) + eps
    param.sub_(step_size * exp_avg / denominator)  # theta <- theta - gamma m_hat / (...)


def sgd_fused(
    param: Tensor,
    grad: Tensor,
    momentum_buffer: Tensor,
    lr: Tensor,
    momentum: Tensor,
    one_minus_dampening: Tensor,
    weight_decay: Tensor,
    *,
    maximize: bool,
    decay: bool,
    nesterov: bool,
) -> None:
    """One step of SGD with momentum on flat buffers (after the first, which sets $b_1 = g_1$):
    the equations of :func:`optim_lessons.optimizers.sgd.sgd_update`."""
    if maximize:
        grad = -grad
    if decay:
        grad = grad + weight_decay * param  # g <- g + lambda theta
    momentum_buffer.mul_(momentum).add_(one_minus_dampening * grad)  # b <- mu b + (1 - tau) g
    direction = grad + momentum * momentum_buffer if nesterov else momentum_buffer
    param.sub_(lr * direction)  # theta <- theta - gamma d


def adagrad_fused(
    param: Tensor,
    grad: Tensor,
    state_sum: Tensor,
    decayed_lr: Tensor,
    weight_decay: Tensor,
    eps: Tensor,
    *,
    maximize: bool,
    decay: bool,
) -> None:
    """One Adagrad step on flat buffers: the equations of
    :func:`optim_lessons.optimizers.adagrad.adagrad_update`, dense gradients only."""
    if maximize:
        grad = -grad
    if decay:
        grad = grad + weight_decay * param
    state_sum.addcmul_(grad, grad)  # G <- G + g^2
    param.sub_(decayed_lr * grad / (state_sum.sqrt() + eps))  # theta <- theta - gamma g / ...


_compiled: dict[str, Callable[..., None]] = {}


def _vector_width() -> int | None:
    """The width in bits of the vector instructions Inductor writes CPU code for here, or None
    where it cannot tell.

    Inductor picks them from the CPU and from ``ATEN_CPU_CAPABILITY`` (which the book's
    numerics policy sets to ``avx2``), but its on-disk cache of compiled graphs does not tell
    the two apart: a graph compiled with AVX-512 and loaded under ``ATEN_CPU_CAPABILITY=avx2``
    (or the other way round) was seen to crash the process or to take wrong steps (torch
    2.14). Passing the width as ``cpp.simdlen`` makes it part of the cache key."""
    try:
        from torch._inductor.cpu_vec_isa import pick_vec_isa

        isa = pick_vec_isa()
    except Exception:  # a torch without this module: leave the choice to Inductor
        return None
    return isa.bit_width() if isa else None


def _compiled_function(function: Callable[..., None]) -> Callable[..., None]:
    """``torch.compile(function)``, made once per process and shared by every optimizer."""
    name = function.__name__
    if name not in _compiled:
        width = _vector_width()
        options = {"cpp.simdlen": width} if width else {}
        _compiled[name] = torch.compile(function, fullgraph=True, options=options)
    return _compiled[name]


def _run_compiled(function: Callable[..., None], device: torch.device, *args: Any, **flags: Any):
    if device.type == "cpu" and function.__name__ not in _compiled and cpp_compiler() is None:
        raise RuntimeError(MISSING_COMPILER_MESSAGE)  # checked before the first compile only
    try:
        _compiled_function(function)(*args, **flags)
    except Exception as error:  # Inductor wraps a failed C++ build in its own exception types
        if "InvalidCxxCompiler" in type(error).__name__ or "InvalidCxxCompiler" in str(error):
            raise RuntimeError(MISSING_COMPILER_MESSAGE) from error
        raise


class _Scalars:
    """0-dim tensors on the group's device, refilled each step: the compiled function sees new
    values in the same tensors, never new Python numbers."""

    def __init__(self) -> None:
        self._tensors: dict[str, Tensor] = {}

    def __call__(self, like: Tensor, **values: float | Tensor) -> list[Tensor]:
        out = []
        for name, value in values.items():
            tensor = self._tensors.get(name)
            if tensor is None or tensor.device != like.device or tensor.dtype != like.dtype:
                tensor = torch.zeros((), dtype=like.dtype, device=like.device)
                self._tensors[name] = tensor
            tensor.fill_(value)
            out.append(tensor)
        return out


def _real_dtype_like(flat: FlatGroup) -> Tensor:
    return as_real(flat.param[:1])


class CompiledAdam(FlatAdam):
    """Adam over flat buffers, each group updated by one compiled loop (:func:`adam_fused`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._scalars = _Scalars()

    def _update_group(self, flat: FlatGroup, step: float, hyper: dict[str, Any]) -> None:
        lr, beta1, beta2 = hyper["lr"], hyper["beta1"], hyper["beta2"]
        weight_decay = hyper["weight_decay"]
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        scalars = self._scalars(
            _real_dtype_like(flat),
            one_minus_beta1=1 - beta1,
            beta2=beta2,
            one_minus_beta2=1 - beta2,
            step_size=lr / bias_correction1,
            bias_correction2_sqrt=bias_correction2**0.5,
            eps=hyper["eps"],
            weight_decay=weight_decay,
            decay_factor=1 - lr * weight_decay,
        )
        decoupled = hyper["decoupled_weight_decay"]
        _run_compiled(
            adam_fused,
            flat.param.device,
            *(as_real(flat.param), as_real(flat.grad)),
            *(as_real(flat.states["exp_avg"]), as_real(flat.states["exp_avg_sq"])),
            as_real(flat.states["max_exp_avg_sq"]) if "max_exp_avg_sq" in flat.states else None,
            *scalars,
            maximize=hyper["maximize"],
            coupled_decay=weight_decay != 0 and not decoupled,
            decoupled_decay=weight_decay != 0 and decoupled,
        )


class CompiledAdamW(CompiledAdam, FlatAdamW):
    """AdamW (torch.optim.AdamW's arguments and defaults), compiled over flat buffers."""


class CompiledSGD(FlatSGD):
    """SGD with momentum over flat buffers, each group updated by one compiled loop
    (:func:`sgd_fused`). The first step, which copies the gradient into the momentum buffer,
    and SGD without momentum run the flat path's readable update."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._scalars = _Scalars()

    def _update_group(self, flat: FlatGroup, hyper: dict[str, Any]) -> None:
        scalars = self._scalars(
            _real_dtype_like(flat),
            lr=hyper["lr"],
            momentum=hyper["momentum"],
            one_minus_dampening=1 - hyper["dampening"],
            weight_decay=hyper["weight_decay"],
        )
        _run_compiled(
            sgd_fused,
            flat.param.device,
            as_real(flat.param),
            as_real(flat.grad),
            as_real(flat.states["momentum_buffer"]),
            *scalars,
            maximize=hyper["maximize"],
            decay=hyper["weight_decay"] != 0,
            nesterov=hyper["nesterov"],
        )


class CompiledAdagrad(FlatAdagrad):
    """Adagrad over flat buffers, each group updated by one compiled loop
    (:func:`adagrad_fused`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._scalars = _Scalars()

    def _update_group(self, flat: FlatGroup, step: float, hyper: dict[str, Any]) -> None:
        decayed_lr = hyper["lr"] / (1 + (step - 1) * hyper["lr_decay"])
        scalars = self._scalars(
            _real_dtype_like(flat),
            decayed_lr=decayed_lr,
            weight_decay=hyper["weight_decay"],
            eps=hyper["eps"],
        )
        _run_compiled(
            adagrad_fused,
            flat.param.device,
            as_real(flat.param),
            as_real(flat.grad),
            as_real(flat.states["sum"]),
            *scalars,
            maximize=hyper["maximize"],
            decay=hyper["weight_decay"] != 0,
        )
