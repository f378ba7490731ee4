"""Shared harness for the scheduler parity tests (pytest puts this folder on sys.path).

A scheduler case is a function ``build(lr_scheduler, optimizer)`` that builds a scheduler from
a namespace of scheduler classes: called with :data:`TORCH` it builds torch.optim's, with
:data:`OURS` this library's, from the same arguments. :func:`run_schedule` trains a tiny
problem for some steps with the scheduler driving the optimizer and records, at every step,
each group's rate and momentum (or beta1), ``get_last_lr()`` and the warnings raised; two
recordings are compared with ``==``, which for floats means bit for bit.
"""

from __future__ import annotations

import copy
import types
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch

import optim_lessons.schedulers as ours_schedulers
from optim_lessons.optimizers import SGD, Adam

#: torch's classes under the names the cases use (SWALR lives in torch.optim.swa_utils).
TORCH = types.SimpleNamespace(
    **{name: getattr(torch.optim.lr_scheduler, name) for name in ours_schedulers.TORCH_NAMES},
    SWALR=torch.optim.swa_utils.SWALR,
)
#: This library's classes under the same names.
OURS = types.SimpleNamespace(
    **{name: getattr(ours_schedulers, name) for name in ours_schedulers.TORCH_NAMES},
    SWALR=ours_schedulers.SWALR,
)

GROUP_LRS = (0.1, 0.03, 0.5)


def _params(groups: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(3, generator=generator, dtype=torch.float64).requires_grad_()
            for _ in range(groups)]


#: Optimizer factories: name -> (class, keyword arguments); each has momentum or betas, so
#: CyclicLR and OneCycleLR can cycle them.
OPTIMIZERS = {
    "torch-SGD": (torch.optim.SGD, {"momentum": 0.9}),
    "torch-Adam": (torch.optim.Adam, {}),
    "ours-SGD": (SGD, {"momentum": 0.9}),
    "ours-Adam": (Adam, {}),
}
OPTIMIZER_IDS = list(OPTIMIZERS)


def make_optimizer(kind: str = "torch-SGD", groups: int = 2, tensor_lr: bool = False):
    """An optimizer with ``groups`` param groups, each with its own rate from GROUP_LRS."""
    cls, kwargs = OPTIMIZERS[kind]
    params = _params(groups)
    param_groups = [
        {"params": [p], "lr": torch.tensor(lr, dtype=torch.float64) if tensor_lr else lr}
        for p, lr in zip(params, GROUP_LRS, strict=False)
    ]
    return cls(param_groups, **kwargs)


