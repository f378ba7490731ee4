"""optim_lessons' SparseAdam follows torch.optim.SparseAdam step for step, with its contract."""

import copy
import inspect
import re

import pytest
import torch
from _optim_checks import (
    BETAS_AND_EPS,
    DTYPES,
    assert_handover_both_ways,
    assert_rejects_like_reference,
    assert_same_error,
    compare_with_scheduler,
    flag_product,
    problem_for,
)

from optim_lessons.optimizers import SparseAdam
from optim_lessons.parity import Problem, assert_same_state, compare_trajectories

OPTIONS = flag_product(maximize=[False, True], lr=[0.01, 0.1])


def two_tables(dtype):
    """Two embedding tables looked up sparsely, so that each can sit in its own param group;
    returns the problem and the rows it looks up."""
    generator = torch.Generator().manual_seed(1)
    tables = [torch.randn(20, 4, generator=generator, dtype=dtype) for _ in range(2)]
    index = torch.randint(0, 20, (12,), generator=generator)
    targets = torch.randn(12, 4, generator=generator, dtype=dtype)

    def loss_fn(ps):
        rows = [torch.nn.functional.embedding(index, p, sparse=True) for p in ps]
        return ((torch.tanh(rows[0]) * rows[1] - targets) ** 2).mean()

    return Problem([t.requires_grad_(True) for t in tables], loss_fn), index


