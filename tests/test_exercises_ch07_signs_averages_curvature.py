"""Rprop with weight-backtracking, the state recorders, and the self-checks of the chapter on
Rprop, ASGD and L-BFGS."""

import copy
import doctest

import pytest
import torch
from _optim_checks import one_cpu_thread  # noqa: F401  (fixture: one CPU thread)
from torch import nn

from optim_lessons.exercises import attempt
from optim_lessons.exercises import ch07_signs_averages_curvature as exercises_curvature
from optim_lessons.exercises.ch07_signs_averages_curvature import (
    PaperRprop,
    check_asgd_full_average,
    check_averaged_copy,
    check_lbfgs_precision,
    check_rprop_crossing,
    check_steps_to_cap,
)
from optim_lessons.playground.probes import record_state, watch
from optim_lessons.playground.surfaces import SURFACES, run_on_surface


def points_on(surface, optimizer_cls, steps, **kwargs):
    """The iterates of a hand-written loop, to compare the recorders against."""
    point = SURFACES[surface].start_tensor().requires_grad_(True)
    optimizer = optimizer_cls([point], **kwargs)
    points, states = [point.detach().clone()], []
    for _ in range(steps):
        optimizer.zero_grad()
        SURFACES[surface](point).backward()
        optimizer.step()
        points.append(point.detach().clone())
        states.append({k: v.clone() for k, v in optimizer.state[point].items()})
    return torch.stack(points), states


def test_module_examples_run():
    failures, _ = doctest.testmod(exercises_curvature)
    assert failures == 0


def test_paper_rprop_matches_torch_rprop_while_no_gradient_changes_sign():
    # On a linear loss the gradient never changes: the two variants cannot differ.
    paths = []
    for cls in (torch.optim.Rprop, PaperRprop):
        weight = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
        optimizer = cls([weight], lr=0.05)
        path = []
        for _ in range(30):
            optimizer.zero_grad()
            (weight * torch.tensor([2.0, -0.5, 1.0], dtype=torch.float64)).sum().backward()
            optimizer.step()
            path.append(weight.detach().clone())
        paths.append(torch.stack(path))
    assert torch.equal(paths[0], paths[1])


def test_paper_rprop_agrees_with_torch_on_the_bowl_until_the_first_sign_flip():
    torch_points, torch_states = points_on("bowl", torch.optim.Rprop, 40, lr=0.01)
    paper_points, _ = points_on("bowl", PaperRprop, 40, lr=0.01)
    flipped = [
        step for step, state in enumerate(torch_states, start=1) if (state["prev"] == 0).any()
    ]
    first_flip = flipped[0]
    assert first_flip > 5
    assert torch.equal(torch_points[:first_flip], paper_points[:first_flip])
    assert not torch.equal(torch_points, paper_points)


def test_paper_rprop_takes_the_last_move_back_after_a_sign_flip():
    # f(w) = w^2 / 2 from w = 1 with a large first step: the step overshoots past 0, the
    # gradient flips, and the weight must return to where it was before that step.
    weight = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    optimizer = PaperRprop([weight], lr=0.6)
    values = [weight.item()]
    for _ in range(3):
        optimizer.zero_grad()
        (weight**2 / 2).sum().backward()
        optimizer.step()
        values.append(weight.item())
    # step 1: 1 -> 0.4 (same sign, step 0.6); step 2: 0.4 -> -0.32 (step 0.72, overshoot);
    # step 3: the sign flipped, so the weight goes back to 0.4 and the step size halves.
    assert values[:3] == pytest.approx([1.0, 0.4, 0.4 - 0.72])
    assert values[3] == pytest.approx(0.4)
    assert optimizer.state[weight]["step_size"].item() == pytest.approx(0.36)
    assert optimizer.state[weight]["prev"].item() == 0


def test_torch_rprop_waits_instead_of_going_back_after_a_sign_flip():
    weight = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Rprop([weight], lr=0.6)
    values = [weight.item()]
    for _ in range(3):
        optimizer.zero_grad()
        (weight**2 / 2).sum().backward()
        optimizer.step()
        values.append(weight.item())
    assert values[3] == pytest.approx(values[2])  # no move at all on the flip


def test_paper_rprop_keeps_the_step_size_on_the_step_after_a_flip():
    weight = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    optimizer = PaperRprop([weight], lr=0.6)
    sizes = []
    for _ in range(4):
        optimizer.zero_grad()
        (weight**2 / 2).sum().backward()
        optimizer.step()
        sizes.append(optimizer.state[weight]["step_size"].item())
    assert sizes == pytest.approx([0.6, 0.72, 0.36, 0.36])


def test_paper_rprop_respects_the_step_size_bounds():
    weight = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    optimizer = PaperRprop([weight], lr=0.1, step_sizes=(1e-6, 0.15))
    for _ in range(10):
        optimizer.zero_grad()
        weight.sum().backward()
        optimizer.step()
    assert optimizer.state[weight]["step_size"].item() == pytest.approx(0.15)


def test_paper_rprop_rejects_etas_like_torch():
    with pytest.raises(ValueError, match="Invalid eta values: 1.5, 1.2"):
        PaperRprop([torch.zeros(1, requires_grad=True)], etas=(1.5, 1.2))


