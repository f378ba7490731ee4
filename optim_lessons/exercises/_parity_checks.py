"""The check steps of a write-your-own exercise: the reader's class run beside a reference.

Each step raises ``AssertionError`` with a sentence that says what differs: the defaults,
torch's ``ValueError`` messages, the loss that ``step(closure)`` returns, the parameters' paths
and state buffers over several cases (:func:`check_against`, which also hands a ``state_dict``
over both ways), and a OneCycleLR schedule. :mod:`optim_lessons.exercises.ch12_write_your_own`
puts them together for each exercise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer

from optim_lessons.parity import (
    TOLERANCES,
    compare_trajectories,
    handover_trajectory,
    make_problem,
)


def error_message(action: Callable[[], Any]) -> str | None:
    """The message of the ``ValueError`` that ``action`` raises, or ``None`` if it raises none."""
    try:
        action()
    except ValueError as error:
        return str(error)
    return None


def assert_close_paths(
    name: str, ours: list[Tensor], reference: list[Tensor], dtype: torch.dtype, what: str
) -> None:
    rtol, atol = TOLERANCES[dtype]
    for index, (a, b) in enumerate(zip(ours, reference, strict=True)):
        if not torch.allclose(a, b, rtol=rtol, atol=atol):
            gap = (a - b).abs().max().item()
            raise AssertionError(
                f"{what}: parameter {index} differs from {name}'s by up to {gap:.3g}"
            )


def assert_same_buffers(
    ours: Optimizer, reference: Optimizer, keys: tuple[str, ...], dtype: torch.dtype, name: str
) -> None:
    """Same state keys per parameter; each tensor buffer close to the reference's, ``step`` equal
    as a number (an int or a tensor both pass)."""
    rtol, atol = TOLERANCES[dtype]
    ours_states = ours.state_dict()["state"]
    reference_states = reference.state_dict()["state"]
    assert set(ours_states) == set(reference_states), (
        f"state for parameters {sorted(ours_states)}, expected {sorted(reference_states)} "
        "(every parameter that got a gradient, and no other)"
    )
    for index, expected in reference_states.items():
        actual = ours_states[index]
        assert sorted(actual) == sorted(keys), (
            f"parameter {index}: state keys {sorted(actual)}, expected {sorted(keys)}"
        )
        for key in keys:
            if key == "step":
                assert float(actual[key]) == float(expected[key]), (
                    f"parameter {index}: step {float(actual[key])}, expected {float(expected[key])}"
                )
                continue
            value = actual[key]
            assert isinstance(value, Tensor) and value.shape == expected[key].shape, (
                f"parameter {index}: state[{key!r}] should be a tensor shaped like the parameter"
            )
            if not torch.allclose(value, expected[key], rtol=rtol, atol=atol):
                gap = (value - expected[key]).abs().max().item()
                raise AssertionError(
                    f"parameter {index}: state[{key!r}] differs from {name}'s by up to {gap:.3g}"
                )


def assert_returns_closure_loss(cls: type[Optimizer], kwargs: dict[str, Any]) -> None:
    problem = make_problem("dense")
    params = problem.clone_params()
    optimizer = cls(params, **kwargs)

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = problem.loss_fn(params)
        loss.backward()
        return loss

    before = problem.loss_fn(params).item()
    returned = optimizer.step(closure)
    assert isinstance(returned, Tensor) and returned.item() == before, (
        f"step(closure) returned {returned!r}: it should call the closure (under "
        "torch.enable_grad()) and return the loss the closure returned"
    )


def hyperparameters(group: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in group.items() if key != "params"}


def check_against(
    cls: type[Optimizer],
    reference_cls: type[Optimizer],
    name: str,
    cases: list[tuple[str, dict[str, Any], dict[str, Any]]],
    state_keys: tuple[str, ...],
    steps: int,
) -> int:
    """Parity, state and handover for every case; return how many runs were compared."""
    runs = 0
    for label, kwargs, setting in cases:
        dtype = setting.get("dtype", torch.float64)
        try:
            report = compare_trajectories(
                cls,
                reference_cls,
                kwargs,
                steps=steps,
                dtype=dtype,
                groups=setting.get("groups"),
                check=True,
            )
        except AssertionError as error:
            raise AssertionError(f"{label}: your path leaves {name}'s at {error}") from None
        assert_same_buffers(report.ours, report.reference, state_keys, dtype, name)
        ours_groups = [hyperparameters(g) for g in report.ours.param_groups]
        reference_groups = [hyperparameters(g) for g in report.reference.param_groups]
        assert ours_groups == reference_groups, (
            f"{label}: param_groups hold {ours_groups}, expected {reference_groups}"
        )
        runs += 1
    _, kwargs, _ = cases[1]
    for first, second in ((cls, reference_cls), (reference_cls, cls)):
        handed, straight = handover_trajectory(
            first, second, kwargs, steps_before=10, steps_after=15
        )
        assert_close_paths(
            name,
            handed,
            straight,
            torch.float64,
            f"state_dict handed from {first.__name__} to {second.__name__} after 10 steps",
        )
    return runs


def check_errors(
    cls: type[Optimizer], reference_cls: type[Optimizer], bad: list[dict[str, Any]]
) -> None:
    for kwargs in bad:
        expected = error_message(lambda k=kwargs: reference_cls([torch.zeros(2)], **k))
        actual = error_message(lambda k=kwargs: cls([torch.zeros(2)], **k))
        assert actual == expected, (
            f"{cls.__name__}(params, **{kwargs}) should raise ValueError({expected!r}), "
            f"got {'no ValueError' if actual is None else f'ValueError({actual!r})'}"
        )


def check_scheduler(
    cls: type[Optimizer], reference_cls: type[Optimizer], kwargs: dict[str, Any], name: str
) -> None:
    problem = make_problem("dense")
    finals = []
    for optimizer_cls in (cls, reference_cls):
        params = problem.clone_params()
        optimizer = optimizer_cls(params, **kwargs)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=5 * kwargs["lr"], total_steps=25
        )
        for _ in range(25):
            optimizer.zero_grad()
            problem.loss_fn(params).backward()
            optimizer.step()
            scheduler.step()
        finals.append([p.detach() for p in params])
    assert_close_paths(
        name,
        finals[0],
        finals[1],
        torch.float64,
        "under a OneCycleLR schedule (does step read group['lr'] afresh on every call?)",
    )


def check_defaults(cls: type[Optimizer], expected: dict[str, Any]) -> None:
    defaults = cls([torch.zeros(2, requires_grad=True)]).defaults
    assert defaults == expected, f"defaults {defaults}, expected {expected}"
