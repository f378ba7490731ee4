"""Papers' forms of Adam and AdamW, the family's schedules, the Adam chapter's self-checks."""

import math

import pytest
import torch
from _optim_checks import one_cpu_thread  # noqa: F401  (fixture: one CPU thread)

from optim_lessons.exercises.ch06_adam_family import (
    adamw_gap_to_paper,
    check_eps_schedule,
    check_nadam_momentum_decay,
    check_radam_momentum_steps,
    check_torch_weight_decay,
    check_uncorrected_peak,
    eps_hat_adam_update,
    nadam_momentum,
    online_gradient,
    radam_rectification,
    radam_rho,
    run_online_counterexample,
)


def eps_hat_path(eps_hat, steps=50, lr=0.01):
    point = torch.tensor([0.02, -0.005, 0.001], dtype=torch.float64)
    exp_avg, exp_avg_sq = torch.zeros_like(point), torch.zeros_like(point)
    path = []
    for step in range(1, steps + 1):
        eps_hat_adam_update(
            point,
            0.5 * point,
            exp_avg,
            exp_avg_sq,
            step=step,
            lr=lr,
            beta1=0.9,
            beta2=0.999,
            eps_hat=eps_hat,
        )
        path.append(point.clone())
    return torch.stack(path)


def torch_adam_path(eps_at, steps=50, lr=0.01):
    point = torch.tensor([0.02, -0.005, 0.001], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([point], lr=lr)
    path = []
    for step in range(1, steps + 1):
        optimizer.param_groups[0]["eps"] = eps_at(step)
        point.grad = 0.5 * point.detach()
        optimizer.step()
        path.append(point.detach().clone())
    return torch.stack(path)


def test_eps_hat_form_without_eps_is_torch_adam_without_eps():
    torch.testing.assert_close(eps_hat_path(0.0), torch_adam_path(lambda t: 0.0))


def test_eps_hat_form_is_torch_adam_with_eps_divided_by_the_root_bias_correction():
    ours = eps_hat_path(1e-3)
    torch.testing.assert_close(ours, torch_adam_path(lambda t: 1e-3 / math.sqrt(1 - 0.999**t)))
    assert (ours - torch_adam_path(lambda t: 1e-3)).abs().max() > 1e-4  # a constant eps is not


def test_paper_adamw_is_torch_adamw_with_weight_decay_lambda_over_alpha():
    assert adamw_gap_to_paper(1e-3, 1.0, alpha=1e-3, paper_weight_decay=1e-3) < 1e-12
    assert adamw_gap_to_paper(1e-3, 1e-3, alpha=1e-3, paper_weight_decay=1e-3) > 1e-2


def test_torch_adamw_decay_grows_with_lr_while_the_papers_does_not():
    same_decay = adamw_gap_to_paper(
        1e-2, 0.1, alpha=1e-3, paper_weight_decay=1e-3, zero_gradients=True
    )
    assert same_decay < 1e-12  # lr 1e-2 with weight_decay lambda / 1e-2 decays as the paper
    tenfold = adamw_gap_to_paper(
        1e-2, 1.0, alpha=1e-3, paper_weight_decay=1e-3, zero_gradients=True
    )
    assert tenfold > 0.1


def test_nadam_momentum_is_the_schedule_torch_nadam_multiplies_into_mu_product():
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.NAdam([x], momentum_decay=0.01)
    product = 1.0
    for step in range(1, 31):
        x.grad = torch.ones_like(x)
        optimizer.step()
        product *= nadam_momentum(step, 0.9, 0.01)
        assert optimizer.state[x]["mu_product"].item() == pytest.approx(product, rel=1e-5)
    steps = torch.tensor([1.0, 250.0, 1e6], dtype=torch.float64)
    torch.testing.assert_close(
        nadam_momentum(steps),
        torch.tensor([nadam_momentum(1), 0.9 * (1 - 0.48), 0.9]).to(torch.float64),
        rtol=1e-6,
        atol=1e-9,
    )


@pytest.mark.parametrize("beta2", [0.999, 0.99])
def test_radam_steps_on_a_constant_gradient_are_lr_times_the_rectification(beta2):
    lr, gradient = 1e-3, 3.0
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.RAdam([x], lr=lr, betas=(0.9, beta2))
    for step in range(1, 301):
        before = x.item()
        x.grad = torch.full_like(x, gradient)
        optimizer.step()
        move = (before - x.item()) / lr
        if radam_rho(step, beta2) > 5:
            assert move == pytest.approx(radam_rectification(step, beta2), rel=1e-6)
        else:  # a momentum step: lr * m_hat = lr * gradient
            assert move == pytest.approx(gradient, rel=1e-9)


def test_radam_rho_starts_at_one_and_tends_to_rho_infinity():
    assert radam_rho(1, 0.999) == pytest.approx(1.0)
    assert radam_rho(100_000, 0.99) == pytest.approx(2 / 0.01 - 1)


def test_radam_rectification_is_undefined_until_rho_exceeds_four_and_tends_to_one():
    values = radam_rectification(torch.arange(1, 6, dtype=torch.float64), 0.999)
    assert torch.isnan(values[:4]).all() and values[4] > 0
    assert math.isnan(radam_rectification(4, 0.999))
    assert radam_rectification(100_000, 0.99) == pytest.approx(1.0)


def test_online_problem_has_a_positive_average_slope():
    slopes = [online_gradient(step) for step in range(1, 102)]
    assert sum(slopes) > 0 and slopes[0] == 1010.0 and slopes[1] == -10.0


def test_adam_drifts_to_the_worst_point_of_the_online_problem_and_amsgrad_does_not():
    adam = run_online_counterexample(torch.optim.Adam, steps=3000, betas=(0.9, 0.99))
    amsgrad = run_online_counterexample(
        torch.optim.Adam, steps=3000, betas=(0.9, 0.99), amsgrad=True
    )
    assert adam.points[-505:].mean() > 0.9
    assert amsgrad.points[-505:].mean() < -0.5
    assert (amsgrad.second_moments.diff() >= 0).all()  # a running maximum never decreases
    assert (adam.second_moments.diff() < 0).any()  # Adam's average forgets


def test_check_uncorrected_peak_accepts_the_peak_and_rejects_a_neighbour(capsys):
    factors = [(1 - 0.9**t) / math.sqrt(1 - 0.999**t) for t in range(1, 200)]
    peak = max(range(len(factors)), key=factors.__getitem__) + 1
    check_uncorrected_peak(peak, factors[peak - 1])
    assert "Right" in capsys.readouterr().out
    with pytest.raises(AssertionError):
        check_uncorrected_peak(peak + 1, factors[peak])
    with pytest.raises(AssertionError):
        check_uncorrected_peak(peak, 3.16)


def test_check_eps_schedule_accepts_the_shrinking_eps_and_rejects_a_constant_one(capsys):
    check_eps_schedule(lambda t: 1e-3 / math.sqrt(1 - 0.999**t))
    assert "Same path" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="differ"):
        check_eps_schedule(lambda t: 1e-3)


