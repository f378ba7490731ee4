"""The flat-buffer optimizers take the readable classes' steps, bit for bit, and torch's within
the usual parity tolerances; each parameter, gradient and state is a view into a flat buffer."""

from __future__ import annotations

import pytest
import torch
from _optim_checks import (
    DTYPES,
    assert_handover_both_ways,
    one_cpu_thread,  # noqa: F401 (an autouse fixture)
    problem_for,
)

from optim_lessons import optimizers as readable
from optim_lessons.fast import flat as flat_module
from optim_lessons.fast.flat import FlatAdagrad, FlatAdam, FlatAdamW, FlatSGD
from optim_lessons.parity import assert_same_state, compare_trajectories, make_problem

CASES = [
    (FlatSGD, "SGD", {"lr": 0.05, "momentum": 0.9}),
    (FlatSGD, "SGD", {"lr": 0.05}),
    (FlatSGD, "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    (FlatSGD, "SGD", {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "maximize": True}),
    (FlatAdam, "Adam", {"lr": 0.05}),
    (FlatAdam, "Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    (FlatAdam, "Adam", {"lr": 0.05, "decoupled_weight_decay": True, "weight_decay": 0.1}),
    (FlatAdam, "Adam", {"lr": torch.tensor(0.05), "maximize": True, "betas": (0.8, 0.9)}),
    (FlatAdamW, "AdamW", {"lr": 0.05}),
    (FlatAdagrad, "Adagrad", {"lr": 0.1}),
    (FlatAdagrad, "Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1}),
    (FlatAdagrad, "Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5, "maximize": True}),
]
IDS = [f"{cls.__name__}-{kwargs}" for cls, _, kwargs in CASES]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flat_cls, name, kwargs", CASES, ids=IDS)
def test_flat_optimizer_takes_the_readable_steps_bit_for_bit(flat_cls, name, kwargs, dtype):
    # Tolerance: none. The flat step runs the same operations on the same numbers, laid end to
    # end, and element-wise operations do not depend on where an element sits.
    report = compare_trajectories(
        flat_cls, getattr(readable, name), kwargs, problem=problem_for(kwargs, dtype=dtype)
    )
    assert report.max_abs_diff_per_step == [0.0] * 25
    assert report.ours_losses == report.reference_losses
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flat_cls, name, kwargs", CASES, ids=IDS)
def test_flat_optimizer_matches_torch(flat_cls, name, kwargs, dtype):
    # Tolerance: the book's parity tolerances (rtol 1e-4, atol 1e-6 in float32; 1e-6, 1e-9 in
    # float64), checked at every one of 25 steps.
    report = compare_trajectories(
        flat_cls,
        getattr(torch.optim, name),
        kwargs,
        problem=problem_for(kwargs, dtype=dtype),
        dtype=dtype,
        check=True,
    )
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("flat_cls, name", [(FlatAdam, "Adam"), (FlatSGD, "SGD")])
def test_flat_optimizer_matches_on_complex_parameters(flat_cls, name):
    kwargs = {"lr": 0.05, "momentum": 0.9} if name == "SGD" else {"lr": 0.05}
    report = compare_trajectories(flat_cls, getattr(readable, name), kwargs, kind="complex")
    assert report.max_abs_diff_per_step == [0.0] * 25


def train(optimizer_cls, kwargs, steps, *, frozen_until=0, set_to_none=True):
    """Steps on the dense problem; the first parameter gets no gradient before ``frozen_until``."""
    problem = make_problem("dense", torch.float64)
    params = problem.clone_params()
    optimizer = optimizer_cls(params, **kwargs)
    for step in range(steps):
        optimizer.zero_grad(set_to_none=set_to_none)
        loss = problem.loss_fn(params)
        loss.backward()
        if step < frozen_until:
            params[0].grad = None
        optimizer.step()
    return params, optimizer


@pytest.mark.parametrize(
    "flat_cls, name, kwargs",
    [
        (FlatAdam, "Adam", {"lr": 0.05}),
        (FlatSGD, "SGD", {"lr": 0.05, "momentum": 0.9}),
        (FlatAdagrad, "Adagrad", {"lr": 0.1}),
    ],
)
def test_a_parameter_without_a_gradient_waits_as_in_torch(flat_cls, name, kwargs):
    # The first parameter has no gradient for 5 steps: it stays put and its step count lags;
    # the group is updated a parameter at a time until the counts agree, which they never do.
    ours, ours_optimizer = train(flat_cls, kwargs, 12, frozen_until=5)
    reference, reference_optimizer = train(getattr(torch.optim, name), kwargs, 12, frozen_until=5)
    for a, b in zip(ours, reference, strict=True):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-6, atol=1e-9)
    assert_same_state(ours_optimizer, reference_optimizer, torch.float64)


def test_parameters_gradients_and_states_are_views_into_one_buffer_per_group():
    params, optimizer = train(FlatAdam, {"lr": 0.05}, 3, set_to_none=False)
    (flat,) = optimizer._flat_groups.values()
    assert flat.param.numel() == sum(p.numel() for p in params)
    for p, offset in zip(params, flat.offsets, strict=True):
        assert p.data_ptr() == flat.param.data_ptr() + offset * p.element_size()
        assert p.grad.data_ptr() == flat.grad.data_ptr() + offset * p.element_size()
        state = optimizer.state[p]
        assert state["exp_avg"].data_ptr() == (
            flat.states["exp_avg"].data_ptr() + offset * p.element_size()
        )
        assert state["step"] is flat.shared_step  # one count for the group, one increment
    assert float(flat.shared_step) == 3


def test_zero_grad_without_set_to_none_keeps_the_gradient_views_through_backward():
    problem = make_problem("dense", torch.float64)
    params = problem.clone_params()
    optimizer = FlatSGD(params, lr=0.1, momentum=0.9)
    problem.loss_fn(params).backward()
    optimizer.step()
    (flat,) = optimizer._flat_groups.values()
    optimizer.zero_grad(set_to_none=False)
    assert flat.grad.abs().max() == 0
    problem.loss_fn(params).backward()  # autograd accumulates into the views: no copy needed
    for p, view in zip(params, flat.grad_views, strict=True):
        assert p.grad is view
    assert flat.grad.abs().max() > 0


@pytest.mark.parametrize(
    "flat_cls, name, kwargs",
    [
        (FlatAdam, "Adam", {"lr": 0.05, "amsgrad": True}),
        (FlatSGD, "SGD", {"lr": 0.05, "momentum": 0.9}),
        (FlatAdagrad, "Adagrad", {"lr": 0.1}),
    ],
)
def test_flat_state_dict_hands_over_to_and_from_torch_and_the_readable_class(
    flat_cls, name, kwargs
):
    assert_handover_both_ways(flat_cls, getattr(torch.optim, name), kwargs)
    assert_handover_both_ways(flat_cls, getattr(readable, name), kwargs)


def test_a_loaded_state_dict_gives_each_parameter_its_own_step_count():
    _, optimizer = train(FlatAdam, {"lr": 0.05}, 3)
    steps = [s["step"] for s in optimizer.state_dict()["state"].values()]
    assert len({id(step) for step in steps}) == len(steps)  # copies, not the shared tensor
    assert [float(step) for step in steps] == [3.0] * len(steps)


def test_a_group_with_two_dtypes_is_refused_with_a_clear_message():
    params = [torch.zeros(2, requires_grad=True), torch.zeros(2, dtype=torch.float64)]
    params[1].requires_grad_(True)
    for p in params:
        p.grad = torch.ones_like(p)
    with pytest.raises(ValueError, match="one device with one dtype"):
        FlatAdam(params).step()


def test_flat_adam_refuses_sparse_gradients_with_the_readable_message():
    param = torch.zeros(3, 2, requires_grad=True)
    param.grad = torch.eye(3, 2).to_sparse()
    with pytest.raises(RuntimeError, match="Adam does not support sparse gradients"):
        FlatAdam([param]).step()


@pytest.mark.parametrize(
    "flat_cls, name, kwargs",
    [
        (FlatAdam, "Adam", {"lr": 0.05, "amsgrad": True}),
        (FlatSGD, "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
        (FlatAdagrad, "Adagrad", {"lr": 0.1}),
    ],
)
def test_a_step_run_slice_by_slice_is_still_bit_for_bit(flat_cls, name, kwargs, monkeypatch):
    # Slices of 4 numbers cut across the parameter boundaries of the test problem.
    monkeypatch.setattr(flat_module, "CHUNK", 4)
    report = compare_trajectories(flat_cls, getattr(readable, name), kwargs, kind="complex")
    assert report.max_abs_diff_per_step == [0.0] * 25
    (group,) = report.ours._flat_groups.values()
    assert group.param.numel() > 3 * 4  # four slices or more