def run_side_by_side(kwargs, *, dtype, problem=None, groups=None):
    """25 steps of ours and torch's from the same start, every step checked."""
    problem = problem or problem_for(kwargs, "sparse", dtype)
    return compare_trajectories(
        SparseAdam, torch.optim.SparseAdam, kwargs, steps=25, problem=problem, dtype=dtype,
        groups=groups, check=True,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", OPTIONS)
def test_sparse_adam_matches_torch_for_every_option_combination(options, dtype):
    report = run_side_by_side(options, dtype=dtype)
    assert report.ours_params[0].grad.is_sparse
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("numbers", BETAS_AND_EPS)
def test_sparse_adam_matches_torch_for_other_betas_and_eps(numbers, dtype):
    report = run_side_by_side(dict(numbers, lr=0.05), dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_adam_matches_torch_with_several_param_groups(dtype):
    groups = [{"lr": 0.05, "betas": (0.8, 0.99)}, {"eps": 1e-3, "maximize": True}]
    problem, _ = two_tables(dtype)
    report = run_side_by_side({"lr": 0.01}, problem=problem, groups=groups, dtype=dtype)
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lr", [torch.tensor(0.05), torch.tensor([0.05])], ids=["0-dim", "1-elem"])
def test_sparse_adam_matches_torch_with_a_tensor_learning_rate(lr, dtype):
    run_side_by_side({"lr": lr}, dtype=dtype)


def test_sparse_adam_leaves_the_rows_outside_the_gradient_alone():
    problem, index = two_tables(torch.float64)
    looked_up = torch.zeros(20, dtype=torch.bool)
    looked_up[index] = True
    assert 0 < looked_up.sum() < 20
    report = run_side_by_side({"lr": 0.05}, problem=problem, dtype=torch.float64)
    for start, param in zip(problem.params, report.ours_params, strict=True):
        state = report.ours.state[param]
        assert torch.equal(param.detach()[~looked_up], start.detach()[~looked_up])
        assert not state["exp_avg"][~looked_up].any() and not state["exp_avg_sq"][~looked_up].any()
        assert state["exp_avg_sq"][looked_up].all()


def test_sparse_adam_skips_an_empty_gradient_but_still_counts_the_step_like_torch():
    runs = []
    for cls in (SparseAdam, torch.optim.SparseAdam):
        param = torch.ones(4, 2, requires_grad=True)
        optimizer = cls([param], lr=0.1)
        for grad in (torch.ones(4, 2).to_sparse(), torch.zeros(4, 2).to_sparse()):
            param.grad = grad
            optimizer.step()
        runs.append((optimizer, param))
    (ours, ours_param), (reference, reference_param) = runs
    assert ours.state[ours_param]["step"] == reference.state[reference_param]["step"] == 2
    assert torch.equal(ours_param, reference_param)
    assert_same_state(ours, reference)


def test_sparse_adam_has_torchs_signature_and_defaults():
    ours = inspect.signature(SparseAdam).parameters
    reference = inspect.signature(torch.optim.SparseAdam).parameters
    expected = [(p.name, p.kind, p.default) for p in reference.values()]
    assert [(p.name, p.kind, p.default) for p in ours.values()] == expected


def test_sparse_adam_state_has_torchs_keys_types_shapes_and_dtypes():
    report = run_side_by_side({"lr": 0.05}, dtype=torch.float32)
    ours = report.ours.state_dict()["state"][0]
    reference = report.reference.state_dict()["state"][0]
    assert list(ours) == list(reference) == ["step", "exp_avg", "exp_avg_sq"]
    assert type(ours["step"]) is type(reference["step"]) is int and ours["step"] == 25
    for key in ("exp_avg", "exp_avg_sq"):
        assert (ours[key].shape, ours[key].dtype, ours[key].layout) == (
            reference[key].shape, reference[key].dtype, reference[key].layout
        )


@pytest.mark.parametrize("kwargs", [{"lr": 0.05}, {"lr": 0.05, "maximize": True}], ids=repr)
def test_sparse_adam_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(SparseAdam, torch.optim.SparseAdam, kwargs, kind="sparse")


def test_sparse_adam_loads_a_state_dict_without_maximize_like_torch():
    report = run_side_by_side({"lr": 0.05}, dtype=torch.float64)
    old_style = report.reference.state_dict()
    for group in old_style["param_groups"]:
        del group["maximize"]
    for optimizer in (report.ours, report.reference):
        optimizer.load_state_dict(copy.deepcopy(old_style))
    problem = problem_for({}, "sparse")
    for optimizer, params in ((report.ours, report.ours_params),
                              (report.reference, report.reference_params)):
        optimizer.zero_grad()
        problem.loss_fn(params).backward()
        optimizer.step()
    torch.testing.assert_close(report.ours_params[0], report.reference_params[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": 0.0}, "Invalid learning rate: 0.0"),
        ({"lr": -1.0}, "Invalid learning rate: -1.0"),
        ({"lr": torch.tensor([0.1, 0.2])}, "Tensor lr must be 1-element"),
        ({"eps": 0.0}, "Invalid epsilon value: 0.0"),
        ({"betas": (1.0, 0.0)}, "Invalid beta parameter at index 0: 1.0"),
        ({"betas": (0.0, 1.0)}, "Invalid beta parameter at index 1: 1.0"),
    ],
    ids=repr,
)
def test_sparse_adam_rejects_invalid_arguments_with_torchs_message(kwargs, message):
    assert_rejects_like_reference(SparseAdam, torch.optim.SparseAdam, kwargs, message)


@pytest.mark.parametrize(
    "make_params, message",
    [
        (
            lambda: [torch.zeros(2, requires_grad=True), torch.zeros(3).to_sparse()],
            "Sparse params at indices [[0, 1]]: SparseAdam requires dense parameter tensors",
        ),
        (
            lambda: [{"params": [torch.zeros(2)]},
                     {"params": [torch.zeros(2).to_sparse(), torch.zeros(2, dtype=torch.cfloat)]}],
            "Sparse params at indices [[1, 0]]: SparseAdam requires dense parameter tensors",
        ),
        (
            lambda: [torch.zeros(2, dtype=torch.cfloat), torch.zeros(2, dtype=torch.cdouble)],
            "Complex params at indices [[0, 0], [0, 1]]: "
            "SparseAdam does not support complex parameters",
        ),
    ],
    ids=["sparse", "sparse-before-complex", "complex"],
)
def test_sparse_adam_rejects_sparse_and_complex_parameters_with_torchs_message(
    make_params, message
):
    with pytest.raises(ValueError, match=re.escape(message)):
        SparseAdam(make_params())
    assert_same_error(
        lambda: SparseAdam(make_params()), lambda: torch.optim.SparseAdam(make_params())
    )


def test_sparse_adam_rejects_dense_gradients_like_torch():
    def step_with_dense_grad(cls):
        first, second = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
        first.grad, second.grad = torch.ones(3).to_sparse(), torch.ones(3)
        optimizer = cls([first, second])
        try:
            optimizer.step()
        finally:  # the first parameter's count moved before the dense gradient stopped the step
            step_with_dense_grad.counts.append(optimizer.state[first]["step"])

    step_with_dense_grad.counts = []
    message = assert_same_error(
        lambda: step_with_dense_grad(SparseAdam),
        lambda: step_with_dense_grad(torch.optim.SparseAdam),
    )
    assert message == "SparseAdam does not support dense gradients, please consider Adam instead"
    assert step_with_dense_grad.counts == [1, 1]


def test_sparse_adam_composes_with_an_lr_scheduler_like_torch():
    def make_scheduler(optimizer):
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=25)

    compare_with_scheduler(
        SparseAdam, torch.optim.SparseAdam, {"lr": 0.05}, make_scheduler, kind="sparse"
    )
