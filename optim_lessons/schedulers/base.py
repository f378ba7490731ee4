r"""The scheduler's state machine: a counter, the learning rates it started from, and one rule.

A learning-rate scheduler never touches a parameter or a gradient. It keeps a counter
``last_epoch`` (the index $t$ of the step whose rate is now in the optimizer) and, each time
``step()`` is called, moves $t$ on by one and writes a new $\gamma_t$ into every
``optimizer.param_groups[i]["lr"]``. The learning rates it started from, $\gamma_0$ per group, are
``base_lrs`` (kept in the groups as ``initial_lr``, so a scheduler created later, on resume,
finds them).

A rule can be written two ways, and torch.optim keeps both for most schedulers:

- **chainable** (``get_lr``): $\gamma_t = f(\gamma_{t-1}, t)$, a factor applied to the rate that
  is in the optimizer now. This is what ``step()`` uses, so that two schedulers can act on the same
  optimizer one after the other (each multiplies what the other wrote).
- **closed form** (``_get_closed_form_lr``): $\gamma_t = f(\gamma_0, t)$, from the base rates alone.
  It is used when ``step(epoch)`` is given an epoch (deprecated) and by ``SequentialLR`` when it
  hands over to the next scheduler at a milestone.

Both give the same numbers up to rounding when the scheduler is alone on its optimizer.

What torch.optim adds around the rule, and this base class keeps:

- Creating a scheduler takes a first step, from ``last_epoch=-1`` to ``0``: the optimizer's rate
  becomes $\gamma_0$ of the schedule (ConstantLR and LinearLR scale it at once).
- ``last_epoch`` other than ``-1`` means "resume": every group must already hold
  ``initial_lr``, and that first step continues the schedule instead of restarting it.
- The optimizer's ``step`` is wrapped once so the scheduler can warn when
  ``scheduler.step()`` comes before ``optimizer.step()`` (the rate for step 0 would be skipped).
  The wrapper sets ``optimizer._opt_called`` and marks itself ``_wrapped_by_lr_sched``, the names
  torch's schedulers look for, so torch's and these schedulers share one wrapper.
- ``state_dict()`` is every attribute except the optimizer. The attribute names are therefore
  torch's own (``base_lrs``, ``last_epoch``, ``_step_count``, ``_last_lr``, ...): a state dict
  saved by one side loads into the other.
- A group's ``lr`` may be a tensor: it is then filled in place, never replaced, and every value
  handed out (``base_lrs``, ``get_last_lr()``) is a copy.

``_initial_step()`` and ``_update_lr(epoch)`` keep torch's names because torch's
``SequentialLR`` calls them on the schedulers it holds, and this package's ``SequentialLR``
calls them on torch's.

This class does not subclass torch's ``LRScheduler``: every line of the state machine is here to
read. The price is that code which tests ``isinstance(s, torch.optim.lr_scheduler.LRScheduler)``
(some training frameworks do) does not recognize these schedulers, and torch's ``SequentialLR``
does not recognize this package's ``ReduceLROnPlateau`` as one it must refuse.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from typing import Any

from torch import Tensor
from torch.optim import Optimizer

__all__ = ["LRScheduler"]

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available. "
    "Please open an issue if you are unable to replicate your use case: "
    "https://github.com/pytorch/pytorch/issues/new/choose."
)
STEP_OVERRIDDEN_WARNING = (
    "Seems like `optimizer.step()` has been overridden after learning rate scheduler "
    "initialization. Please, make sure to call `optimizer.step()` before "
    "`lr_scheduler.step()`. See more details at "
    "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate"
)
STEP_ORDER_WARNING = (
    "Detected call of `lr_scheduler.step()` before `optimizer.step()`. "
    "In PyTorch 1.1.0 and later, you should call them in the opposite order: "
    "`optimizer.step()` before `lr_scheduler.step()`.  Failure to do this "
    "will result in PyTorch skipping the first value of the learning rate schedule. "
    "See more details at "
    "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate"
)
GET_LR_OUTSIDE_STEP_WARNING = (
    "To get the last learning rate computed by the scheduler, please use `get_last_lr()`."
)


def copy_value(value: Any) -> Any:
    """A value that shares no memory with ``value``: a tensor is cloned, a number is itself."""
    return value.clone() if isinstance(value, Tensor) else value


def group_values(optimizer: Optimizer, key: str) -> list[Any]:
    """``group[key]`` for every param group, copied (a KeyError if a group lacks ``key``)."""
    return [copy_value(group[key]) for group in optimizer.param_groups]


def set_group_value(group: dict[str, Any], key: str, value: float | Tensor) -> None:
    """Write ``value`` into ``group[key]``; a tensor already there is filled in place, so an
    optimizer that captured it (a compiled or CUDA-graphed step) sees the new rate."""
    if isinstance(group[key], Tensor):
        if isinstance(value, Tensor) and value.dim() != 0:
            value = value.squeeze()
        group[key].fill_(value)
    else:
        group[key] = value


def per_group(name: str, optimizer: Optimizer, value: Any) -> list[Any]:
    """One value per param group: a list or tuple must have one entry per group, a single
    value is repeated. Tensors are copied."""
    if isinstance(value, list | tuple):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(value)} values, param_groups has {len(optimizer.param_groups)}."
            )
    else:
        value = [value] * len(optimizer.param_groups)
    return [copy_value(item) for item in value]


def set_momentum(group: dict[str, Any], momentum: float, use_beta1: bool) -> None:
    """Write a cycled momentum: SGD-like optimizers keep ``momentum``, Adam-like ones ``betas``,
    of which only beta1 is cycled."""
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


def check_optimizer(optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")


def _record_optimizer_steps(optimizer: Optimizer) -> None:
    """Wrap ``optimizer.step`` (once) so that it notes it has been called."""
    if hasattr(optimizer.step, "_wrapped_by_lr_sched"):
        return  # this or another scheduler, ours or torch's, already wrapped it
    step_function = optimizer.step.__func__
    optimizer_ref = weakref.ref(optimizer)  # the wrapper must not keep the optimizer alive

    @functools.wraps(step_function)
    def step_and_record(*args: Any, **kwargs: Any) -> Any:
        owner = optimizer_ref()
        owner._opt_called = True
        return step_function.__get__(owner, type(owner))(*args, **kwargs)

    step_and_record._wrapped_by_lr_sched = True
    optimizer.step = step_and_record


class LRScheduler:
    """The base of every scheduler here, with torch.optim.lr_scheduler.LRScheduler's contract.

    A subclass sets its own attributes, calls ``super().__init__(optimizer, last_epoch)`` (which
    takes the first step) and implements ``get_lr()``, the chainable rule; where a closed form
    exists it also implements ``_get_closed_form_lr()``.
    """

    # Class defaults; each becomes an instance attribute (and a state-dict key) once it is set.
    _get_lr_called_within_step: bool = False
    _is_initial: bool = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:  # a fresh schedule starts from the rates in the optimizer now
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", copy_value(group["lr"]))
        else:  # a resumed one needs the rates it started from
            for index, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{index}] when "
                        "resuming scheduler with last_epoch >= 0.\n"
                        "This typically happens when:\n"
                        "1. You're trying to resume training from a checkpoint but haven't "
                        "properly loaded the optimizer state\n"
                        "2. You're using last_epoch >= 0 for a fresh training run "
                        "(not recommended)"
                    )
        self.base_lrs: list[float | Tensor] = group_values(optimizer, "initial_lr")
        self.last_epoch = last_epoch
        _record_optimizer_steps(optimizer)
        self._initial_step()

    def _initial_step(self) -> None:
        """The step taken on creation: from ``last_epoch`` to ``last_epoch + 1``, flagged so that a
        rule can tell it from a later one (a chainable factor must not be applied twice)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float | Tensor]:
        """The chainable rule: the next rate of every group. Subclasses implement it."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float | Tensor]:
        """The rates this scheduler wrote last, one per group (copies, never the groups' own)."""
        return self._last_lr

    def step(self, epoch: int | None = None) -> None:
        """Move to the next step and write its rates. Call it after ``optimizer.step()``.

        ``epoch`` (deprecated) jumps to that step and uses the closed form where there is one.
        """
        if self._step_count == 1:  # the first call after creation: check the call order
            if not hasattr(self.optimizer.step, "_wrapped_by_lr_sched"):
                warnings.warn(STEP_OVERRIDDEN_WARNING, UserWarning, stacklevel=2)
            elif not getattr(self.optimizer, "_opt_called", False):
                warnings.warn(STEP_ORDER_WARNING, UserWarning, stacklevel=2)
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        """Advance the counter (or set it to ``epoch``), compute the rates and write them."""
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()  # chainable: from the rates in the optimizer
            else:
                self.last_epoch = epoch
                if hasattr(self, "_get_closed_form_lr"):
                    values = self._get_closed_form_lr()  # closed form: from base_lrs
                else:
                    values = self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            set_group_value(group, "lr", lr)
        self._last_lr: list[float | Tensor] = group_values(self.optimizer, "lr")

    def _warn_if_outside_step(self) -> None:
        """``get_lr()`` computes the *next* rate; called by hand it is usually a mistake."""
        if not self._get_lr_called_within_step:
            warnings.warn(GET_LR_OUTSIDE_STEP_WARNING, UserWarning, stacklevel=3)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (torch's keys, so torch's classes load it)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take over the attributes saved by ``state_dict()`` (ours or torch's)."""
        self.__dict__.update(state_dict)

