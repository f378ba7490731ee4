"""optim_lessons' Adamax follows torch.optim.Adamax step for step, with the same contract."""

import copy
import inspect
import re

import pytest
import torch
from _optim_checks import (
    DTYPES,
    assert_handover_both_ways,
    assert_same_error,
    compare_with_scheduler,
    flag_product,
    problem_for,
)

from optim_lessons.optimizers import Adamax
from optim_lessons.parity import assert_same_state, compare_trajectories

OPTIONS = flag_product(maximize=[False, True], weight_decay=[0.0, 0.1])
#: The numeric hyperparameters, each at its default and at a far-off value, on one setting.
NUMBERS = flag_product(betas=[(0.9, 0.999), (0.5, 0.9)], eps=[1e-8, 1e-2])


def run_side_by_side(kwargs, *, dtype, kind="dense", groups=None):
    """25 steps of ours and torch's from the same start, every step checked."""
    return compare_trajectories(
        Adamax, torch.optim.Adamax, kwargs, steps=25, problem=problem_for(kwargs, kind, dtype),
        dtype=dtype, groups=groups, check=True,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", OPTIONS)
def test_adamax_matches_torch_for_every_option_combination(options, dtype):
    report = run_side_by_side(dict(options, lr=0.02), dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("numbers", NUMBERS)
def test_adamax_matches_torch_for_other_betas_and_eps(numbers, dtype):
    report = run_side_by_side(dict(numbers, lr=0.02, weight_decay=0.1), dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("maximize", [False, True])
def test_adamax_matches_torch_on_complex_parameters(maximize, dtype):
    kwargs = {"lr": 0.02, "weight_decay": 0.1, "maximize": maximize}
    report = run_side_by_side(kwargs, kind="complex", dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adamax_matches_torch_with_several_param_groups(dtype):
    groups = [
        {"lr": 0.03, "betas": (0.8, 0.99)},
        {"weight_decay": 0.1, "eps": 1e-3},
        {"lr": 0.005, "maximize": True},
    ]
    report = run_side_by_side({"lr": 0.01}, groups=groups, dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lr", [torch.tensor(0.02), torch.tensor([0.02])], ids=["0-dim", "1-elem"])
def test_adamax_matches_torch_with_a_tensor_learning_rate(lr, dtype):
    run_side_by_side({"lr": lr, "weight_decay": 0.1}, dtype=dtype)


def test_adamax_has_torchs_signature_and_defaults():
    ours = inspect.signature(Adamax).parameters
    reference = inspect.signature(torch.optim.Adamax).parameters
    expected = [(p.name, p.kind, p.default) for p in reference.values()]  # switches included
    assert [(p.name, p.kind, p.default) for p in ours.values()] == expected


def test_adamax_state_has_torchs_keys_shapes_dtypes_and_devices():
    report = compare_trajectories(Adamax, torch.optim.Adamax, {}, steps=3)
    keys = ["step", "exp_avg", "exp_inf"]
    for ours, reference in zip(
        report.ours.state.values(), report.reference.state.values(), strict=True
    ):
        assert list(ours) == list(reference) == keys
        for key in keys:
            assert (ours[key].shape, ours[key].dtype, ours[key].device) == (
                reference[key].shape, reference[key].dtype, reference[key].device
            )


@pytest.mark.parametrize(
    "kwargs", [{"lr": 0.02, "weight_decay": 0.1}, {"lr": torch.tensor(0.02)}], ids=repr
)
def test_adamax_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(Adamax, torch.optim.Adamax, kwargs)


def test_adamax_loads_an_old_state_dict_like_torch():
    """Older state dicts lack the newer options and count steps with a Python number."""
    report = compare_trajectories(Adamax, torch.optim.Adamax, {"lr": 0.02}, steps=3)
    old_style = report.reference.state_dict()
    for group in old_style["param_groups"]:
        for key in ("maximize", "foreach", "capturable", "differentiable"):
            del group[key]
    for param_state in old_style["state"].values():
        param_state["step"] = int(param_state["step"])
    for optimizer in (report.ours, report.reference):
        optimizer.load_state_dict(copy.deepcopy(old_style))
    assert_same_state(report.ours, report.reference)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -1.0}, "Invalid learning rate: -1.0"),
        ({"lr": torch.tensor([0.1, 0.2])}, "Tensor lr must be 1-element"),
        ({"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
        ({"betas": (1.0, 0.0)}, "Invalid beta parameter at index 0: 1.0"),
        ({"betas": (0.0, 1.0)}, "Invalid beta parameter at index 1: 1.0"),
        ({"weight_decay": -1}, "Invalid weight_decay value: -1"),
    ],
    ids=repr,
)
def test_adamax_rejects_invalid_arguments_with_torchs_message(kwargs, message):
    params = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match=re.escape(message)):
        Adamax(params, **kwargs)
    assert_same_error(
        lambda: Adamax(params, **kwargs), lambda: torch.optim.Adamax(params, **kwargs)
    )


def test_adamax_rejects_sparse_gradients_like_torch():
    def step_with_sparse_grad(cls):
        param = torch.zeros(3, requires_grad=True)
        param.grad = torch.zeros(3).to_sparse()
        cls([param]).step()

    message = assert_same_error(
        lambda: step_with_sparse_grad(Adamax), lambda: step_with_sparse_grad(torch.optim.Adamax)
    )
    assert message == "Adamax does not support sparse gradients"


def test_adamax_composes_with_an_lr_scheduler_like_torch():
    def make_scheduler(optimizer):
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=25)

    compare_with_scheduler(Adamax, torch.optim.Adamax, {"weight_decay": 0.1}, make_scheduler)
