"""optim_lessons' Lion follows lion-pytorch's Lion step for step (Lion is not in torch.optim)."""

import re

import pytest
import torch
from _optim_checks import (
    DTYPES,
    assert_handover_both_ways,
    compare_with_scheduler,
    flag_product,
    one_cpu_thread,  # noqa: F401 (an autouse fixture)
)
from lion_pytorch import Lion as ReferenceLion

from optim_lessons.optimizers import Lion
from optim_lessons.parity import assert_same_state, compare_trajectories

OPTIONS = flag_product(
    lr=[1e-3, 3e-3],
    betas=[(0.9, 0.99), (0.95, 0.98)],
    weight_decay=[0.0, 0.1],
    decoupled_weight_decay=[False, True],
)


def check_parity(kwargs, dtype, **options):
    report = compare_trajectories(Lion, ReferenceLion, kwargs, dtype=dtype, check=True, **options)
    assert_same_state(report.ours, report.reference, dtype)
    return report


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", OPTIONS)
def test_lion_matches_lion_pytorch_for_every_option_combination(kwargs, dtype):
    check_parity(kwargs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lion_matches_lion_pytorch_on_complex_parameters(dtype):
    check_parity({"lr": 1e-3, "weight_decay": 0.1}, dtype, kind="complex")


@pytest.mark.parametrize("dtype", DTYPES)
def test_lion_matches_lion_pytorch_with_several_param_groups(dtype):
    groups = [{"lr": 3e-3, "betas": (0.8, 0.9)}, {"weight_decay": 0.5}, {"lr": 1e-2}]
    check_parity({"lr": 1e-3}, dtype, groups=groups)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lion_matches_lion_pytorch_with_a_tensor_learning_rate(dtype):
    check_parity({"lr": torch.tensor(2e-3), "weight_decay": 0.1}, dtype)


def test_lion_defaults_are_lion_pytorchs():
    params = [torch.zeros(2, requires_grad=True)]
    ours, reference = Lion(params), ReferenceLion(params)
    assert (
        ours.defaults
        == reference.defaults
        == {
            "lr": 1e-4,
            "betas": (0.9, 0.99),
            "weight_decay": 0.0,
        }
    )
    assert ours.decoupled_wd is reference.decoupled_wd is False


def test_lion_moves_every_coordinate_by_exactly_the_learning_rate():
    param = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    param.grad = torch.tensor([3.0, -1e-6, 0.0, 2e4, -7.0], dtype=torch.float64)
    Lion([param], lr=0.01).step()
    assert param.detach().tolist() == [-0.01, 0.01, 0.0, -0.01, 0.01]


def test_lion_state_is_lion_pytorchs_momentum_buffer():
    report = compare_trajectories(Lion, ReferenceLion, {"lr": 1e-3}, steps=3)
    pairs = zip(report.ours.state.values(), report.reference.state.values(), strict=True)
    for ours, reference in pairs:
        assert list(ours) == list(reference) == ["exp_avg"]
        assert (ours["exp_avg"].shape, ours["exp_avg"].dtype) == (
            reference["exp_avg"].shape,
            reference["exp_avg"].dtype,
        )


@pytest.mark.parametrize(
    "kwargs", [{"lr": 1e-3, "weight_decay": 0.1}, {"lr": torch.tensor(2e-3), "betas": (0.8, 0.9)}]
)
def test_lion_state_dict_hands_over_to_and_from_lion_pytorch(kwargs):
    assert_handover_both_ways(Lion, ReferenceLion, kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.0},
        {"lr": -1e-3},
        {"lr": torch.tensor(-1e-3)},
        {"betas": (1.1, 0.99)},
        {"betas": (0.9, -0.1)},
        {"lr": 1e-3, "betas": (1.0, 1.0)},
        {"lr": 1e-3, "betas": (0.0, 0.0)},
        {"lr": 1e-3, "weight_decay": -0.1},
    ],
    ids=repr,
)
def test_lion_rejects_exactly_what_lion_pytorch_rejects(kwargs):
    params = [torch.zeros(2, requires_grad=True)]
    try:
        ReferenceLion(params, **kwargs)
    except AssertionError:
        with pytest.raises(ValueError):
            Lion(params, **kwargs)
    else:
        Lion(params, **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -1.0}, "Invalid learning rate: -1.0"),
        ({"lr": torch.tensor([1e-3, 2e-3])}, "Tensor lr must be 1-element"),
        ({"betas": (0.9, 1.5)}, "Invalid beta parameter at index 1: 1.5"),
    ],
)
def test_lion_words_its_errors_like_torch_optim(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Lion([torch.zeros(2, requires_grad=True)], **kwargs)


def test_lion_composes_with_an_lr_scheduler_like_lion_pytorch():
    def make_scheduler(optimizer):
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=5e-3, total_steps=25)

    compare_with_scheduler(Lion, ReferenceLion, {"lr": 1e-3, "weight_decay": 0.1}, make_scheduler)
