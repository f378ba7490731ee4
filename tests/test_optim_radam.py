"""optim_lessons' RAdam follows torch.optim.RAdam step for step, with the same contract."""


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

from optim_lessons.optimizers import RAdam
from optim_lessons.parity import assert_same_state, compare_trajectories

OPTIONS = flag_product(
    maximize=[False, True],
    weight_decay=[0.0, 0.1],
    decoupled_weight_decay=[False, True],
)


#: 25 steps of ours and torch's from the same start, every step checked.
run_side_by_side = partial(side_by_side, RAdam, torch.optim.RAdam)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", OPTIONS)
def test_radam_matches_torch_for_every_option_combination(options, dtype):
    report = run_side_by_side(dict(options, lr=0.02), dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("numbers", BETAS_AND_EPS)
def test_radam_matches_torch_for_other_betas_and_eps(numbers, dtype):
    report = run_side_by_side(dict(numbers, lr=0.02, weight_decay=0.1), dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


def test_radam_takes_both_branches_of_the_rectification_within_the_run():
    """rho_t passes 5 at step 6 with beta2=0.999, so the parity runs cover both update forms."""
    beta2 = 0.999
    rho_inf = 2 / (1 - beta2) - 1
    rho = [rho_inf - 2 * t * beta2**t / (1 - beta2**t) for t in range(1, 26)]
    assert 4 < rho[4] <= 5 < rho[5]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "options", flag_product(maximize=[False, True], decoupled_weight_decay=[False, True])
)
def test_radam_matches_torch_on_complex_parameters(options, dtype):
    kwargs = dict(options, lr=0.02, weight_decay=0.1)
    report = run_side_by_side(kwargs, kind="complex", dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_radam_matches_torch_with_several_param_groups(dtype):
    groups = [
        {"lr": 0.03, "betas": (0.8, 0.99), "eps": 1e-4},
        {"weight_decay": 0.1, "decoupled_weight_decay": True, "eps": 1e-3},
        {"lr": 0.005, "weight_decay": 0.2, "maximize": True},
    ]
    report = run_side_by_side({"lr": 0.01}, groups=groups, dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lr", [torch.tensor(0.02), torch.tensor([0.02])], ids=["0-dim", "1-elem"])
@pytest.mark.parametrize("decoupled_weight_decay", [False, True])
def test_radam_matches_torch_with_a_tensor_learning_rate(lr, decoupled_weight_decay, dtype):
    kwargs = {"lr": lr, "weight_decay": 0.1, "decoupled_weight_decay": decoupled_weight_decay}
    run_side_by_side(kwargs, dtype=dtype)


def test_radam_has_torchs_signature_and_defaults():
    assert_same_signature(RAdam, torch.optim.RAdam)


def test_radam_state_has_torchs_keys_shapes_dtypes_and_devices():
    report = compare_trajectories(RAdam, torch.optim.RAdam, {}, steps=3)
    keys = ["step", "exp_avg", "exp_avg_sq"]
    assert_state_like_reference(report, keys)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.02, "weight_decay": 0.1, "eps": 1e-4},
        {"lr": torch.tensor(0.02), "weight_decay": 0.1, "decoupled_weight_decay": True},
    ],
    ids=repr,
)
def test_radam_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(RAdam, torch.optim.RAdam, kwargs)


def test_radam_loads_an_old_state_dict_like_torch():
    """Older state dicts lack the newer options and count steps with a Python number."""
    report = compare_trajectories(RAdam, torch.optim.RAdam, {"lr": 0.02}, steps=3)
    load_old_style_state_dict(
        report,
        ("maximize", "foreach", "capturable", "differentiable", "decoupled_weight_decay"),
    )


@pytest.mark.parametrize(
    "kwargs, message",
    ADAM_FAMILY_ERRORS,
    ids=repr,
)
def test_radam_rejects_invalid_arguments_with_torchs_message(kwargs, message):
    assert_rejects_like_reference(RAdam, torch.optim.RAdam, kwargs, message)


def test_radam_rejects_sparse_gradients_like_torch():
    message = assert_sparse_gradients_rejected_like_reference(RAdam, torch.optim.RAdam)
    assert message == "RAdam does not support sparse gradients"


def test_radam_composes_with_an_lr_scheduler_like_torch():
    kwargs = {"weight_decay": 0.1, "decoupled_weight_decay": True}
    compare_with_scheduler(RAdam, torch.optim.RAdam, kwargs, one_cycle())
