"""PyTorch's own optimizer test database, run against the from-scratch optimizers.

``torch.testing._internal.common_optimizers.optim_db`` lists, for every torch.optim class, the
constructor configurations PyTorch tests (``optim_inputs_func``) and the invalid inputs with the
error each must raise (``optim_error_inputs_func``). Here every CPU configuration must follow the
same trajectory with our class as with torch's, and every invalid input must make our class
raise (or warn) exactly like torch's: same type, same message.

Collection only reads torch's database; our classes are looked up when a test runs, so a missing
class fails its own tests and nothing else.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
import torch
from _optim_checks import (
    one_cpu_thread,  # noqa: F401 (an autouse fixture)
    problem_for,
)
from torch.testing._internal.common_optimizers import OptimizerErrorEnum, optim_db

import optim_lessons.optimizers
from optim_lessons.optimizers import TORCH_NAMES
from optim_lessons.parity import assert_same_state, compare_trajectories

#: torch.optim's implementation switches: optim_lessons has one implementation, so it takes none.
IMPLEMENTATION_SWITCHES = ("foreach", "fused", "capturable", "differentiable")

INFOS = {info.optim_cls.__name__: info for info in optim_db if info.name in TORCH_NAMES}

#: The problem each optimizer runs on: Muon takes matrices only, SparseAdam sparse gradients only.
PROBLEM_KIND = {"Muon": "matrix", "SparseAdam": "sparse"}

#: L-BFGS runs up to max_iter=20 iterations per step by default: 5 steps are already 100.
STEPS = {"LBFGS": 5}


def ours(name: str) -> type[torch.optim.Optimizer]:
    return getattr(optim_lessons.optimizers, name)


def without_switches(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in kwargs.items() if key not in IMPLEMENTATION_SWITCHES}


def configuration_cases() -> list[Any]:
    cases = []
    for name, info in INFOS.items():
        kinds = [PROBLEM_KIND.get(name, "dense")] + (["complex"] if info.supports_complex else [])
        for index, optim_input in enumerate(info.optim_inputs_func(device="cpu")):
            for kind in kinds:
                case_id = f"{name}-{optim_input.desc}-{kind}"
                cases.append(pytest.param(name, index, kind, id=case_id))
    return cases


def error_cases() -> list[Any]:
    cases = []
    for name, info in INFOS.items():
        for index, error_input in enumerate(info.optim_error_inputs_func("cpu", torch.float32)):
            case_id = f"{name}-{error_input.optimizer_error_input.desc}"
            cases.append(pytest.param(name, index, id=case_id))
    return cases


def test_the_database_covers_all_fifteen_torch_optimizers():
    assert sorted(INFOS) == sorted(TORCH_NAMES)


@pytest.mark.parametrize("name, index, kind", configuration_cases())
def test_each_optim_db_configuration_follows_torchs_trajectory(name, index, kind):
    dtype = torch.float64  # the per-optimizer tests repeat their own cases in float32
    info = INFOS[name]
    optim_input = info.optim_inputs_func(device="cpu")[index]
    kwargs = without_switches(optim_input.kwargs)
    report = compare_trajectories(
        ours(name),
        info.optim_cls,
        kwargs,
        steps=STEPS.get(name, 25),
        dtype=dtype,
        problem=problem_for(kwargs, kind, dtype),
        check=True,
    )
    assert_same_state(report.ours, report.reference, dtype)


def outcome(action: Any, error_type: type[BaseException]) -> tuple[type, str]:
    """What ``action`` raised, or for a warning type, the first warning of that type it gave."""
    if issubclass(error_type, Warning):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            action()
        matching = [w for w in caught if issubclass(w.category, error_type)]
        assert matching, f"no {error_type.__name__} was given"
        return matching[0].category, str(matching[0].message)
    with pytest.raises(Exception) as info:
        action()
    return type(info.value), str(info.value)


@pytest.mark.parametrize("name, index", error_cases())
def test_each_optim_db_error_input_fails_like_torch(name, index):
    info = INFOS[name]
    # Fresh inputs for each class, so that one class's partial work cannot affect the other.
    reference_input, our_input = (
        info.optim_error_inputs_func("cpu", torch.float32)[index] for _ in range(2)
    )
    switches = set(reference_input.optimizer_error_input.kwargs) & set(IMPLEMENTATION_SWITCHES)
    if switches:
        pytest.skip(
            f"checks the {'/'.join(sorted(switches))} switch, which optim_lessons leaves out"
        )

    def attempt(cls: type[torch.optim.Optimizer], error_input: Any) -> Any:
        optim_input = error_input.optimizer_error_input

        def action() -> None:
            optimizer = cls(optim_input.params, **optim_input.kwargs)
            if error_input.error_on == OptimizerErrorEnum.STEP_ERROR:
                optimizer.step()

        return action

    error_type = reference_input.error_type
    expected = outcome(attempt(info.optim_cls, reference_input), error_type)
    actual = outcome(attempt(ours(name), our_input), error_type)
    assert issubclass(expected[0], error_type)
    assert re.search(reference_input.error_regex, expected[1])
    assert actual == expected
