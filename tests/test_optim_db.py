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

import inspect
import re
import warnings
from typing import Any

import pytest
import torch
from _optim_checks import (
    assert_same_switch_outcome,
    one_cpu_thread,  # noqa: F401 (an autouse fixture)
    problem_for,
    run_switch_case,
    switch_cases,
)
from torch.testing._internal.common_optimizers import OptimizerErrorEnum, optim_db

import optim_lessons.optimizers
from optim_lessons.optimizers import TORCH_NAMES
from optim_lessons.parity import assert_same_state, compare_trajectories

#: torch.optim's implementation switches: optim_lessons takes them where torch does, checks them
#: the same way and runs its one readable path whatever they say.
IMPLEMENTATION_SWITCHES = ("foreach", "fused", "capturable", "differentiable")

INFOS = {info.optim_cls.__name__: info for info in optim_db if info.name in TORCH_NAMES}

#: The problem each optimizer runs on: Muon takes matrices only, SparseAdam sparse gradients only.
PROBLEM_KIND = {"Muon": "matrix", "SparseAdam": "sparse"}

#: L-BFGS runs up to max_iter=20 iterations per step by default: 5 steps are already 100.
STEPS = {"LBFGS": 5}


def ours(name: str) -> type[torch.optim.Optimizer]:
    return getattr(optim_lessons.optimizers, name)


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
    kwargs = optim_input.kwargs
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


# ----------------------------------------------------------------------------- true drop-ins


def signature_of(cls: type[torch.optim.Optimizer]) -> list[tuple[str, Any, Any]]:
    """Each constructor argument's name, kind (positional or keyword-only) and default."""
    return [
        (name, parameter.kind, parameter.default)
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
    ]


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_constructor_takes_torchs_arguments_in_torchs_order_kinds_and_defaults(name):
    assert signature_of(ours(name)) == signature_of(INFOS[name].optim_cls)


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_param_groups_and_state_dict_carry_torchs_keys(name):
    matrix = name == "Muon"
    params = [torch.zeros(2, 2 if matrix else 3, requires_grad=True)]
    reference = INFOS[name].optim_cls(params)
    mine = ours(name)(params)
    assert sorted(mine.param_groups[0]) == sorted(reference.param_groups[0])
    assert sorted(mine.state_dict()["param_groups"][0]) == sorted(
        reference.state_dict()["param_groups"][0]
    )
    for switch in IMPLEMENTATION_SWITCHES:
        if switch in reference.defaults:
            assert mine.defaults[switch] == reference.defaults[switch], switch


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_every_switch_combination_is_refused_accepted_and_stepped_like_torch(name):
    """Each switch value torch takes, crossed with float32/float64/complex/float16 parameters, a
    tensor lr, sparse gradients and non-leaf parameters: the same error, or after two steps the
    same parameters, state dtypes and devices, and group keys."""
    mismatches = []
    cases = switch_cases(INFOS[name].optim_cls)
    for setting, switches in cases:
        try:
            assert_same_switch_outcome(
                run_switch_case(ours(name), setting, switches),
                run_switch_case(INFOS[name].optim_cls, setting, switches),
            )
        except AssertionError as error:
            mismatches.append(f"{setting} {switches}: {str(error).splitlines()[0]}")
    assert not mismatches, f"{len(mismatches)} of {len(cases)} cases differ:\n" + "\n".join(
        mismatches[:10]
    )


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_a_switch_torch_does_not_take_is_refused_with_torchs_type_error(name):
    reference_cls = INFOS[name].optim_cls
    taken = inspect.signature(reference_cls.__init__).parameters
    params = [torch.zeros(2, 2, requires_grad=True)]
    for switch in IMPLEMENTATION_SWITCHES:
        if switch in taken:
            continue
        with pytest.raises(TypeError) as expected:
            reference_cls(params, **{switch: False})
        with pytest.raises(TypeError) as actual:
            ours(name)(params, **{switch: False})
        assert str(actual.value) == str(expected.value)


@pytest.mark.parametrize("name", ["SGD", "ASGD", "RAdam"])
def test_differentiable_step_gives_torchs_gradients_through_two_steps(name):
    """With ``differentiable=True`` the step is part of the graph: the gradient of a function of
    the updated parameters, with respect to the starting point and to the gradients fed in."""

    def gradients(cls: type[torch.optim.Optimizer]) -> tuple[torch.Tensor, ...]:
        generator = torch.Generator().manual_seed(0)
        start = torch.randn(3, 2, generator=generator, dtype=torch.float64, requires_grad=True)
        fed = torch.randn(3, 2, generator=generator, dtype=torch.float64, requires_grad=True)
        param = start * 1.0  # a parameter inside a graph
        optimizer = cls([param], lr=0.1, differentiable=True)
        for _ in range(2):
            param.grad = fed * 1.0
            optimizer.step()
        weights = torch.arange(6.0, dtype=torch.float64).reshape(3, 2)
        return torch.autograd.grad((param * weights).sum(), (start, fed))

    for actual, expected in zip(gradients(ours(name)), gradients(INFOS[name].optim_cls)):
        torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize(
    "name", [n for n in TORCH_NAMES if n not in ("LBFGS", "SparseAdam", "Muon")]
)
def test_a_state_dict_saved_before_the_switches_existed_loads_and_steps(name):
    params = [torch.ones(2, 3, requires_grad=True)]
    optimizer = ours(name)(params)
    params[0].grad = torch.full_like(params[0], 0.5)
    optimizer.step()
    old = optimizer.state_dict()
    for group in old["param_groups"]:
        for switch in IMPLEMENTATION_SWITCHES:
            group.pop(switch, None)
    fresh = ours(name)(params)
    fresh.load_state_dict(old)
    assert sorted(fresh.param_groups[0]) == sorted(optimizer.param_groups[0])
    fresh.step()
