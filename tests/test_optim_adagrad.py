"""optim_lessons' Adagrad follows torch.optim.Adagrad step for step, with the same contract."""


from functools import partial

import pytest
import torch
from _optim_checks import (
    DTYPES,
    assert_handover_both_ways,
    assert_rejects_like_reference,
    assert_same_error,
    assert_same_signature,
    assert_state_like_reference,
    compare_with_scheduler,
    flag_product,
    load_old_style_state_dict,
    side_by_side,
    step_lr,
)

from optim_lessons.optimizers import Adagrad
from optim_lessons.parity import assert_same_state, compare_trajectories, make_problem

OPTIONS = flag_product(
    maximize=[False, True],
    weight_decay=[0.0, 0.1],
    lr_decay=[0.0, 0.5],
    initial_accumulator_value=[0.0, 0.1],
)


#: 25 steps of ours and torch's from the same start, every step checked.
run_side_by_side = partial(side_by_side, Adagrad, torch.optim.Adagrad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", OPTIONS)
def test_adagrad_matches_torch_for_every_option_combination(options, dtype):
    report = run_side_by_side(dict(options, lr=0.05), dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [1e-10, 1e-2])
def test_adagrad_matches_torch_for_other_eps(eps, dtype):
    kwargs = {"lr": 0.05, "eps": eps, "lr_decay": 0.5, "initial_accumulator_value": 0.1}
    report = run_side_by_side(kwargs, dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("maximize", [False, True])
def test_adagrad_matches_torch_on_complex_parameters(maximize, dtype):
    kwargs = {"lr": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.1,
              "maximize": maximize}
    report = run_side_by_side(kwargs, kind="complex", dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "options", flag_product(maximize=[False, True], lr_decay=[0.0, 0.5], eps=[1e-10, 1e-2])
)
def test_adagrad_matches_torch_on_sparse_gradients(options, dtype):
    kwargs = dict(options, lr=0.5, initial_accumulator_value=0.1)
    report = run_side_by_side(kwargs, kind="sparse", dtype=dtype)
    assert report.ours_params[0].grad.is_sparse
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adagrad_matches_torch_with_several_param_groups(dtype):
    # A group's own initial_accumulator_value is ignored by both (the constructor's one is used).
    groups = [
        {"lr": 0.1, "lr_decay": 0.2, "initial_accumulator_value": 0.5},
        {"weight_decay": 0.1, "eps": 1e-3},
        {"lr": 0.02, "maximize": True},
    ]
    report = run_side_by_side({"lr": 0.05}, groups=groups, dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lr", [torch.tensor(0.05), torch.tensor([0.05])], ids=["0-dim", "1-elem"])
def test_adagrad_matches_torch_with_a_tensor_learning_rate(lr, dtype):
    run_side_by_side({"lr": lr, "lr_decay": 0.1, "weight_decay": 0.1}, dtype=dtype)
    run_side_by_side({"lr": lr}, kind="sparse", dtype=dtype)


def test_adagrad_creates_state_at_construction_like_torch():
    problem = make_problem()
    ours = Adagrad(problem.clone_params(), initial_accumulator_value=0.3)
    reference = torch.optim.Adagrad(problem.clone_params(), initial_accumulator_value=0.3)
    assert len(ours.state) == len(reference.state) == len(problem.params)
    assert_same_state(ours, reference)


def test_adagrad_seeds_a_later_param_group_from_the_defaults_like_torch():
    problem = make_problem()
    runs = []
    for cls in (Adagrad, torch.optim.Adagrad):
        params = problem.clone_params()
        optimizer = cls(params[:2], lr=0.05, initial_accumulator_value=0.2)
        optimizer.add_param_group({"params": params[2:], "initial_accumulator_value": 0.7})
        for _ in range(5):
            optimizer.zero_grad()
            problem.loss_fn(params).backward()
            optimizer.step()
        runs.append((optimizer, params))
    (ours, ours_params), (reference, reference_params) = runs
    assert_same_state(ours, reference, torch.float64)
    for a, b in zip(ours_params, reference_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_adagrad_has_torchs_signature_and_defaults():
    assert_same_signature(Adagrad, torch.optim.Adagrad)


def test_adagrad_state_has_torchs_keys_shapes_dtypes_and_devices():
    report = compare_trajectories(Adagrad, torch.optim.Adagrad, {}, steps=3)
    assert_state_like_reference(report, ["step", "sum"])


@pytest.mark.parametrize(
    "kwargs, kind",
    [
        ({"lr": 0.05, "weight_decay": 0.1, "lr_decay": 0.1}, "dense"),
        ({"lr": torch.tensor(0.05), "initial_accumulator_value": 0.1}, "dense"),
        ({"lr": 0.5, "initial_accumulator_value": 0.1}, "sparse"),
    ],
    ids=repr,
)
def test_adagrad_state_dict_hands_over_to_and_from_torch(kwargs, kind):
    assert_handover_both_ways(Adagrad, torch.optim.Adagrad, kwargs, kind=kind)


def test_adagrad_loads_an_old_state_dict_like_torch():
    """Older state dicts lack the newer options and count steps with a Python number."""
    report = compare_trajectories(Adagrad, torch.optim.Adagrad, {"lr": 0.05}, steps=3)
    load_old_style_state_dict(
        report,
        ("maximize", "foreach", "differentiable", "fused"),
    )


def test_adagrad_shares_its_sums_like_torch():
    params = [torch.zeros(3, requires_grad=True)]
    optimizer = Adagrad(params)
    optimizer.share_memory()
    assert optimizer.state[params[0]]["sum"].is_shared()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -1.0}, "Invalid learning rate: -1.0"),
        ({"lr": torch.tensor([0.1, 0.2])}, "Tensor lr must be 1-element"),
        ({"lr_decay": -0.5}, "Invalid lr_decay value: -0.5"),
        ({"weight_decay": -1}, "Invalid weight_decay value: -1"),
        ({"initial_accumulator_value": -0.1}, "Invalid initial_accumulator_value value: -0.1"),
        ({"eps": -1e-10}, "Invalid epsilon value: -1e-10"),
    ],
    ids=repr,
)
def test_adagrad_rejects_invalid_arguments_with_torchs_message(kwargs, message):
    assert_rejects_like_reference(Adagrad, torch.optim.Adagrad, kwargs, message)


def test_adagrad_refuses_weight_decay_with_sparse_gradients_like_torch():
    def step_with_sparse_grad(cls):
        param = torch.zeros(3, requires_grad=True)
        param.grad = torch.ones(3).to_sparse()
        cls([param], weight_decay=0.1).step()

    message = assert_same_error(
        lambda: step_with_sparse_grad(Adagrad), lambda: step_with_sparse_grad(torch.optim.Adagrad)
    )
    assert message == "weight_decay option is not compatible with sparse gradients"


def test_adagrad_composes_with_an_lr_scheduler_like_torch():
    kwargs = {"lr": 0.05, "lr_decay": 0.1, "weight_decay": 0.1}
    compare_with_scheduler(Adagrad, torch.optim.Adagrad, kwargs, step_lr)