def test_check_torch_weight_decay_accepts_lambda_over_lr_and_rejects_lambda(capsys):
    check_torch_weight_decay(1e-3, 0.25)
    check_torch_weight_decay(3e-3, 2.5e-4 / 3e-3)
    assert capsys.readouterr().out.count("Right") == 2
    with pytest.raises(AssertionError, match="paper"):
        check_torch_weight_decay(1e-3, 2.5e-4)
    with pytest.raises(AssertionError):
        check_torch_weight_decay(3e-3, 0.25)


def test_check_nadam_momentum_decay_wants_the_smallest_decay_that_reaches_the_target(capsys):
    smallest = math.log(2 / 9) / (1000 * math.log(0.96))
    check_nadam_momentum_decay(smallest * (1 + 1e-9))
    assert "Right" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="only"):
        check_nadam_momentum_decay(4e-3)
    with pytest.raises(AssertionError, match="already"):
        check_nadam_momentum_decay(0.05)


def test_check_radam_momentum_steps_counts_torchs_momentum_steps(capsys):
    check_radam_momentum_steps({0.999: 5, 0.9: 5, 0.7: 9, 0.6: -1})
    assert "Right" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="0.999"):
        check_radam_momentum_steps({0.999: 4})  # the paper's threshold, not torch's
    with pytest.raises(AssertionError):
        check_radam_momentum_steps({0.6: 200})
