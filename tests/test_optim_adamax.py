"""optim_lessons' Adamax follows torch.optim.Adamax step for step, with the same contract."""


from functools import partial

import pytest
import torch
from _optim_checks import (
    ADAM_FAMILY_ERRORS,
    BETAS_AND_EPS,
    DTYPES,
    assert_handover_both_ways,
    assert_rejects_like_reference,
    assert_same_signature,
    assert_sparse_gradients_rejected_like_reference,
    assert_state_like_reference,
    compare_with_scheduler,
    flag_product,
    load_old_style_state_dict,
    one_cycle,
    side_by_side,
)

from optim_lessons.optimizers import Adamax
from optim_lessons.parity import assert_same_state, compare_trajectories

OPTIONS = flag_product(maximize=[False, True], weight_decay=[0.0, 0.1])


#: 25 steps of ours and torch's from the same start, every step checked.
run_side_by_side = partial(side_by_side, Adamax, torch.optim.Adamax)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", OPTIONS)
def test_adamax_matches_torch_for_every_option_combination(options, dtype):
    report = run_side_by_side(dict(options, lr=0.02), dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("numbers", BETAS_AND_EPS)
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
    assert_same_signature(Adamax, torch.optim.Adamax)


def test_adamax_state_has_torchs_keys_shapes_dtypes_and_devices():
    report = compare_trajectories(Adamax, torch.optim.Adamax, {}, steps=3)
    keys = ["step", "exp_avg", "exp_inf"]
    assert_state_like_reference(report, keys)


@pytest.mark.parametrize(
    "kwargs", [{"lr": 0.02, "weight_decay": 0.1}, {"lr": torch.tensor(0.02)}], ids=repr
)
def test_adamax_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(Adamax, torch.optim.Adamax, kwargs)


def test_adamax_loads_an_old_state_dict_like_torch():
    """Older state dicts lack the newer options and count steps with a Python number."""
    report = compare_trajectories(Adamax, torch.optim.Adamax, {"lr": 0.02}, steps=3)
    load_old_style_state_dict(
        report,
        ("maximize", "foreach", "capturable", "differentiable"),
    )


@pytest.mark.parametrize(
    "kwargs, message",
    ADAM_FAMILY_ERRORS,
    ids=repr,
)
def test_adamax_rejects_invalid_arguments_with_torchs_message(kwargs, message):
    assert_rejects_like_reference(Adamax, torch.optim.Adamax, kwargs, message)


def test_adamax_rejects_sparse_gradients_like_torch():
    message = assert_sparse_gradients_rejected_like_reference(Adamax, torch.optim.Adamax)
    assert message == "Adamax does not support sparse gradients"


def test_adamax_composes_with_an_lr_scheduler_like_torch():
    compare_with_scheduler(Adamax, torch.optim.Adamax, {"weight_decay": 0.1}, one_cycle())
