"""optim_lessons' Rprop follows torch.optim.Rprop step for step."""

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

from optim_lessons.optimizers import Rprop
from optim_lessons.parity import assert_same_state, compare_trajectories

# step_sizes=(1e-3, 0.05) makes both clipping bounds bite within 25 steps.
OPTIONS = flag_product(
    lr=[0.01, 0.05],
    etas=[(0.5, 1.2), (0.3, 1.5)],
    step_sizes=[(1e-6, 50), (1e-3, 0.05)],
    maximize=[False, True],
)


def check_parity(kwargs, dtype, kind="dense", **options):
    problem = problem_for(kwargs, kind, dtype)
    report = compare_trajectories(
        Rprop, torch.optim.Rprop, kwargs, dtype=dtype, problem=problem, check=True, **options
    )
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", OPTIONS)
def test_rprop_matches_torch_for_every_option_combination(kwargs, dtype):
    check_parity(kwargs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rprop_matches_torch_on_complex_parameters(dtype):
    check_parity({"etas": (0.3, 1.5), "maximize": True}, dtype, kind="complex")


@pytest.mark.parametrize("dtype", DTYPES)
def test_rprop_matches_torch_with_several_param_groups(dtype):
    groups = [{"lr": 0.05, "etas": (0.4, 1.1)}, {"step_sizes": (1e-4, 0.02)}, {"maximize": False}]
    check_parity({}, dtype, groups=groups)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rprop_matches_torch_with_a_tensor_learning_rate(dtype):
    check_parity({"lr": torch.tensor(0.03)}, dtype)


@pytest.mark.parametrize("kind", ["dense", "complex"])
def test_rprop_state_has_torchs_keys_shapes_dtypes_and_devices(kind):
    report = compare_trajectories(Rprop, torch.optim.Rprop, {}, steps=3, kind=kind)
    assert_state_like_reference(report, ["step", "prev", "step_size"])


@pytest.mark.parametrize(
    "kwargs", [{"etas": (0.3, 1.5)}, {"lr": torch.tensor(0.03), "step_sizes": (1e-3, 0.05)}]
)
def test_rprop_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(Rprop, torch.optim.Rprop, kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": -1.0},
        {"lr": torch.tensor([0.1, 0.2])},
        {"etas": (1.0, 0.5)},
        {"etas": (0.0, 1.2)},
        {"etas": (0.5, 1.0)},
    ],
    ids=repr,
)
def test_rprop_rejects_invalid_arguments_with_torchs_message(kwargs):
    assert_rejects_like_reference(Rprop, torch.optim.Rprop, kwargs)


def test_rprop_rejects_sparse_gradients_like_torch():
    assert_sparse_gradients_rejected_like_reference(Rprop, torch.optim.Rprop)


def test_rprop_composes_with_an_lr_scheduler_like_torch():
    # Rprop reads lr only once, as its initial step size: the schedule must change nothing else.
    def make_scheduler(optimizer):
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)

    compare_with_scheduler(Rprop, torch.optim.Rprop, {"lr": 0.05}, make_scheduler)
