"""optim_lessons' ASGD follows torch.optim.ASGD step for step."""

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

from optim_lessons.optimizers import ASGD
from optim_lessons.parity import assert_same_state, compare_trajectories

# t0=5 makes the averaging start inside the 25 steps; t0=1e6 (the default) never averages.
OPTIONS = flag_product(
    lambd=[1e-4, 0.1], t0=[1e6, 5], weight_decay=[0, 0.1], maximize=[False, True]
)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", OPTIONS)
def test_asgd_matches_torch_for_every_option_combination(kwargs, dtype):
    kwargs = {"lr": 0.05, **kwargs}
    problem = problem_for(kwargs, dtype=dtype)
    report = compare_trajectories(
        ASGD, torch.optim.ASGD, kwargs, dtype=dtype, problem=problem, check=True
    )
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_asgd_matches_torch_with_another_step_size_power(dtype):
    kwargs = {"lr": 0.1, "lambd": 0.5, "alpha": 0.5, "t0": 3}
    report = compare_trajectories(ASGD, torch.optim.ASGD, kwargs, dtype=dtype, check=True)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_asgd_matches_torch_on_complex_parameters(dtype):
    kwargs = {"lr": 0.05, "lambd": 0.1, "t0": 5, "weight_decay": 0.1, "maximize": True}
    problem = problem_for(kwargs, "complex", dtype)
    report = compare_trajectories(
        ASGD, torch.optim.ASGD, kwargs, dtype=dtype, problem=problem, check=True
    )
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_asgd_matches_torch_with_several_param_groups(dtype):
    groups = [{"lr": 0.02, "t0": 2}, {"lambd": 0.3, "alpha": 0.6}, {"weight_decay": 0.2}]
    compare_trajectories(ASGD, torch.optim.ASGD, {}, groups=groups, dtype=dtype, check=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_asgd_matches_torch_with_a_tensor_learning_rate(dtype):
    kwargs = {"lr": torch.tensor(0.05), "lambd": 0.1, "t0": 5}
    compare_trajectories(ASGD, torch.optim.ASGD, kwargs, dtype=dtype, check=True)


def test_asgd_state_has_torchs_keys_shapes_dtypes_and_devices():
    report = compare_trajectories(ASGD, torch.optim.ASGD, {}, steps=3)
    assert_state_like_reference(report, ["step", "eta", "mu", "ax"])


@pytest.mark.parametrize("kwargs", [{"lambd": 0.1, "t0": 5}, {"lr": torch.tensor(0.05), "t0": 12}])
def test_asgd_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(ASGD, torch.optim.ASGD, kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": -1.0},
        {"lr": torch.tensor([0.1, 0.2])},
        {"lr": torch.tensor(-0.5)},
        {"weight_decay": -0.5},
    ],
    ids=repr,
)
def test_asgd_rejects_invalid_arguments_with_torchs_message(kwargs):
    assert_rejects_like_reference(ASGD, torch.optim.ASGD, kwargs)


def test_asgd_rejects_sparse_gradients_like_torch():
    assert_sparse_gradients_rejected_like_reference(ASGD, torch.optim.ASGD)


def test_asgd_composes_with_an_lr_scheduler_like_torch():
    def make_scheduler(optimizer):
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)

    compare_with_scheduler(ASGD, torch.optim.ASGD, {"lambd": 0.1, "t0": 5}, make_scheduler)
