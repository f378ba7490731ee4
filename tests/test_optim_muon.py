"""optim_lessons' Muon follows torch.optim.Muon step for step (on 2-D parameters)."""

import pytest
import torch
from _optim_checks import (
    DTYPES,
    assert_handover_both_ways,
    assert_same_error,
    compare_with_scheduler,
    flag_product,
    one_cpu_thread,  # noqa: F401 (an autouse fixture)
)

from optim_lessons.optimizers import Muon
from optim_lessons.optimizers.muon import zeropower_via_newton_schulz
from optim_lessons.parity import assert_same_state, compare_trajectories

OPTIONS = flag_product(
    nesterov=[True, False],
    momentum=[0.95, 0.5],
    weight_decay=[0.1, 0.0],
    adjust_lr_fn=["original", "match_rms_adamw"],
)


def check_parity(kwargs, dtype, **options):
    kwargs = {"lr": 0.02, **kwargs}
    report = compare_trajectories(
        Muon, torch.optim.Muon, kwargs, kind="matrix", dtype=dtype, check=True, **options
    )
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", OPTIONS)
def test_muon_matches_torch_for_every_option_combination(kwargs, dtype):
    check_parity(kwargs, dtype)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"adjust_lr_fn": None},
        {"adjust_lr_fn": "spectral_unclamped"},
        {"ns_steps": 3},
        {"ns_steps": 0},
        {"ns_coefficients": (2.0, -1.5, 0.5)},
        {"eps": 1e-3},
        {"lr": 0.0},
    ],
    ids=repr,
)
def test_muon_matches_torch_with_other_newton_schulz_settings(kwargs):
    check_parity(kwargs, torch.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_muon_matches_torch_with_several_param_groups(dtype):
    groups = [{"lr": 0.01, "adjust_lr_fn": "match_rms_adamw"}, {"momentum": 0.8, "nesterov": False}]
    check_parity({}, dtype, groups=groups)


@pytest.mark.parametrize("dtype", DTYPES)
def test_muon_matches_torch_with_a_tensor_learning_rate(dtype):
    check_parity({"lr": torch.tensor(0.02)}, dtype)


def test_newton_schulz_leaves_its_input_alone_and_flattens_the_singular_values():
    grad = torch.randn(8, 6, generator=torch.Generator().manual_seed(0)) * 3
    before = grad.clone()
    orthogonal = zeropower_via_newton_schulz(grad, (3.4445, -4.7750, 2.0315), 5, 1e-7)
    assert torch.equal(grad, before)
    assert orthogonal.dtype == torch.bfloat16 and orthogonal.shape == grad.shape
    singular_values = torch.linalg.svdvals(orthogonal.float())
    assert singular_values.min() > 0.5 and singular_values.max() < 1.5
    spread = torch.linalg.svdvals(grad)
    assert spread.max() / spread.min() > 3  # the input's singular values were far apart


def test_muon_leaves_the_gradient_untouched():
    param = torch.randn(4, 3, requires_grad=True)
    param.grad = torch.randn(4, 3).to(torch.float32)
    grad = param.grad.clone()
    optimizer = Muon([param], nesterov=False)
    for _ in range(3):
        optimizer.step()
    assert torch.equal(param.grad, grad)


def test_muon_state_has_torchs_keys_shapes_dtypes_and_devices():
    report = compare_trajectories(Muon, torch.optim.Muon, {}, kind="matrix", steps=3)
    pairs = zip(report.ours.state.values(), report.reference.state.values(), strict=True)
    for ours, reference in pairs:
        assert list(ours) == list(reference) == ["momentum_buffer"]
        assert (ours["momentum_buffer"].shape, ours["momentum_buffer"].dtype) == (
            reference["momentum_buffer"].shape,
            reference["momentum_buffer"].dtype,
        )


@pytest.mark.parametrize("kwargs", [{"lr": 0.02}, {"lr": torch.tensor(0.02), "nesterov": False}])
def test_muon_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(Muon, torch.optim.Muon, kwargs, kind="matrix")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": -1.0},
        {"lr": torch.tensor([0.1, 0.2])},
        {"momentum": -0.1},
        {"weight_decay": -0.1},
        {"adjust_lr_fn": "arbitrary"},
    ],
    ids=repr,
)
def test_muon_rejects_invalid_arguments_with_torchs_message(kwargs):
    params = [torch.zeros(2, 3, requires_grad=True)]
    assert_same_error(lambda: Muon(params, **kwargs), lambda: torch.optim.Muon(params, **kwargs))


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), ()], ids=repr)
def test_muon_rejects_parameters_that_are_not_matrices_like_torch(shape):
    params = [{"params": [torch.zeros(2, 2, requires_grad=True)]}, {"params": [torch.zeros(shape)]}]
    assert_same_error(lambda: Muon(params), lambda: torch.optim.Muon(params))


@pytest.mark.parametrize("kwargs", [{"ns_steps": 100}, {"ns_coefficients": (1.0, 2.0)}], ids=repr)
def test_muon_rejects_bad_newton_schulz_settings_at_step_like_torch(kwargs):
    def step(cls):
        param = torch.ones(2, 3, requires_grad=True)
        param.grad = torch.ones(2, 3)
        cls([param], **kwargs).step()

    assert_same_error(lambda: step(Muon), lambda: step(torch.optim.Muon))


@pytest.mark.parametrize("case", ["complex", "sparse", "vector added later"])
def test_muon_rejects_what_torch_rejects_at_step(case):
    def step(cls):
        if case == "complex":
            param = torch.zeros(2, 3, dtype=torch.complex64, requires_grad=True)
            param.grad = torch.ones_like(param)
            cls([param]).step()
        elif case == "sparse":
            param = torch.zeros(2, 3, requires_grad=True)
            param.grad = torch.eye(2, 3).to_sparse()
            cls([param]).step()
        else:
            optimizer = cls([torch.zeros(2, 3, requires_grad=True)])
            vector = torch.zeros(3, requires_grad=True)
            vector.grad = torch.ones(3)
            optimizer.add_param_group({"params": [vector]})
            optimizer.step()

    assert_same_error(lambda: step(Muon), lambda: step(torch.optim.Muon))


def test_muon_composes_with_an_lr_scheduler_like_torch():
    def make_scheduler(optimizer):
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=25)

    compare_with_scheduler(Muon, torch.optim.Muon, {"lr": 0.02}, make_scheduler, kind="matrix")
