"""optim_lessons' SGD follows torch.optim.SGD step for step, with the same contract."""

import copy
import math
import pickle
from functools import partial

import pytest
import torch
from _optim_checks import (
    DTYPES,
    STEP_AND_ONE_CYCLE,
    assert_handover_both_ways,
    assert_rejects_like_reference,
    assert_same_error,
    assert_same_signature,
    compare_with_scheduler,
    flag_product,
    side_by_side,
)

from optim_lessons.optimizers import SGD
from optim_lessons.parity import (
    assert_same_state,
    compare_trajectories,
)

#: (momentum, dampening, nesterov): plain SGD, heavy ball, damped heavy ball, Nesterov.
MOMENTUM_FORMS = [(0.0, 0.0, False), (0.9, 0.0, False), (0.9, 0.3, False), (0.9, 0.0, True)]
OPTIONS = flag_product(
    momentum_form=MOMENTUM_FORMS, weight_decay=[0.0, 0.1], maximize=[False, True]
)


def sgd_kwargs(momentum_form, **rest):
    momentum, dampening, nesterov = momentum_form
    return dict(rest, momentum=momentum, dampening=dampening, nesterov=nesterov)


#: 25 steps of ours and torch's from the same start, every step checked.
run_side_by_side = partial(side_by_side, SGD, torch.optim.SGD)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", OPTIONS)
def test_sgd_matches_torch_for_every_option_combination(options, dtype):
    kwargs = sgd_kwargs(lr=0.02, **options)
    report = run_side_by_side(kwargs, dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum_form", MOMENTUM_FORMS, ids=str)
def test_sgd_matches_torch_on_complex_parameters(momentum_form, dtype):
    kwargs = sgd_kwargs(momentum_form, lr=0.02, weight_decay=0.1)
    report = run_side_by_side(kwargs, kind="complex", dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("momentum_form", MOMENTUM_FORMS, ids=str)
def test_sgd_matches_torch_on_sparse_gradients(momentum_form, maximize, dtype):
    kwargs = sgd_kwargs(momentum_form, lr=0.5, maximize=maximize)
    report = run_side_by_side(kwargs, kind="sparse", dtype=dtype)
    assert report.ours_params[0].grad.is_sparse
    assert_same_state(report.ours, report.reference, dtype)


def test_sgd_fails_like_torch_with_weight_decay_on_sparse_gradients():
    def step_with_sparse_grad(cls):
        param = torch.ones(3, requires_grad=True)
        param.grad = torch.ones(3).to_sparse()
        cls([param], lr=0.1, weight_decay=0.01).step()

    message = assert_same_error(
        lambda: step_with_sparse_grad(SGD), lambda: step_with_sparse_grad(torch.optim.SGD)
    )
    assert "add(sparse, dense) is not supported" in message


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_matches_torch_with_several_param_groups(dtype):
    groups = [
        {"lr": 0.02, "momentum": 0.9, "nesterov": True},
        {"momentum": 0.5, "dampening": 0.5, "weight_decay": 0.1},
        {"lr": 0.005, "maximize": True},
    ]
    report = run_side_by_side({"lr": 0.01}, groups=groups, dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lr", [torch.tensor(0.03), torch.tensor([0.03])], ids=["0-dim", "1-elem"])
def test_sgd_matches_torch_with_a_tensor_learning_rate(lr, dtype):
    kwargs = {"lr": lr, "momentum": 0.9, "weight_decay": 0.1}
    run_side_by_side(kwargs, dtype=dtype)


def test_sgd_state_has_torchs_keys_shapes_dtypes_and_devices():
    report = compare_trajectories(SGD, torch.optim.SGD, {"momentum": 0.9}, steps=3)
    for ours, reference in zip(
        report.ours.state.values(), report.reference.state.values(), strict=True
    ):
        assert list(ours) == list(reference) == ["momentum_buffer"]
        buffer, expected = ours["momentum_buffer"], reference["momentum_buffer"]
        assert (buffer.shape, buffer.dtype, buffer.device) == (
            expected.shape, expected.dtype, expected.device
        )


def test_sgd_runs_step_hooks_and_survives_pickling_like_any_torch_optimizer():
    params = [torch.ones(2, requires_grad=True)]
    optimizer = SGD(params, lr=0.1, momentum=0.9)
    calls = []
    optimizer.register_step_pre_hook(lambda *_: calls.append("pre"))
    optimizer.register_step_post_hook(lambda *_: calls.append("post"))
    params[0].sum().backward()
    optimizer.step()
    assert calls == ["pre", "post"]
    optimizer.zero_grad()
    assert params[0].grad is None
    copied = pickle.loads(pickle.dumps(optimizer))
    assert copied.param_groups[0]["nesterov"] is False
    assert torch.equal(next(iter(copied.state.values()))["momentum_buffer"], torch.ones(2))


def test_sgd_without_momentum_keeps_no_state_like_torch():
    report = compare_trajectories(SGD, torch.optim.SGD, {"lr": 0.01}, steps=3)
    assert report.ours.state_dict()["state"] == report.reference.state_dict()["state"] == {}


@pytest.mark.parametrize(
    "kwargs",
    [{"momentum": 0.9, "weight_decay": 0.1}, {"momentum": 0.9, "nesterov": True, "lr": 0.02}],
    ids=repr,
)
def test_sgd_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(SGD, torch.optim.SGD, kwargs)


def test_sgd_loads_a_state_dict_that_lacks_the_newer_options_like_torch():
    problem_kwargs = {"lr": 0.01, "momentum": 0.9}
    report = compare_trajectories(SGD, torch.optim.SGD, problem_kwargs, steps=5)
    old_style = report.reference.state_dict()
    for group in old_style["param_groups"]:
        for key in ("nesterov", "maximize", "foreach", "differentiable", "fused"):
            del group[key]
    for optimizer in (report.ours, report.reference):
        optimizer.load_state_dict(copy.deepcopy(old_style))
        assert all(not g["nesterov"] and not g["maximize"] for g in optimizer.param_groups)


def test_sgd_has_torchs_signature_and_defaults():
    assert_same_signature(SGD, torch.optim.SGD)

@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -1.0}, "Invalid learning rate: -1.0"),
        ({"lr": torch.tensor([0.1, 0.2])}, "Tensor lr must be 1-element"),
        ({"lr": torch.tensor(-0.5)}, "Invalid learning rate: -0.5"),
        ({"momentum": -0.5}, "Invalid momentum value: -0.5"),
        ({"weight_decay": -1e-3}, "Invalid weight_decay value: -0.001"),
        ({"nesterov": True}, "Nesterov momentum requires a momentum and zero dampening"),
        (
            {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
            "Nesterov momentum requires a momentum and zero dampening",
        ),
    ],
    ids=repr,
)
def test_sgd_rejects_invalid_arguments_with_torchs_message(kwargs, message):
    assert_rejects_like_reference(SGD, torch.optim.SGD, kwargs, message)


def test_sgd_accepts_a_nan_learning_rate_like_torch():
    params = [torch.zeros(2, requires_grad=True)]
    # torch.optim.SGD tests `lr < 0.0`, which is False for NaN, so neither raises.
    assert math.isnan(SGD(params, lr=float("nan")).defaults["lr"])
    assert math.isnan(torch.optim.SGD(params, lr=float("nan")).defaults["lr"])


@pytest.mark.parametrize("make_scheduler", STEP_AND_ONE_CYCLE)
def test_sgd_composes_with_an_lr_scheduler_like_torch(make_scheduler):
    kwargs = {"lr": 0.02, "momentum": 0.9, "nesterov": True}
    compare_with_scheduler(SGD, torch.optim.SGD, kwargs, make_scheduler)
