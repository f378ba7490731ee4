"""Several optimizers over disjoint parameters, stepped as one.

Muon orthogonalizes matrices and refuses everything else, so a network trained with it hands
its biases (and often its first and last layers) to AdamW; SparseAdam takes only sparse
gradients, so the dense layers beside an embedding go to Adam. :class:`MultiOptimizer` lets the
training loop, a scheduler and a checkpoint treat such a pair as one optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer

from optim_lessons.optimizers._common import evaluate_closure

__all__ = ["MultiOptimizer"]


class _StateView(Mapping):
    """The states of several optimizers read as one mapping (parameter -> state), without
    touching them: their ``defaultdict`` would otherwise grow an empty entry at every miss."""

    def __init__(self, optimizers: list[Optimizer]) -> None:
        self._optimizers = optimizers

    def __getitem__(self, param: Tensor) -> dict[str, Any]:
        for optimizer in self._optimizers:
            if param in optimizer.state:
                return optimizer.state[param]
        raise KeyError(param)

    def __iter__(self) -> Iterator[Tensor]:
        for optimizer in self._optimizers:
            yield from optimizer.state

    def __len__(self) -> int:
        return sum(len(optimizer.state) for optimizer in self._optimizers)


class MultiOptimizer(Optimizer):
    """Several optimizers over disjoint parameters, stepped as one.

    ``step(closure)`` evaluates the closure once (gradients for every parameter), then steps
    each optimizer in turn without a closure, so an optimizer that must re-evaluate the loss
    (LBFGS) cannot take part. ``param_groups`` lists the groups of every optimizer, in order;
    they are the same dictionaries, so a learning-rate scheduler built on the
    ``MultiOptimizer`` changes the rate of the optimizer that owns each group. ``state``
    reads through to the optimizers' states (so that
    :func:`optim_lessons.training.optimizer_state_bytes` counts them all), and ``state_dict``
    is the list of their state dicts.

    >>> weight, bias = torch.zeros(2, 2, requires_grad=True), torch.zeros(2, requires_grad=True)
    >>> both = MultiOptimizer(torch.optim.SGD([weight], lr=0.1), torch.optim.Adam([bias]))
    >>> len(both.param_groups)
    2
    """

    def __init__(self, *optimizers: Optimizer) -> None:
        if not optimizers:
            raise ValueError("MultiOptimizer needs at least one optimizer")
        for optimizer in optimizers:
            if not isinstance(optimizer, Optimizer):
                raise TypeError(f"{type(optimizer).__name__} is not a torch.optim.Optimizer")
        self.optimizers = list(optimizers)
        # torch.optim.Optimizer keeps each group dictionary it is given, so these stay shared
        # with their owners; it also refuses a parameter that two optimizers both claim.
        super().__init__([g for o in self.optimizers for g in o.param_groups], {})
        self.state = _StateView(self.optimizers)  # type: ignore[assignment]

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        """Evaluate the closure once, then step every optimizer; return the closure's loss."""
        loss = evaluate_closure(closure)
        for optimizer in self.optimizers:
            optimizer.step()
        return loss

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        saved = state_dict["optimizers"]
        if len(saved) != len(self.optimizers):
            raise ValueError(
                f"the state dict holds {len(saved)} optimizers, this MultiOptimizer has "
                f"{len(self.optimizers)}"
            )
        for optimizer, one in zip(self.optimizers, saved, strict=True):
            optimizer.load_state_dict(one)

    def __repr__(self) -> str:
        return "MultiOptimizer(" + ", ".join(type(o).__name__ for o in self.optimizers) + ")"
