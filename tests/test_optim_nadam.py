"""optim_lessons' NAdam follows torch.optim.NAdam step for step, with the same contract."""

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

from optim_lessons.optimizers import NAdam
from optim_lessons.parity import assert_same_state, compare_trajectories

OPTIONS = flag_product(
    maximize=[False, True],
    weight_decay=[0.0, 0.1],
    decoupled_weight_decay=[False, True],
    momentum_decay=[4e-3, 0.1],
)
#: The numeric hyperparameters, each at its default and at a far-off value, on one setting.
NUMBERS = flag_product(betas=[(0.9, 0.999), (0.5, 0.9)], eps=[1e-8, 1e-2])


def run_side_by_side(kwargs, *, dtype, kind="dense", groups=None):
    """25 steps of ours and torch's from the same start, every step checked."""
    return compare_trajectories(
        NAdam, torch.optim.NAdam, kwargs, steps=25, problem=problem_for(kwargs, kind, dtype),
        dtype=dtype, groups=groups, check=True,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", OPTIONS)
def test_nadam_matches_torch_for_every_option_combination(options, dtype):
    report = run_side_by_side(dict(options, lr=0.02), dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("numbers", NUMBERS)
def test_nadam_matches_torch_for_other_betas_and_eps(numbers, dtype):
    report = run_side_by_side(dict(numbers, lr=0.02, weight_decay=0.1), dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "options", flag_product(maximize=[False, True], decoupled_weight_decay=[False, True])
)
def test_nadam_matches_torch_on_complex_parameters(options, dtype):
    kwargs = dict(options, lr=0.02, weight_decay=0.1)
    report = run_side_by_side(kwargs, kind="complex", dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nadam_matches_torch_with_several_param_groups(dtype):
    groups = [
        {"lr": 0.03, "betas": (0.8, 0.99), "momentum_decay": 0.05},
        {"weight_decay": 0.1, "decoupled_weight_decay": True, "eps": 1e-3},
        {"lr": 0.005, "weight_decay": 0.2, "maximize": True},
    ]
    report = run_side_by_side({"lr": 0.01}, groups=groups, dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lr", [torch.tensor(0.02), torch.tensor([0.02])], ids=["0-dim", "1-elem"])
@pytest.mark.parametrize("decoupled_weight_decay", [False, True])
def test_nadam_matches_torch_with_a_tensor_learning_rate(lr, decoupled_weight_decay, dtype):
    kwargs = {"lr": lr, "weight_decay": 0.1, "decoupled_weight_decay": decoupled_weight_decay}
    run_side_by_side(kwargs, dtype=dtype)


def test_nadam_has_torchs_signature_and_defaults():
    ours = inspect.signature(NAdam).parameters
    reference = inspect.signature(torch.optim.NAdam).parameters
    expected = [(p.name, p.kind, p.default) for p in reference.values()]  # switches included
    assert [(p.name, p.kind, p.default) for p in ours.values()] == expected


def test_nadam_state_has_torchs_keys_shapes_dtypes_and_devices():
    report = compare_trajectories(NAdam, torch.optim.NAdam, {}, steps=3)
    keys = ["step", "mu_product", "exp_avg", "exp_avg_sq"]
    for ours, reference in zip(
        report.ours.state.values(), report.reference.state.values(), strict=True
    ):
        assert list(ours) == list(reference) == keys
        for key in keys:
            assert (ours[key].shape, ours[key].dtype, ours[key].device) == (
                reference[key].shape, reference[key].dtype, reference[key].device
            )


def test_nadam_scalar_state_follows_the_default_dtype_like_torch():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        report = compare_trajectories(NAdam, torch.optim.NAdam, {}, steps=2, dtype=torch.float32)
        assert_same_state(report.ours, report.reference, torch.float32)
        assert next(iter(report.ours.state.values()))["mu_product"].dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.02, "weight_decay": 0.1, "momentum_decay": 0.05},
        {"lr": torch.tensor(0.02), "weight_decay": 0.1, "decoupled_weight_decay": True},
    ],
    ids=repr,
)
def test_nadam_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(NAdam, torch.optim.NAdam, kwargs)


def test_nadam_loads_an_old_state_dict_like_torch():
    """Older state dicts lack the newer options and count steps with a Python number."""
    report = compare_trajectories(NAdam, torch.optim.NAdam, {"lr": 0.02}, steps=3)
    old_style = report.reference.state_dict()
    for group in old_style["param_groups"]:
        for key in ("maximize", "foreach", "capturable", "differentiable",
                    "decoupled_weight_decay"):
            del group[key]
    for param_state in old_style["state"].values():
        param_state["step"] = int(param_state["step"])
        param_state["mu_product"] = float(param_state["mu_product"])
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
        ({"momentum_decay": -0.2}, "Invalid momentum_decay value: -0.2"),
    ],
    ids=repr,
)
def test_nadam_rejects_invalid_arguments_with_torchs_message(kwargs, message):
    params = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match=re.escape(message)):
        NAdam(params, **kwargs)
    assert_same_error(
        lambda: NAdam(params, **kwargs), lambda: torch.optim.NAdam(params, **kwargs)
    )


def test_nadam_rejects_sparse_gradients_like_torch():
    def step_with_sparse_grad(cls):
        param = torch.zeros(3, requires_grad=True)
        param.grad = torch.zeros(3).to_sparse()
        cls([param]).step()

    message = assert_same_error(
        lambda: step_with_sparse_grad(NAdam), lambda: step_with_sparse_grad(torch.optim.NAdam)
    )
    assert message == "NAdam does not support sparse gradients"


def test_nadam_composes_with_an_lr_scheduler_like_torch():
    def make_scheduler(optimizer):
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=25)

    kwargs = {"weight_decay": 0.1, "decoupled_weight_decay": True}
    compare_with_scheduler(NAdam, torch.optim.NAdam, kwargs, make_scheduler)
