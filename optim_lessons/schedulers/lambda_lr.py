r"""LambdaLR and MultiplicativeLR: the schedule is a function you write.

With base rate $\gamma_0$ and your function $\lambda$ of the step $t$:

$$
\begin{aligned}
\text{LambdaLR:}\quad & \gamma_t = \gamma_0 \, \lambda(t)
    && \text{(closed form: the factor is relative to the start)} \\
\text{MultiplicativeLR:}\quad & \gamma_t = \gamma_{t-1} \, \lambda(t), \; t \ge 1
    && \text{(chainable: the factor is relative to the previous step)}
\end{aligned}
$$

So ``LambdaLR(opt, lambda t: 0.9 ** t)`` and ``MultiplicativeLR(opt, lambda t: 0.9)`` follow the
same exponential decay (up to rounding). Either takes one function for every param group or a
list with one per group.

Saving: a plain function or ``lambda`` cannot be pickled, so ``state_dict()`` stores ``None`` in
its place; a callable *object* has its ``__dict__`` saved and restored instead.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from torch import Tensor
from torch.optim import Optimizer

from optim_lessons.schedulers.base import LRScheduler, group_values

__all__ = ["LambdaLR", "MultiplicativeLR"]

LrLambda = Callable[[int], float]


def lambdas_per_group(optimizer: Optimizer, lr_lambda: LrLambda | list[LrLambda]) -> list[LrLambda]:
    """One function for every group, or a list with exactly one per group."""
    if not isinstance(lr_lambda, list | tuple):
        return [lr_lambda] * len(optimizer.param_groups)
    if len(lr_lambda) != len(optimizer.param_groups):
        raise ValueError(
            f"Expected {len(optimizer.param_groups)} lr_lambdas, but got {len(lr_lambda)}"
        )
    return list(lr_lambda)


class _WithLambdas(LRScheduler):
    """Saving and loading for schedulers that hold user functions in ``lr_lambdas``."""

    lr_lambdas: list[LrLambda]

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        # A function is code, not state: only a callable object's attributes are saved.
        state["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
            for fn in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved_lambdas = state_dict["lr_lambdas"]
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "lr_lambdas"})
        for fn, saved in zip(self.lr_lambdas, saved_lambdas):
            if saved is not None:
                fn.__dict__.update(saved)


class LambdaLR(_WithLambdas):
    """torch.optim.lr_scheduler.LambdaLR: $\\gamma_t = \\gamma_0 \\lambda(t)$."""

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: LrLambda | list[LrLambda],
        last_epoch: int = -1,
    ) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = lambdas_per_group(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        # lr_t = lr_0 * lambda(t): always from the base rate, so it is its own closed form
        return [
            base_lr * fn(self.last_epoch)
            for fn, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)
        ]


class MultiplicativeLR(_WithLambdas):
    """torch.optim.lr_scheduler.MultiplicativeLR: $\\gamma_t = \\gamma_{t-1} \\lambda(t)$."""

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: LrLambda | list[LrLambda],
        last_epoch: int = -1,
    ) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = lambdas_per_group(optimizer, lr_lambda)
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        self._warn_if_outside_step()
        if self._is_initial:  # step 0 keeps the rate it finds: the first factor is lambda(1)
            return group_values(self.optimizer, "lr")
        # lr_t = lr_{t-1} * lambda(t)
        return [
            group["lr"] * fn(self.last_epoch)
            for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups, strict=True)
        ]