def test_record_state_returns_the_run_and_the_state_after_every_step():
    trajectory, records = record_state("bowl", torch.optim.Rprop, ["step_size", "prev"], 25)
    points, states = points_on("bowl", torch.optim.Rprop, 25)
    assert torch.equal(trajectory.points, points)
    assert trajectory.optimizer == "Rprop"
    assert records["step_size"].shape == (25, 2)
    for step, state in enumerate(states):
        assert torch.equal(records["step_size"][step], state["step_size"])
        assert torch.equal(records["prev"][step], state["prev"])


def test_record_state_gives_the_same_noisy_run_as_run_on_surface():
    settings = dict(lr=0.05, t0=10, noise=2.0, seed=3)
    trajectory, records = record_state("bowl", torch.optim.ASGD, ["ax"], 60, **settings)
    plain = run_on_surface("bowl", torch.optim.ASGD, 60, **settings)
    assert torch.equal(trajectory.points, plain.points)
    # From step t0 + 2 on, ax is the mean of the iterates since then (mu is float32: rounding).
    expected = trajectory.points[12:].mean(dim=0)
    assert torch.allclose(records["ax"][-1], expected, atol=1e-7)


def test_record_state_keeps_numbers_such_as_the_evaluation_count():
    _, records = record_state(
        "rosenbrock", torch.optim.LBFGS, ["func_evals", "n_iter"], 4,
        line_search_fn="strong_wolfe", max_iter=1, max_eval=25,
    )  # fmt: skip
    assert records["n_iter"][:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    evaluations = records["func_evals"][:, 0]
    assert evaluations.shape == (4,)
    assert bool((evaluations.diff() >= 2).all())  # one at the start of step, one or more searching


def test_watch_measures_after_every_kth_step_until_stopped():
    weight = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=0.1)
    watched = watch(optimizer, lambda: weight.detach().sum().item(), every=3)
    for step in range(1, 10):
        optimizer.zero_grad()
        (weight - 1).pow(2).sum().backward()
        optimizer.step()
        if step == 7:
            watched.stop()
    assert watched.steps == [3, 6]
    assert len(watched.values) == 2 and watched.values[0] < watched.values[1]


def test_watch_rejects_a_period_below_one():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="every must be a positive integer"):
        watch(optimizer, lambda: 0, every=0)


def test_check_steps_to_cap_accepts_the_count_and_rejects_its_neighbours(capsys):
    # Step 1 keeps lr (nothing to compare with), so after t steps the size is 0.01 * 1.2**(t - 1):
    # 0.01 * 1.2**46 < 50 <= 0.01 * 1.2**47, reached at step 48.
    check_steps_to_cap(48)
    assert "Right: 48 steps" in capsys.readouterr().out
    for wrong in (47, 49):
        with pytest.raises(AssertionError, match="is not it"):
            check_steps_to_cap(wrong)


def averaged_copy(model, optimizer):
    averaged = copy.deepcopy(model)
    with torch.no_grad():
        for original, twin in zip(model.parameters(), averaged.parameters(), strict=True):
            twin.copy_(optimizer.state[original]["ax"])
    return averaged


def test_check_averaged_copy_accepts_a_copy_that_holds_ax(capsys):
    check_averaged_copy(averaged_copy)
    assert "the copy holds the average" in capsys.readouterr().out


def test_check_averaged_copy_rejects_swapping_the_average_into_the_model_itself():
    def in_place(model, optimizer):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(optimizer.state[p]["ax"])
        return copy.deepcopy(model)

    with pytest.raises(AssertionError, match="of the original model changed"):
        check_averaged_copy(in_place)


def test_check_averaged_copy_rejects_a_plain_copy_of_the_parameters():
    with pytest.raises(AssertionError, match="is not optimizer.state"):
        check_averaged_copy(lambda model, optimizer: copy.deepcopy(model))
    with pytest.raises(AssertionError, match="return a new model"):
        check_averaged_copy(lambda model, optimizer: model)
    with pytest.raises(AssertionError, match="nn.Module"):
        check_averaged_copy(lambda model, optimizer: [p for p in model.parameters()])


def test_check_lbfgs_precision_rejects_the_default_tolerances():
    with pytest.raises(AssertionError, match="must fall below"):
        check_lbfgs_precision({"line_search_fn": "strong_wolfe"})


def test_check_lbfgs_precision_rejects_switching_off_only_one_tolerance():
    for tolerance in ("tolerance_change", "tolerance_grad"):
        with pytest.raises(AssertionError, match="must fall below"):
            check_lbfgs_precision({"line_search_fn": "strong_wolfe", tolerance: 0})


def test_check_lbfgs_precision_accepts_both_tolerances_switched_off(capsys):
    settings = {"line_search_fn": "strong_wolfe", "tolerance_change": 0, "tolerance_grad": 0}
    check_lbfgs_precision(settings)
    assert "Right: f = " in capsys.readouterr().out


def test_check_lbfgs_precision_reports_a_diverging_setting():
    with pytest.raises(AssertionError):
        check_lbfgs_precision({"lr": 10.0})


def test_paper_rprop_trains_a_small_network():
    torch.manual_seed(0)
    inputs, targets = torch.randn(128, 4), torch.randn(128, 1)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    optimizer = PaperRprop(model.parameters(), lr=0.01)
    losses = []
    for _ in range(50):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_the_crossing_check_wants_step_19():
    assert attempt(check_rprop_crossing, ...) is False
    with pytest.raises(AssertionError):
        check_rprop_crossing(20)  # the step on which the sign flip is seen, one too late
    check_rprop_crossing(19)


def test_the_full_average_check_wants_t0_minus_one():
    with pytest.raises(AssertionError):
        check_asgd_full_average(0)
    check_asgd_full_average(-1)
