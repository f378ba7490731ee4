"""optim_lessons' Adam follows torch.optim.Adam step for step, with the same contract."""


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
    load_old_style_state_dict,
    problem_for,
    side_by_side,
)

from optim_lessons.optimizers import Adam
from optim_lessons.parity import assert_same_state, compare_trajectories

OPTIONS = flag_product(
    amsgrad=[False, True],
    maximize=[False, True],
    weight_decay=[0.0, 0.1],
    decoupled_weight_decay=[False, True],
)


#: 25 steps of ours and torch's from the same start, every step checked.
run_side_by_side = partial(side_by_side, Adam, torch.optim.Adam)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", OPTIONS)
def test_adam_matches_torch_for_every_option_combination(options, dtype):
    report = run_side_by_side(dict(options, lr=0.02), dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("numbers", BETAS_AND_EPS)
def test_adam_matches_torch_for_other_betas_and_eps(numbers, dtype):
    report = run_side_by_side(dict(numbers, lr=0.02, amsgrad=True, weight_decay=0.1), dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", flag_product(amsgrad=[False, True], maximize=[False, True]))
def test_adam_matches_torch_on_complex_parameters(options, dtype):
    kwargs = dict(options, lr=0.02, weight_decay=0.1)
    report = run_side_by_side(kwargs, kind="complex", dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_matches_torch_with_several_param_groups(dtype):
    groups = [
        {"lr": 0.03, "betas": (0.8, 0.99), "amsgrad": True},
        {"weight_decay": 0.1, "decoupled_weight_decay": True, "eps": 1e-3},
        {"lr": 0.005, "weight_decay": 0.05},
    ]
    report = run_side_by_side({"lr": 0.01}, groups=groups, dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lr", [torch.tensor(0.02), torch.tensor([0.02])], ids=["0-dim", "1-elem"])
@pytest.mark.parametrize("decoupled_weight_decay", [False, True])
def test_adam_matches_torch_with_a_tensor_learning_rate(lr, decoupled_weight_decay, dtype):
    kwargs = {"lr": lr, "weight_decay": 0.1, "decoupled_weight_decay": decoupled_weight_decay}
    run_side_by_side(kwargs, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_matches_torch_with_tensor_betas(amsgrad, dtype):
    kwargs = {"lr": 0.02, "betas": (torch.tensor(0.8), torch.tensor([0.99])), "amsgrad": amsgrad}
    run_side_by_side(kwargs, dtype=dtype)
    run_side_by_side(dict(kwargs, lr=torch.tensor(0.02)), kind="complex", dtype=dtype)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_state_has_torchs_keys_shapes_dtypes_and_devices(amsgrad):
    report = compare_trajectories(Adam, torch.optim.Adam, {"amsgrad": amsgrad}, steps=3)
    keys = ["step", "exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if amsgrad else [])
    assert_state_like_reference(report, keys)
    for ours in report.ours.state.values():
        assert ours["step"].shape == () and ours["step"].device.type == "cpu"


def test_adam_step_counter_follows_the_default_dtype_like_torch():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        report = compare_trajectories(Adam, torch.optim.Adam, {}, steps=2, dtype=torch.float32)
        assert_same_state(report.ours, report.reference, torch.float32)
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.02, "amsgrad": True, "weight_decay": 0.1},
        {"lr": torch.tensor(0.02), "weight_decay": 0.1, "decoupled_weight_decay": True},
    ],
    ids=repr,
)
def test_adam_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(Adam, torch.optim.Adam, kwargs)


def test_adam_loads_an_old_state_dict_like_torch():
    """Older state dicts lack the newer options and count steps with a Python number."""
    report = compare_trajectories(Adam, torch.optim.Adam, {"lr": 0.02}, steps=5)
    load_old_style_state_dict(
        report,
        ("amsgrad", "maximize", "foreach", "capturable", "differentiable", "fused",
         "decoupled_weight_decay"),
    )
    for _ in range(5):  # and both carry on alike
        for optimizer, params in ((report.ours, report.ours_params),
                                  (report.reference, report.reference_params)):
            optimizer.zero_grad()
            problem_for({}).loss_fn(params).backward()
            optimizer.step()
    for a, b in zip(report.ours_params, report.reference_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_adam_has_torchs_signature_and_defaults():
    assert_same_signature(Adam, torch.optim.Adam)

@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"lr": -1.0}, ValueError, "Invalid learning rate: -1.0"),
        ({"lr": torch.tensor([0.1, 0.2])}, ValueError, "Tensor lr must be 1-element"),
        ({"lr": torch.tensor(-0.5)}, ValueError, "Invalid learning rate: -0.5"),
        ({"eps": -1e-8}, ValueError, "Invalid epsilon value: -1e-08"),
        ({"betas": (1.0, 0.0)}, ValueError, "Invalid beta parameter at index 0: 1.0"),
        ({"betas": (0.9, -0.1)}, ValueError, "Invalid beta parameter at index 1: -0.1"),
        ({"weight_decay": -1}, ValueError, "Invalid weight_decay value: -1"),
        (
            {"betas": (0.9, torch.tensor(0.99))},
            ValueError,
            "betas must be either both floats or both Tensors",
        ),
        ({"betas": (0, 0.99)}, ValueError, "betas must be either both floats or both Tensors"),
        (
            {"betas": (torch.tensor([0.9]), torch.tensor([0.99, 0.9]))},
            RuntimeError,
            "Boolean value of Tensor with more than one value is ambiguous",
        ),
    ],
    ids=repr,
)
def test_adam_rejects_invalid_arguments_with_torchs_message(kwargs, error, message):
    assert_rejects_like_reference(Adam, torch.optim.Adam, kwargs, message, error)


def test_adam_rejects_sparse_gradients_like_torch():
    message = assert_sparse_gradients_rejected_like_reference(Adam, torch.optim.Adam)
    assert message == "Adam does not support sparse gradients, please consider SparseAdam instead"


@pytest.mark.parametrize("make_scheduler", STEP_AND_ONE_CYCLE)
def test_adam_composes_with_an_lr_scheduler_like_torch(make_scheduler):
    kwargs = {"lr": 0.02, "weight_decay": 0.1, "amsgrad": True}
    compare_with_scheduler(Adam, torch.optim.Adam, kwargs, make_scheduler)
