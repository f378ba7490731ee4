"""optim_lessons' Adafactor follows torch.optim.Adafactor step for step."""

import pytest
import torch
from _optim_checks import (
    DTYPES,
    assert_handover_both_ways,
    assert_rejects_like_reference,
    assert_same_error,
    compare_with_scheduler,
    flag_product,
    one_cpu_thread,  # noqa: F401 (an autouse fixture)
    problem_for,
)

from optim_lessons.optimizers import Adafactor
from optim_lessons.parity import Problem, assert_same_state, compare_trajectories

# The dense problem has a matrix (factored), a vector and a scalar (both unfactored).
OPTIONS = flag_product(
    beta2_decay=[-0.8, -0.5], d=[1.0, 1.5], weight_decay=[0.0, 0.1], maximize=[False, True]
)


def check_parity(kwargs, dtype, kind="dense", problem=None, **options):
    problem = problem or problem_for(kwargs, kind, dtype)
    report = compare_trajectories(
        Adafactor,
        torch.optim.Adafactor,
        kwargs,
        dtype=dtype,
        problem=problem,
        check=True,
        **options,
    )
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", OPTIONS)
def test_adafactor_matches_torch_for_every_option_combination(kwargs, dtype):
    check_parity(kwargs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lr", [0.3, 1.0])
def test_adafactor_matches_torch_when_the_relative_step_size_decays(lr, dtype):
    # With lr = 0.01 the cap min(lr, 1/sqrt(t)) is lr for 10^4 steps; larger caps let the
    # 1/sqrt(t) schedule act within 25 steps.
    check_parity({"lr": lr, "weight_decay": 0.1}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [(1e-30, 1e-3), (1e-3, 1e-2), (None, 0.0)], ids=repr)
def test_adafactor_matches_torch_with_other_epsilons(eps, dtype):
    check_parity({"eps": eps, "lr": 0.05}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adafactor_matches_torch_on_a_three_dimensional_parameter(dtype):
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(3, 4, 5, generator=generator, dtype=dtype)
    target = torch.randn(3, 4, 5, generator=generator, dtype=dtype)
    problem = Problem([start.requires_grad_(True)], lambda ps: ((ps[0] ** 3 - target) ** 2).mean())
    check_parity({"lr": 0.05, "weight_decay": 0.1}, dtype, problem=problem)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adafactor_matches_torch_with_several_param_groups(dtype):
    groups = [
        {"lr": 0.05, "d": 1.2},
        {"beta2_decay": -0.6, "weight_decay": 0.2},
        {"eps": (1e-6, 1e-2)},
    ]
    check_parity({}, dtype, groups=groups)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adafactor_matches_torch_with_a_tensor_learning_rate(dtype):
    check_parity({"lr": torch.tensor(0.05), "weight_decay": 0.1}, dtype)


def test_adafactor_state_has_torchs_keys_shapes_dtypes_and_devices():
    report = compare_trajectories(Adafactor, torch.optim.Adafactor, {}, steps=3)
    pairs = zip(report.ours.state.values(), report.reference.state.values(), strict=True)
    layouts = []
    for ours, reference in pairs:
        assert list(ours) == list(reference)
        layouts.append(list(reference))
        for key in reference:
            assert (ours[key].shape, ours[key].dtype, ours[key].device) == (
                reference[key].shape,
                reference[key].dtype,
                reference[key].device,
            )
    factored, unfactored = ["step", "row_var", "col_var"], ["step", "variance"]
    assert layouts == [factored, unfactored, factored, unfactored]  # w1, b1, w2, gain


@pytest.mark.parametrize("kwargs", [{"weight_decay": 0.1}, {"lr": torch.tensor(0.05), "d": 1.5}])
def test_adafactor_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(Adafactor, torch.optim.Adafactor, kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": -1.0},
        {"lr": torch.tensor([0.1, 0.2])},
        {"beta2_decay": 0.8},
        {"eps": (-1e-30, 1e-3)},
        {"eps": (None, -1e-3)},
        {"d": 0.0},
        {"weight_decay": -0.1},
    ],
    ids=repr,
)
def test_adafactor_rejects_invalid_arguments_with_torchs_message(kwargs):
    assert_rejects_like_reference(Adafactor, torch.optim.Adafactor, kwargs)


@pytest.mark.parametrize("kind", ["complex", "sparse"])
def test_adafactor_rejects_complex_parameters_and_sparse_gradients_like_torch(kind):
    def step(cls):
        if kind == "complex":
            param = torch.zeros(2, 3, dtype=torch.complex64, requires_grad=True)
            param.grad = torch.ones_like(param)
        else:
            param = torch.zeros(3, requires_grad=True)
            param.grad = torch.zeros(3).to_sparse()
        cls([param]).step()

    assert_same_error(lambda: step(Adafactor), lambda: step(torch.optim.Adafactor))


def test_adafactor_composes_with_an_lr_scheduler_like_torch():
    def make_scheduler(optimizer):
        return torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=10)

    compare_with_scheduler(
        Adafactor, torch.optim.Adafactor, {"lr": 0.05, "weight_decay": 0.1}, make_scheduler
    )
