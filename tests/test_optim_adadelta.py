"""optim_lessons' Adadelta follows torch.optim.Adadelta step for step."""

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
    step_lr,
)

from optim_lessons.optimizers import Adadelta
from optim_lessons.parity import assert_same_state, compare_trajectories

OPTIONS = flag_product(
    rho=[0.9, 0.5], eps=[1e-6, 1e-3], weight_decay=[0, 0.1], maximize=[False, True]
)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", OPTIONS)
def test_adadelta_matches_torch_for_every_option_combination(kwargs, dtype):
    problem = problem_for(kwargs, dtype=dtype)
    report = compare_trajectories(
        Adadelta, torch.optim.Adadelta, kwargs, dtype=dtype, problem=problem, check=True
    )
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adadelta_matches_torch_on_complex_parameters(dtype):
    kwargs = {"lr": 0.5, "weight_decay": 0.1, "maximize": True}
    problem = problem_for(kwargs, "complex", dtype)
    report = compare_trajectories(
        Adadelta, torch.optim.Adadelta, kwargs, dtype=dtype, problem=problem, check=True
    )
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adadelta_matches_torch_with_several_param_groups(dtype):
    groups = [{"lr": 0.5, "rho": 0.8}, {"weight_decay": 0.2, "maximize": True}, {"eps": 1e-4}]
    compare_trajectories(
        Adadelta, torch.optim.Adadelta, {"lr": 1.0}, groups=groups, dtype=dtype, check=True
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_adadelta_matches_torch_with_a_tensor_learning_rate(dtype):
    kwargs = {"lr": torch.tensor(0.7), "weight_decay": 0.1}
    compare_trajectories(Adadelta, torch.optim.Adadelta, kwargs, dtype=dtype, check=True)


def test_adadelta_state_has_torchs_keys_shapes_dtypes_and_devices():
    report = compare_trajectories(Adadelta, torch.optim.Adadelta, {}, steps=3)
    assert_state_like_reference(report, ["step", "square_avg", "acc_delta"])


def test_adadelta_step_counter_follows_the_default_dtype_like_torch():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        report = compare_trajectories(
            Adadelta, torch.optim.Adadelta, {}, steps=2, dtype=torch.float32
        )
        assert_same_state(report.ours, report.reference, torch.float32)
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize(
    "kwargs", [{"weight_decay": 0.1}, {"lr": torch.tensor(0.5), "maximize": True}]
)
def test_adadelta_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(Adadelta, torch.optim.Adadelta, kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": -1.0},
        {"lr": torch.tensor([0.1, 0.2])},
        {"lr": torch.tensor(-0.5)},
        {"rho": 1.1},
        {"rho": -0.1},
        {"eps": -1e-6},
        {"weight_decay": -0.5},
    ],
    ids=repr,
)
def test_adadelta_rejects_invalid_arguments_with_torchs_message(kwargs):
    assert_rejects_like_reference(Adadelta, torch.optim.Adadelta, kwargs)


def test_adadelta_rejects_sparse_gradients_like_torch():
    assert_sparse_gradients_rejected_like_reference(Adadelta, torch.optim.Adadelta)


def test_adadelta_composes_with_an_lr_scheduler_like_torch():
    compare_with_scheduler(Adadelta, torch.optim.Adadelta, {"weight_decay": 0.1}, step_lr)