def _as_number(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return ("tensor", value.dtype, value.item())
    if isinstance(value, tuple | list):
        return tuple(_as_number(v) for v in value)
    return value


def snapshot(optimizer: torch.optim.Optimizer, scheduler: Any) -> tuple:
    """What a scheduler controls, as plain values: every group's rate and momentum/beta1, and
    ``get_last_lr()``."""
    groups = tuple(
        (_as_number(g["lr"]), _as_number(g.get("momentum")), _as_number(g.get("betas")))
        for g in optimizer.param_groups
    )
    return groups, _as_number(scheduler.get_last_lr())


def _train_step(optimizer: torch.optim.Optimizer) -> None:
    """One optimizer step on f(p) = sum(p^2), whose gradient 2p is written directly."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad = 2 * param.detach()
    optimizer.step()


def run_schedule(
    namespace: Any,
    build: Callable[[Any, torch.optim.Optimizer], Any],
    steps: int,
    *,
    optimizer: str = "torch-SGD",
    groups: int = 2,
    tensor_lr: bool = False,
    metrics: Sequence[float] | None = None,
    epochs: Sequence[Any] | None = None,
    resume_at: int | None = None,
    resume_with: Any = None,
) -> dict[str, Any]:
    """Train ``steps`` steps with the scheduler ``build(namespace, optimizer)``; record a
    snapshot before the first and after every step, and the warnings raised.

    ``metrics`` feeds ReduceLROnPlateau; ``epochs`` passes ``step(epochs[i])`` (the closed-form
    path). With ``resume_at``, after that many steps both state dicts are saved, a fresh
    optimizer and a scheduler from ``resume_with`` are built and loaded, and the run goes on
    with them.
    """
    opt = make_optimizer(optimizer, groups, tensor_lr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scheduler = build(namespace, opt)
        records = [snapshot(opt, scheduler)]
        for step in range(steps):
            if step == resume_at:
                saved_optimizer = copy.deepcopy(opt.state_dict())
                saved_scheduler = copy.deepcopy(scheduler.state_dict())
                saved_params = [p.detach().clone() for g in opt.param_groups for p in g["params"]]
                opt = make_optimizer(optimizer, groups, tensor_lr)
                with torch.no_grad():  # the model's weights come back from the checkpoint too
                    new_params = [p for g in opt.param_groups for p in g["params"]]
                    for param, value in zip(new_params, saved_params, strict=True):
                        param.copy_(value)
                scheduler = build(resume_with, opt)  # created first, then both are loaded
                opt.load_state_dict(saved_optimizer)
                scheduler.load_state_dict(saved_scheduler)
            _train_step(opt)
            if metrics is not None:
                scheduler.step(metrics[step])
            elif epochs is not None:
                scheduler.step(epochs[step])
            else:
                scheduler.step()
            records.append(snapshot(opt, scheduler))
    return {
        "records": records,
        "warnings": [(w.category, str(w.message)) for w in caught],
        "params": [p.detach().clone() for g in opt.param_groups for p in g["params"]],
        "scheduler": scheduler,
        "optimizer": opt,
    }


def assert_same_run(ours: dict[str, Any], reference: dict[str, Any]) -> None:
    """Same rates, momenta, last rates and warnings at every step, and the same parameters."""
    for step, (a, b) in enumerate(zip(ours["records"], reference["records"], strict=True)):
        assert a == b, f"step {step}: ours {a} != torch {b}"
    assert ours["warnings"] == reference["warnings"]
    for a, b in zip(ours["params"], reference["params"], strict=True):
        assert torch.equal(a, b)


def comparable_state(state: dict[str, Any]) -> dict[str, Any]:
    """A scheduler state dict with tensors as numbers, so two can be compared with ``==``."""
    return {key: (comparable_state(value) if isinstance(value, dict)
                  else [comparable_state(v) if isinstance(v, dict) else _as_number(v)
                        for v in value] if isinstance(value, list)
                  else _as_number(value))
            for key, value in state.items()}


def assert_same_state_dict(ours: Any, reference: Any) -> None:
    """The same keys with the same values: each side's state dict loads into the other."""
    a, b = comparable_state(ours.state_dict()), comparable_state(reference.state_dict())
    assert sorted(a) == sorted(b)
    assert a == b


def check_parity(build, steps: int, **kwargs: Any) -> tuple[dict, dict]:
    """Ours and torch's, same build, same optimizer: identical runs and state dicts."""
    reference = run_schedule(TORCH, build, steps, **kwargs)
    ours = run_schedule(OURS, build, steps, **kwargs)
    assert_same_run(ours, reference)
    assert_same_state_dict(ours["scheduler"], reference["scheduler"])
    return ours, reference


def check_resume_both_ways(build, steps: int, resume_at: int, **kwargs: Any) -> None:
    """Saved by torch and loaded by ours (and the other way), the run continues exactly as
    torch's uninterrupted run does, and warns as torch does when it resumes from itself."""
    straight = run_schedule(TORCH, build, steps, **kwargs)
    torch_resumed = run_schedule(TORCH, build, steps, resume_at=resume_at, resume_with=TORCH,
                                 **kwargs)
    for first, second in ((TORCH, OURS), (OURS, TORCH)):
        resumed = run_schedule(first, build, steps, resume_at=resume_at, resume_with=second,
                               **kwargs)
        assert_same_run(dict(resumed, warnings=[]), dict(straight, warnings=[]))
        assert resumed["warnings"] == torch_resumed["warnings"]


def raised(action: Callable[[], Any]) -> tuple[type[BaseException], str]:
    with pytest.raises(Exception) as info:
        action()
    return type(info.value), str(info.value)


def assert_same_error(build, optimizer: str = "torch-SGD", groups: int = 2) -> str:
    """Building (and running) the case raises the same exception type and message on both
    sides."""
    expected = raised(lambda: build(TORCH, make_optimizer(optimizer, groups)))
    actual = raised(lambda: build(OURS, make_optimizer(optimizer, groups)))
    assert actual == expected
    return expected[1]
