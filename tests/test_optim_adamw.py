"""optim_lessons' AdamW follows torch.optim.AdamW step for step, with the same contract."""

import copy
import inspect
from functools import partial

import pytest
import torch
from _optim_checks import (
    BETAS_AND_EPS,
    DTYPES,
    STEP_AND_ONE_CYCLE,
    assert_handover_both_ways,
    assert_rejects_like_reference,
    assert_same_signature,
    assert_sparse_gradients_rejected_like_reference,
    assert_state_like_reference,
    compare_with_scheduler,
    flag_product,
    side_by_side,
)

from optim_lessons.optimizers import Adam, AdamW
from optim_lessons.parity import assert_same_state, compare_trajectories

OPTIONS = flag_product(
    amsgrad=[False, True],
    maximize=[False, True],
    weight_decay=[0.0, 1e-2, 0.5],
)


#: 25 steps of ours and torch's from the same start, every step checked.
run_side_by_side = partial(side_by_side, AdamW, torch.optim.AdamW)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", OPTIONS)
def test_adamw_matches_torch_for_every_option_combination(options, dtype):
    report = run_side_by_side(dict(options, lr=0.02), dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("numbers", BETAS_AND_EPS)
def test_adamw_matches_torch_for_other_betas_and_eps(numbers, dtype):
    report = run_side_by_side(dict(numbers, lr=0.02, amsgrad=True, weight_decay=0.1), dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adamw_matches_torch_with_its_defaults(dtype):
    run_side_by_side({}, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adamw_matches_torch_on_complex_parameters(amsgrad, dtype):
    kwargs = {"lr": 0.02, "weight_decay": 0.1, "amsgrad": amsgrad}
    report = run_side_by_side(kwargs, kind="complex", dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adamw_matches_torch_with_several_param_groups(dtype):
    groups = [
        {"lr": 0.03, "betas": (0.8, 0.99), "amsgrad": True},
        {"weight_decay": 0.3, "eps": 1e-3},
        {"lr": 0.005, "weight_decay": 0.0},
    ]
    report = run_side_by_side({"lr": 0.01}, groups=groups, dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lr", [torch.tensor(0.02), torch.tensor([0.02])], ids=["0-dim", "1-elem"])
def test_adamw_matches_torch_with_a_tensor_learning_rate(lr, dtype):
    run_side_by_side({"lr": lr, "weight_decay": 0.1}, dtype=dtype)
    kwargs = {"lr": lr, "betas": (torch.tensor(0.8), torch.tensor(0.99)), "amsgrad": True}
    run_side_by_side(kwargs, dtype=dtype)


def test_adamw_has_torchs_signature_and_defaults():
    assert_same_signature(AdamW, torch.optim.AdamW)
    assert inspect.signature(AdamW).parameters["weight_decay"].default == 1e-2


def test_adamw_is_adam_with_decoupled_weight_decay_like_torch():
    params = [torch.zeros(2, requires_grad=True)]
    assert isinstance(AdamW(params), Adam) and issubclass(torch.optim.AdamW, torch.optim.Adam)
    assert AdamW(params).param_groups[0]["decoupled_weight_decay"] is True
    with pytest.raises(TypeError):
        AdamW(params, decoupled_weight_decay=False)
    with pytest.raises(TypeError):
        torch.optim.AdamW(params, decoupled_weight_decay=False)


def test_adamw_state_has_torchs_keys_shapes_dtypes_and_devices():
    report = compare_trajectories(AdamW, torch.optim.AdamW, {"amsgrad": True}, steps=3)
    keys = ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    assert_state_like_reference(report, keys)


@pytest.mark.parametrize(
    "kwargs",
    [{"lr": 0.02, "amsgrad": True, "weight_decay": 0.2}, {"lr": torch.tensor(0.02)}],
    ids=repr,
)
def test_adamw_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(AdamW, torch.optim.AdamW, kwargs)


def test_adamw_keeps_decoupling_whatever_a_loaded_state_dict_says():
    report = compare_trajectories(AdamW, torch.optim.AdamW, {"lr": 0.02}, steps=3)
    coupled = report.reference.state_dict()
    for group in coupled["param_groups"]:
        group["decoupled_weight_decay"] = False
    for optimizer in (report.ours, report.reference):
        optimizer.load_state_dict(copy.deepcopy(coupled))
        assert all(group["decoupled_weight_decay"] for group in optimizer.param_groups)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -1.0}, "Invalid learning rate: -1.0"),
        ({"lr": torch.tensor([0.1, 0.2])}, "Tensor lr must be 1-element"),
        ({"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
        ({"betas": (1.0, 0.0)}, "Invalid beta parameter at index 0: 1.0"),
        ({"betas": (0.9, 1.0)}, "Invalid beta parameter at index 1: 1.0"),
        ({"weight_decay": -1}, "Invalid weight_decay value: -1"),
        ({"betas": (torch.tensor(0.9), 0.99)}, "betas must be either both floats or both Tensors"),
    ],
    ids=repr,
)
def test_adamw_rejects_invalid_arguments_with_torchs_message(kwargs, message):
    assert_rejects_like_reference(AdamW, torch.optim.AdamW, kwargs, message)


def test_adamw_rejects_sparse_gradients_like_torch():
    message = assert_sparse_gradients_rejected_like_reference(AdamW, torch.optim.AdamW)
    assert message == "Adam does not support sparse gradients, please consider SparseAdam instead"


@pytest.mark.parametrize("make_scheduler", STEP_AND_ONE_CYCLE)
def test_adamw_composes_with_an_lr_scheduler_like_torch(make_scheduler):
    kwargs = {"lr": 0.02, "weight_decay": 0.3}
    compare_with_scheduler(AdamW, torch.optim.AdamW, kwargs, make_scheduler)
