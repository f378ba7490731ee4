"""Small pieces that every from-scratch optimizer shares.

Only logic that is truly the same everywhere lives here: the closure idiom and a few
argument checks whose messages torch.optim words identically across optimizers.
Everything specific to one algorithm stays in that algorithm's module.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def evaluate_closure(closure: Callable[[], float | Tensor] | None) -> float | Tensor | None:
    """Re-evaluate the model with gradients enabled, the way every ``step(closure)`` does.

    ``step`` itself runs under ``torch.no_grad()``, so the closure needs gradients switched
    back on to call ``backward()``.
    """
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def check_learning_rate(lr: float | Tensor) -> None:
    """torch.optim's shared check for ``lr``: a 1-element tensor is fine, a negative one is not."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")


def check_epsilon(eps: float) -> None:
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")


def check_weight_decay(weight_decay: float) -> None:
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def check_betas(betas: tuple[float | Tensor, float | Tensor]) -> None:
    """The pair of decay rates that Adam and its relatives take, each in [0, 1)."""
    if isinstance(betas[0], Tensor) and betas[0].numel() != 1:
        raise ValueError("Tensor betas[0] must be 1-element")
    if isinstance(betas[1], Tensor) and betas[1].numel() != 1:
        raise ValueError("Tensor betas[1] must be 1-element")
    check_beta_ranges(betas)


def check_beta_ranges(betas: tuple[float | Tensor, float | Tensor]) -> None:
    """Only the range of each decay rate, [0, 1): Adam and its relatives check this before
    anything else about ``betas``."""
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")


def as_real(tensor: Tensor) -> Tensor:
    """A real view of a complex tensor (the last dimension holds real and imaginary parts).

    torch.optim treats a complex parameter as a pair of real ones for the element-wise
    algorithms; ``torch.view_as_real`` gives the same memory seen that way, so in-place updates
    through the view change the complex parameter.
    """
    return torch.view_as_real(tensor) if torch.is_complex(tensor) else tensor


