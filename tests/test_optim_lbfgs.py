"""optim_lessons' LBFGS follows torch.optim.LBFGS step for step, line search included.

Each ``step`` runs up to ``max_iter`` iterations, so most runs cap it at 3 to stay quick:
25 steps are then up to 75 L-BFGS iterations per run.
"""

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
    step_lr,
)

from optim_lessons.optimizers import LBFGS
from optim_lessons.optimizers.lbfgs import cubic_minimizer
from optim_lessons.parity import Problem, assert_same_state, compare_trajectories, make_problem

OPTIONS = flag_product(
    line_search_fn=[None, "strong_wolfe"], history_size=[100, 2], maximize=[False, True]
)


def check_parity(kwargs, dtype, kind="dense", steps=25):
    kwargs = {"max_iter": 3, **kwargs}
    problem = problem_for(kwargs, kind, dtype)
    report = compare_trajectories(
        LBFGS, torch.optim.LBFGS, kwargs, steps=steps, dtype=dtype, problem=problem, check=True
    )
    assert_same_state(report.ours, report.reference, dtype)
    assert report.ours_losses == pytest.approx(report.reference_losses, rel=1e-6)
    return report


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", OPTIONS)
def test_lbfgs_matches_torch_for_every_option_combination(kwargs, dtype):
    check_parity(kwargs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_matches_torch_with_twenty_iterations_per_step_until_it_converges(
    line_search_fn, dtype
):
    report = check_parity({"max_iter": 20, "line_search_fn": line_search_fn}, dtype, kind="complex")
    assert report.ours_losses[-1] < 0.5 * report.ours_losses[0]


def wavy_problem(dtype, seed):
    """A bumpy loss, sin^2 ridges on a shallow bowl, whose line searches overshoot and zoom."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(3, generator=generator, dtype=dtype)
    frequency = torch.rand(3, generator=generator, dtype=dtype) * 3 + 0.5

    def loss_fn(ps):
        x = ps[0]
        return (torch.sin(frequency * x) ** 2 + 0.05 * x**2).sum() + x.prod() ** 2

    return Problem([start.requires_grad_(True)], loss_fn)


def rosenbrock_problem(dtype):
    start = torch.tensor([-1.5, 2.0], dtype=dtype)

    def loss_fn(ps):
        x, y = ps[0]
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2

    return Problem([start.requires_grad_(True)], loss_fn)


# Between them these runs take every branch of the strong-Wolfe search: extrapolation, running
# out of evaluations, "f went up" from the third trial, a slope that turns, zooming with the
# safeguard that moves a trial away from the bracket's ends, the high end taking the low end's
# place, and a bracket too short to matter (float32 near a minimum).
@pytest.mark.parametrize(
    "make_problem, lr, dtype",
    [
        (lambda: wavy_problem(torch.float32, 39), 0.03, torch.float32),
        (lambda: wavy_problem(torch.float32, 11), 30.0, torch.float32),
        (lambda: wavy_problem(torch.float64, 39), 0.03, torch.float64),
        (lambda: rosenbrock_problem(torch.float64), 10.0, torch.float64),
        (lambda: rosenbrock_problem(torch.float32), 0.1, torch.float32),
    ],
    ids=["wavy-small-lr-float32", "wavy-large-lr-float32", "wavy-float64", "rosenbrock-float64",
         "rosenbrock-float32"],
)  # fmt: skip
def test_lbfgs_line_search_matches_torch_through_every_branch(make_problem, lr, dtype):
    kwargs = {"lr": lr, "line_search_fn": "strong_wolfe"}
    report = compare_trajectories(
        LBFGS, torch.optim.LBFGS, kwargs, steps=3, dtype=dtype, problem=make_problem(), check=True
    )
    assert_same_state(report.ours, report.reference, dtype)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tolerance_grad": 1e-2},
        {"tolerance_change": 1e-3, "line_search_fn": "strong_wolfe"},
        {"max_iter": 10, "max_eval": 4, "line_search_fn": "strong_wolfe"},
        {"max_iter": 10, "max_eval": 7},
        {"lr": 0.1, "history_size": 1},
    ],
    ids=repr,
)
def test_lbfgs_matches_torch_with_its_stopping_rules(kwargs):
    check_parity(kwargs, torch.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lbfgs_matches_torch_on_complex_parameters(dtype):
    check_parity({"line_search_fn": "strong_wolfe", "maximize": True}, dtype, kind="complex")


def test_lbfgs_matches_torch_with_sparse_gradients():
    check_parity({"line_search_fn": "strong_wolfe"}, torch.float64, kind="sparse")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_matches_torch_with_a_tensor_learning_rate(line_search_fn, dtype):
    check_parity({"lr": torch.tensor(0.5), "line_search_fn": line_search_fn}, dtype)


def test_lbfgs_state_has_torchs_keys_and_value_types():
    for kwargs in [{"max_iter": 3}, {"max_iter": 3, "line_search_fn": "strong_wolfe"}]:
        report = compare_trajectories(LBFGS, torch.optim.LBFGS, kwargs, steps=3)
        (ours,) = report.ours.state.values()
        (reference,) = report.reference.state.values()
        assert list(ours) == list(reference)
        assert list(reference) == [
            "func_evals", "n_iter", "al", "d", "t", "old_dirs", "old_stps", "ro", "H_diag",
            "prev_flat_grad", "prev_loss",
        ]  # fmt: skip
        for key, value in reference.items():
            assert type(ours[key]) is type(value), key
            if isinstance(value, torch.Tensor):
                assert (ours[key].shape, ours[key].dtype, ours[key].device) == (
                    value.shape,
                    value.dtype,
                    value.device,
                )


def test_lbfgs_keeps_only_func_evals_and_n_iter_when_it_starts_at_a_stationary_point():
    report = check_parity({"tolerance_grad": 1e3}, torch.float64, steps=2)
    (ours,) = report.ours.state.values()
    assert ours == {"func_evals": 2, "n_iter": 0}


@pytest.mark.parametrize(
    "kwargs",
    [{"max_iter": 3}, {"max_iter": 3, "line_search_fn": "strong_wolfe", "lr": torch.tensor(0.8)}],
    ids=repr,
)
def test_lbfgs_state_dict_hands_over_to_and_from_torch(kwargs):
    assert_handover_both_ways(LBFGS, torch.optim.LBFGS, kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"lr": -1.0}, {"lr": torch.tensor([0.1, 0.2])}, {"lr": torch.tensor(-0.5)}], ids=repr
)
def test_lbfgs_rejects_invalid_arguments_with_torchs_message(kwargs):
    assert_rejects_like_reference(LBFGS, torch.optim.LBFGS, kwargs)


def test_lbfgs_rejects_several_param_groups_like_torch():
    def build(cls):
        cls([{"params": [torch.zeros(2, requires_grad=True)]}, {"params": [torch.zeros(1)]}])

    assert_same_error(lambda: build(LBFGS), lambda: build(torch.optim.LBFGS))


def test_lbfgs_rejects_a_param_group_added_later_at_step_like_torch():
    def step_with_two_groups(cls):
        optimizer = cls([torch.zeros(2, requires_grad=True)])
        optimizer.add_param_group({"params": [torch.zeros(1, requires_grad=True)]})
        optimizer.step(lambda: 0.0)

    assert_same_error(
        lambda: step_with_two_groups(LBFGS), lambda: step_with_two_groups(torch.optim.LBFGS)
    )


@pytest.mark.parametrize("line_search_fn", ["backtracking", "Strong_Wolfe"])
def test_lbfgs_rejects_unknown_line_searches_at_step_like_torch(line_search_fn):
    def step(cls):
        param = torch.ones(2, requires_grad=True)
        optimizer = cls([param], line_search_fn=line_search_fn)

        def closure():
            optimizer.zero_grad()
            loss = (param**2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)

    assert_same_error(lambda: step(LBFGS), lambda: step(torch.optim.LBFGS))


def test_lbfgs_needs_a_closure_like_torch():
    params = [torch.zeros(2, requires_grad=True)]
    assert_same_error(
        lambda: LBFGS(params).step(None), lambda: torch.optim.LBFGS(params).step(None)
    )


def test_lbfgs_with_an_empty_group_returns_the_closures_loss_like_torch():
    assert LBFGS([{"params": []}]).step(lambda: 3.0) == 3.0
    assert torch.optim.LBFGS([{"params": []}]).step(lambda: 3.0) == 3.0


def test_lbfgs_composes_with_an_lr_scheduler_like_torch():
    compare_with_scheduler(
        LBFGS, torch.optim.LBFGS, {"max_iter": 3, "line_search_fn": "strong_wolfe"}, step_lr
    )


def climbing_run(kind, dtype, max_iter, steps, check=False):
    """maximize=True on the loss itself (not negated): the run climbs to infinity and beyond."""
    kwargs = {"max_iter": max_iter, "line_search_fn": "strong_wolfe", "maximize": True}
    problem = make_problem(kind, dtype)
    return compare_trajectories(
        LBFGS, torch.optim.LBFGS, kwargs, steps=steps, dtype=dtype, problem=problem, check=check
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["dense", "complex"])
@pytest.mark.parametrize("max_iter", [3, 20])
def test_lbfgs_matches_torch_on_a_run_that_diverges(kind, dtype, max_iter):
    # The losses overflow on the way (1e211 in float64, inf, then NaN); the line search meets
    # inf - inf in its cubic and must fall back to the bracket's midpoint as torch's does.
    report = climbing_run(kind, dtype, max_iter, steps=8)
    ours, reference = torch.tensor(report.ours_losses), torch.tensor(report.reference_losses)
    assert not reference.isfinite().all(), "the run should diverge within eight steps"
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=0, equal_nan=True)
    # On every step after which torch's parameters are still finite, ours agree with them.
    finite_steps = int(reference[1:].isfinite().sum())
    climbing_run(kind, dtype, max_iter, steps=finite_steps, check=True)


def test_lbfgs_cubic_step_is_the_midpoint_when_the_cubic_is_not_a_number():
    infinity = torch.tensor(float("inf"), dtype=torch.float64)
    # f1 - f2 = inf - inf: d1 and d2_square are NaN, and the bounds' midpoint is the answer.
    step = cubic_minimizer(0.0, infinity, torch.tensor(-1.0), 2.0, infinity, torch.tensor(-3.0))
    assert step == 1.0
