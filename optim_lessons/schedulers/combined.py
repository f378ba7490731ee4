r"""SequentialLR and ChainedScheduler: two ways to combine schedulers on one optimizer.

- **SequentialLR** runs its schedulers one after another: scheduler $k$ is in charge from
  milestone $m_{k-1}$ (``milestones[k-1]``) up to $m_k$. At a milestone the next scheduler
  starts *from its own step 0 in closed form*, from the base rates, not from whatever the
  previous one left: ``SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=5),
  CosineAnnealingLR(opt, T_max=95)], milestones=[5])`` is linear warm-up then cosine decay.
- **ChainedScheduler** steps all of its schedulers at every step, in order. Each multiplies the
  rate the previous one wrote (that is what "chainable" means), so the factors multiply:
  ``ChainedScheduler([ConstantLR(opt, 0.1, 3), ExponentialLR(opt, 0.9)])`` gives
  $\gamma_t = \gamma_0\, 0.9^t \cdot (0.1 \text{ if } t < 3 \text{ else } 1)$.

A scheduler created on an optimizer takes its first step at once; SequentialLR undoes those
steps (every inner ``last_epoch`` goes back by one, recursively into nested combinations) and
restarts only the first scheduler.

Either accepts torch's schedulers as well as this package's: it drives them only through
``step()``, ``_initial_step()``, ``_update_lr(epoch)`` and ``get_last_lr()``, which both sides
provide. Neither accepts ReduceLROnPlateau, whose ``step`` needs the metric.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from optim_lessons.schedulers.base import LRScheduler, group_values, set_group_value
from optim_lessons.schedulers.plateau import ReduceLROnPlateau

__all__ = ["SequentialLR", "ChainedScheduler"]

#: ReduceLROnPlateau, this package's and torch's: neither can be driven by ``step()`` alone.
_NEEDS_A_METRIC = (ReduceLROnPlateau, torch.optim.lr_scheduler.ReduceLROnPlateau)


def _check_schedulers(owner: str, optimizer: Optimizer, schedulers: Sequence[Any]) -> None:
    """Each scheduler must be steppable without arguments and act on ``optimizer``."""
    for index, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(f"{owner} at index {index} should have `optimizer` as its attribute.")
        if isinstance(scheduler, _NEEDS_A_METRIC):
            raise ValueError(
                f"{owner} does not support `ReduceLROnPlateau` scheduler as it "
                "requires additional kwargs to be specified when calling `step`, "
                f"but got one at index {index} in the given schedulers sequence."
            )
        if optimizer != scheduler.optimizer:
            raise ValueError(
                f"{owner} expects all schedulers to belong to the same optimizer, but "
                f"got scheduler {scheduler.__class__.__name__} at index {index} has "
                f"{scheduler.optimizer}, which is different from {optimizer.__class__.__name__}."
            )


class _Combination(LRScheduler):
    """State saving for a scheduler made of others: their state dicts are nested in its own."""

    _schedulers: Sequence[Any]

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "_schedulers"})
        for scheduler, saved in zip(self._schedulers, state_dict["_schedulers"]):
            scheduler.load_state_dict(saved)


class SequentialLR(_Combination):
    """torch.optim.lr_scheduler.SequentialLR: scheduler ``k`` runs from ``milestones[k-1]``."""

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: list[Any],
        milestones: list[int],
        last_epoch: int = -1,
    ) -> None:
        owner = type(self).__name__
        if len(schedulers) < 1:
            raise ValueError(f"{owner} expects at least one scheduler, but got no scheduler.")
        _check_schedulers(owner, optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more "
                f"than the number of milestone points, but got number of schedulers "
                f"{len(schedulers)} and the number of milestones to be equal to {len(milestones)}"
            )
        # Like torch.optim, milestones are used as given: an unsorted list is not rejected,
        # though bisect then picks schedulers in an order nobody intended.
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer

        # The inner schedulers each took a first step when created: take them all back...
        for group in self.optimizer.param_groups:
            set_group_value(group, "lr", group["initial_lr"])
        self.recursive_undo()
        # ... and start only the one in charge at step 0.
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def recursive_undo(self, sched: Any = None) -> None:
        """Move every inner scheduler's ``last_epoch`` back by one, into nested combinations."""
        scheduler = self if sched is None else sched
        if hasattr(scheduler, "_schedulers"):
            for inner in scheduler._schedulers:
                self.recursive_undo(inner)
        elif hasattr(scheduler, "last_epoch"):
            scheduler.last_epoch -= 1

    def step(self) -> None:  # type: ignore[override]
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)  # hand over: the next scheduler's step 0, in closed form
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def get_lr(self) -> list[float | Tensor]:
        raise NotImplementedError


class ChainedScheduler(_Combination):
    """torch.optim.lr_scheduler.ChainedScheduler: every scheduler steps, each on the rate the
    previous one wrote."""

    def __init__(self, schedulers: Sequence[Any], optimizer: Optimizer | None = None) -> None:
        owner = type(self).__name__
        if len(schedulers) < 1:
            raise ValueError(
                f"{owner} expects at least one scheduler to be chained, but got no scheduler."
            )
        optimizer = optimizer or schedulers[0].optimizer
        _check_schedulers(owner, optimizer, schedulers)
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = group_values(self._schedulers[-1].optimizer, "lr")

    def step(self) -> None:  # type: ignore[override]
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = group_values(self._schedulers[-1].optimizer, "lr")

    def get_lr(self) -> list[float | Tensor]:
        raise NotImplementedError