def scalar_dtype() -> torch.dtype:
    """The dtype of the scalar state torch.optim keeps beside each parameter (``step``, NAdam's
    ``mu_product``): float64 when that is the default dtype, float32 otherwise, whatever the
    parameter's own dtype."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def as_scalar(value: float | Tensor) -> float | Tensor:
    """A hyperparameter ready for arithmetic with a parameter: a 1-element tensor (``lr`` given as
    ``torch.tensor([0.1])``) becomes a 0-dim tensor, so it never broadcasts a 0-dim parameter into
    shape ``[1]``; a Python number is returned unchanged."""
    if isinstance(value, Tensor) and value.dim() != 0:
        return value.squeeze()
    return value


def scalar_state_to_tensors(
    optimizer: torch.optim.Optimizer, keys: tuple[str, ...] = ("step",)
) -> None:
    """Turn scalar state saved as Python numbers (state dicts from older torch releases) into the
    scalar tensors torch.optim keeps now, so a loaded state dict continues like a fresh one."""
    for param_state in optimizer.state.values():
        for key in keys:
            if key in param_state and not torch.is_tensor(param_state[key]):
                param_state[key] = torch.tensor(float(param_state[key]), dtype=scalar_dtype())


# ----------------------------------------------------------------------------------- switches
#
# torch.optim's implementation switches choose how a step is computed, not what it computes:
# ``foreach`` (one kernel per operation over all the tensors of a group), ``fused`` (one kernel
# for the whole update), ``capturable`` (state on the parameter's device, so that a CUDA graph
# can capture the step) and ``differentiable`` (the step is recorded by autograd). The book's
# optimizers accept them where torch's do, store them in each param group like torch, refuse
# the same combinations with the same messages, and compute every step on their one readable
# path.

#: The device types whose fused kernels torch 2.14 knows of, as its error message lists them.
FUSED_DEVICES = ["mps", "cuda", "xpu", "hpu", "cpu", "mtia", "privateuseone"]

#: The device types a capturable step may run on, as torch's messages list them ("xla" is added
#: on the paths that support it).
CAPTURABLE_DEVICES = ["cuda", "xpu", "hpu", "privateuseone"]


def check_fused_options(fused: bool | None, foreach: bool | None, differentiable: bool) -> None:
    """The combinations that ``fused=True`` refuses when the optimizer is built."""
    if fused:
        if differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")
        if foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def check_fused_param(param: Tensor) -> None:
    """``fused=True`` takes floating-point parameters on a device with fused kernels."""
    if not (param.device.type in FUSED_DEVICES and torch.is_floating_point(param)):
        raise RuntimeError(
            "`fused=True` requires all the params to be floating point Tensors of "
            f"supported devices: {FUSED_DEVICES} but {param.dtype} and {param.device.type}"
        )


def check_capturable_params(params: list[Tensor], what: str, with_xla: bool) -> None:
    """``capturable=True`` keeps the state where a CUDA graph can capture it: on a GPU-like
    device. torch reports a parameter elsewhere (the CPU) with an ``AssertionError``."""
    devices = CAPTURABLE_DEVICES + (["xla"] if with_xla else [])
    if any(param.device.type not in devices for param in params):
        raise AssertionError(f"If capturable=True, {what} must be on supported devices: {devices}.")


def check_switches_at_step(
    group: dict,
    params: list[Tensor],
    *,
    what: str = "params and state_steps",
    what_foreach: str | None = None,
    xla_single: bool = True,
    xla_foreach: bool = False,
    capturable_before_autograd: bool = False,
) -> None:
    """What torch.optim checks about the switches when a step runs, in its order.

    torch runs a group either on its for-loop path or, with ``foreach=True``, on its
    multi-tensor path; each checks ``capturable`` against a slightly different list of devices
    (``xla_single``, ``xla_foreach``), and the multi-tensor path refuses ``differentiable``.
    The book has one path, but keeps torch's answers (``what`` and ``what_foreach``: how each
    path's message names the tensors).
    """
    if not params:
        return
    capturable = group.get("capturable", False)
    if group.get("foreach") and not group.get("fused"):
        autograd = group.get("differentiable", False)
        if autograd and not capturable_before_autograd:
            raise AssertionError("_foreach ops don't support autograd")
        if capturable:
            check_capturable_params(params, what_foreach or what, xla_foreach)
        if autograd:
            raise AssertionError("_foreach ops don't support autograd")
    elif capturable and not group.get("fused"):  # the fused kernels check nothing of this
        check_capturable_params(params, what, xla_single)


def step_device(param: Tensor, group: dict) -> torch.device:
    """Where a parameter's ``step`` count lives: beside the parameter when the step is
    capturable or fused, on the CPU otherwise (reading a CPU number costs no device wait)."""
    if group.get("capturable") or group.get("fused"):
        return param.device
    return torch.device("cpu")


def step_dtype(group: dict) -> torch.dtype:
    """The dtype of the ``step`` count: float32 for the fused kernels, else
    :func:`scalar_dtype`."""
    return torch.float32 if group.get("fused") else scalar_dtype()


def grad_mode_of_differentiable(step: Callable) -> Callable:
    """Run ``step`` without autograd, as ``@torch.no_grad()`` does, unless the optimizer was
    built with ``differentiable=True``: then autograd records the step, as in torch.optim."""

    @functools.wraps(step)
    def step_in_its_grad_mode(self: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
        with torch.set_grad_enabled(bool(self.defaults.get("differentiable", False))):
            return step(self, *args, **kwargs)

    return step_in_its_grad_mode


def set_switch_defaults(optimizer: torch.optim.Optimizer, keys: tuple[str, ...]) -> None:
    """Give the param groups of a state dict saved before the switches existed torch's values."""
    defaults = {"foreach": None, "fused": None, "capturable": False, "differentiable": False}
    for group in optimizer.param_groups:
        for key in keys:
            group.setdefault(key, defaults[key])
