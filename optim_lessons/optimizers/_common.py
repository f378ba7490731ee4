"""Small pieces that every from-scratch optimizer shares.

Only logic that is truly the same everywhere lives here: the closure idiom and a few
argument checks whose messages torch.optim words identically across optimizers.
Everything specific to one algorithm stays in that algorithm's module.
"""

from __future__ import annotations

from collections.abc import Callable

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
