"""optim_lessons' RMSprop follows torch.optim.RMSprop step for step."""

import pytest
import torch
from _optim_checks import (
    DTYPES,
    assert_handover_both_ways,
    assert_rejects_like_reference,
    assert_sparse_gradients_rejected_like_reference,
    assert_state_like_reference,
    compare_with_scheduler,
    flag_product,
    one_cpu_thread,  # noqa: F401 (an autouse fixture)
    problem_for,
)

from optim_lessons.optimizers import RMSprop
from optim_lessons.parity import assert_same_state, compare_trajectories

OPTIONS = flag_product(
    centered=[False, True], momentum=[0, 0.5], weight_decay=[0, 0.1], maximize=[False, True]
)


def check_parity(kwargs, dtype, kind="dense", **options):
    problem = problem_for(kwargs, kind, dtype)
    report = compare_trajectories(
        RMSprop, torch.optim.RMSprop, kwargs, dtype=dtype, problem=problem, check=True, **options
    )
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", OPTIONS)
def test_rmsprop_matches_torch_for_every_option_combination(kwargs, dtype):
    check_parity(kwargs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", flag_product(alpha=[0.9, 0.5], eps=[1e-3]))
def test_rmsprop_matches_torch_with_other_decays_and_epsilons(kwargs, dtype):
    check_parity({"centered": True, "momentum": 0.3, **kwargs}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rmsprop_matches_torch_on_complex_parameters(dtype):
    kwargs = {"centered": True, "momentum": 0.5, "weight_decay": 0.1, "maximize": True}
    check_parity(kwargs, dtype, kind="complex")


@pytest.mark.parametrize("dtype", DTYPES)
def test_rmsprop_matches_torch_with_several_param_groups(dtype):
    groups = [{"lr": 0.005, "centered": True}, {"momentum": 0.9, "alpha": 0.9}, {"eps": 1e-4}]
    check_parity({}, dtype, groups=groups)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rmsprop_matches_torch_with_a_tensor_learning_rate(dtype):
    check_parity({"lr": torch.tensor(0.005), "momentum": 0.5}, dtype)


def test_rmsprop_state_has_torchs_keys_shapes_dtypes_and_devices():
    for kwargs, keys in [
        ({}, ["step", "square_avg"]),
        (
            {"momentum": 0.9, "centered": True},
            ["step", "square_avg", "momentum_buffer", "grad_avg"],
        ),
    ]:
        report = compare_trajectories(RMSprop, torch.optim.RMSprop, kwargs, steps=3)
        assert_state_like_reference(report, keys)


@pytest.mark.parametrize(
    "kwargs",
    [{"centered": True, "momentum": 0.9}, {"lr": torch.tensor(0.005), "weight_decay": 0.1}],
)
def test_rmsprop_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(RMSprop, torch.optim.RMSprop, kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": -1.0},
        {"lr": torch.tensor([0.1, 0.2])},
        {"eps": -1e-8},
        {"momentum": -1.0},
        {"weight_decay": -0.5},
        {"alpha": -0.1},
        {"lr": -1.0, "alpha": -0.1},
    ],
    ids=repr,
)
def test_rmsprop_rejects_invalid_arguments_with_torchs_message(kwargs):
    assert_rejects_like_reference(RMSprop, torch.optim.RMSprop, kwargs)


def test_rmsprop_rejects_sparse_gradients_like_torch():
    assert_sparse_gradients_rejected_like_reference(RMSprop, torch.optim.RMSprop)


def test_rmsprop_composes_with_an_lr_scheduler_like_torch():
    def make_scheduler(optimizer):
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)

    compare_with_scheduler(
        RMSprop, torch.optim.RMSprop, {"centered": True, "momentum": 0.5}, make_scheduler
    )
