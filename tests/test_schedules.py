"""optim_lessons.playground.schedules: recording, drawing and building learning-rate schedules."""

from __future__ import annotations

import math
import warnings

import matplotlib
import pytest
import torch
from torch.optim import lr_scheduler

from optim_lessons.playground.schedules import (
    SCHEDULE_NAMES,
    animate_schedules,
    check_schedule,
    make_scheduler,
    plateau_metric,
    plot_schedules,
    record_lrs,
    schedule_explorer,
    stand_in_optimizer,
)

matplotlib.use("Agg")


def lrs_seen_by_a_real_training_loop(make, steps: int) -> list[float]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = make(optimizer)
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.zero_grad()
        model(torch.randn(4, 3)).pow(2).mean().backward()
        optimizer.step()
        scheduler.step()
    return seen


@pytest.mark.parametrize(
    "make",
    [
        lambda opt: lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
        lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=10),
        lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=12),
        lambda opt: lr_scheduler.SequentialLR(
            opt,
            [
                lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=4),
                lr_scheduler.ExponentialLR(opt, 0.9),
            ],
            milestones=[4],
        ),
    ],
    ids=["StepLR", "CosineAnnealingLR", "OneCycleLR", "warmup-SequentialLR"],
)
def test_record_lrs_equals_the_rates_a_real_training_loop_uses(make):
    assert record_lrs(make, 12, lr=0.1) == lrs_seen_by_a_real_training_loop(make, 12)


def test_record_lrs_raises_no_step_order_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        record_lrs(lambda opt: lr_scheduler.StepLR(opt, step_size=2), 5)


def test_record_lrs_gives_the_value_before_each_step():
    values = record_lrs(lambda opt: lr_scheduler.StepLR(opt, step_size=2, gamma=0.1), 5, lr=1.0)
    assert values == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])


def test_record_lrs_with_step_every_holds_each_rate_for_a_whole_epoch():
    values = record_lrs(
        lambda opt: lr_scheduler.StepLR(opt, step_size=1, gamma=0.5), 7, lr=1.0, step_every=3
    )
    assert values == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25])


def test_record_lrs_with_step_every_reports_one_metric_per_epoch():
    values = record_lrs(
        lambda opt: lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0),
        8,
        lr=1.0,
        metrics=[2.0, 3.0, 1.0, 1.0],
        step_every=2,
    )
    assert values == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5])


def test_record_lrs_feeds_one_metric_per_step_to_reduce_lr_on_plateau():
    # The loss improves for 4 steps, then is flat: with patience 1 the rate halves after the
    # second flat step and again two steps later.
    metric = [4.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    values = record_lrs(
        lambda opt: lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1),
        8,
        lr=1.0,
        metrics=metric,
    )
    assert values == pytest.approx([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5])


def test_record_lrs_wants_a_metric_for_every_step():
    with pytest.raises(ValueError, match="metrics has 2 values"):
        record_lrs(lambda opt: lr_scheduler.ReduceLROnPlateau(opt), 3, metrics=[1.0, 2.0])


def test_record_lrs_reads_adams_beta1_cycled_by_one_cycle():
    adam = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.01)
    beta1 = record_lrs(
        lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=10),
        10,
        key="betas",
        optimizer=adam,
    )
    assert beta1[0] == pytest.approx(0.95)
    assert min(beta1) == pytest.approx(0.85, abs=0.01)


def test_record_lrs_refuses_an_optimizer_whose_parameters_have_gradients():
    weight = torch.zeros(2, requires_grad=True)
    weight.grad = torch.ones(2)
    with pytest.raises(ValueError, match="without gradients"):
        record_lrs(
            lambda opt: lr_scheduler.StepLR(opt, 1), 3, optimizer=torch.optim.SGD([weight], lr=0.1)
        )


def test_stand_in_optimizer_never_moves_its_parameter():
    optimizer = stand_in_optimizer(lr=1.0, groups=2)
    record_lrs(lambda opt: lr_scheduler.StepLR(opt, 1), 4, optimizer=optimizer)
    for group in optimizer.param_groups:
        assert torch.equal(group["params"][0], torch.zeros(1))


def test_make_scheduler_warmup_cosine_starts_low_peaks_after_warmup_and_decays():
    values = record_lrs(
        lambda opt: make_scheduler("warmup_cosine", opt, total_steps=20, warmup_steps=5), 20, lr=0.1
    )
    assert values[0] == pytest.approx(0.1 / 25)
    assert max(values) == pytest.approx(0.1)
    assert values.index(max(values)) == 5
    assert values[6:] == sorted(values[6:], reverse=True)


def test_make_scheduler_cosine_follows_the_closed_form():
    total = 16
    values = record_lrs(
        lambda opt: make_scheduler("cosine", opt, total_steps=total, eta_min=0.01), total, lr=0.1
    )
    closed_form = [
        0.01 + 0.5 * (0.1 - 0.01) * (1 + math.cos(math.pi * t / total)) for t in range(total)
    ]
    assert values == pytest.approx(closed_form, rel=1e-12)


def test_make_scheduler_one_cycle_peaks_at_pct_start():
    values = record_lrs(
        lambda opt: make_scheduler("one_cycle", opt, total_steps=100, pct_start=0.25), 100, lr=0.2
    )
    assert values.index(max(values)) == 24  # the warm-up phase ends at step pct_start * total - 1
    assert max(values) == pytest.approx(0.2)


def test_make_scheduler_knows_every_listed_name_and_refuses_others():
    for name in SCHEDULE_NAMES:
        metric = plateau_metric(10) if name == "plateau" else None
        assert (
            len(
                record_lrs(
                    lambda opt, name=name: make_scheduler(name, opt, total_steps=10),
                    10,
                    metrics=metric,
                )
            )
            == 10
        )
    with pytest.raises(ValueError, match="Unknown schedule 'linear'"):
        make_scheduler("linear", stand_in_optimizer(), total_steps=10)


def test_plateau_metric_improves_then_stays_flat():
    metric = plateau_metric(30, improve_until=10)
    assert metric[:11] == sorted(metric[:11], reverse=True)
    assert len(set(metric[10:])) == 1


def test_check_schedule_accepts_the_right_formula_and_names_the_first_wrong_step(capsys):
    reference = record_lrs(lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.5), 6, lr=1.0)
    assert check_schedule(lambda step: 0.5**step, reference)
    assert "Correct" in capsys.readouterr().out
    assert not check_schedule(lambda step: 0.5 ** (step + 1), reference)
    assert "step 0" in capsys.readouterr().out
    assert not check_schedule([1.0, 0.5], reference)


def test_plot_schedules_labels_axes_and_draws_one_line_per_schedule():
    ax = plot_schedules({"a": [1.0, 0.5], "b": [0.2, 0.1]}, steps_per_epoch=1)
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert [
        line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")
    ] == ["a", "b"]
    assert ax.get_legend() is not None


def test_animate_schedules_has_one_frame_per_entry():
    frames = [(f"gamma={g}", {"StepLR": [1.0, g, g * g]}) for g in (0.9, 0.5, 0.1)]
    animation = animate_schedules(frames)
    assert len(list(animation.new_frame_seq())) == 3
    assert animation.to_jshtml().count("data:image/png;base64") == 3


def test_schedule_explorer_redraws_for_every_schedule():
    panel = schedule_explorer(epochs=2, steps_per_epoch=10)
    dropdown = panel.children[0].children[0]
    for name in SCHEDULE_NAMES:
        dropdown.value = name  # each change records and redraws the curve; none may raise
    assert dropdown.value == SCHEDULE_NAMES[-1]


@pytest.mark.parametrize("step_size", [0, -3, 2.5])
def test_make_scheduler_step_refuses_a_step_size_that_is_not_a_positive_integer(step_size):
    with pytest.raises(
        ValueError, match=rf"step_size must be a positive integer .*, got {step_size}"
    ):
        make_scheduler("step", stand_in_optimizer(), total_steps=10, step_size=step_size)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_make_scheduler_builds_the_books_classes_not_torchs(name):
    scheduler = make_scheduler(name, stand_in_optimizer(), total_steps=30)
    assert type(scheduler).__module__.startswith("optim_lessons.schedulers")


@pytest.mark.parametrize(
    ("name", "torch_equivalent"),
    [
        ("step", lambda opt: lr_scheduler.StepLR(opt, step_size=10, gamma=0.1)),
        ("cosine", lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=30)),
        ("warm_restarts", lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=10)),
        ("one_cycle", lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=30)),
    ],
)
def test_make_scheduler_draws_the_same_rates_as_torchs_class(name, torch_equivalent):
    ours = record_lrs(lambda opt: make_scheduler(name, opt, total_steps=30), 30, lr=0.1)
    assert ours == record_lrs(torch_equivalent, 30, lr=0.1)


def test_make_scheduler_one_cycle_three_phase_returns_to_the_start_before_annealing():
    values = record_lrs(
        lambda opt: make_scheduler(
            "one_cycle", opt, total_steps=100, three_phase=True, anneal_strategy="linear"
        ),
        100,
        lr=0.1,
    )
    assert values[0] == pytest.approx(0.1 / 25)
    assert values[58] == pytest.approx(0.1 / 25)  # the triangle ends at 2 * 0.3 * 100 - 2
    assert values[-1] < values[0] / 1000


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_make_scheduler_wsd_warms_up_holds_and_decays_over_the_last_fifth(shape):
    values = record_lrs(
        lambda opt: make_scheduler(
            "wsd", opt, total_steps=50, warmup_steps=5, decay_shape=shape, eta_min=0.01
        ),
        51,
        lr=0.1,
    )
    assert values[0] == 0.0 and values[5] == pytest.approx(0.1)
    assert values[5:40] == [values[5]] * 35  # stable until the last 10 steps
    assert values[39] > values[45] > values[50] == pytest.approx(0.01)


def test_make_scheduler_warm_restarts_restarts_after_step_size_steps_then_t_mult_longer():
    values = record_lrs(
        lambda opt: make_scheduler("warm_restarts", opt, total_steps=40, step_size=5, T_mult=2),
        40,
        lr=0.1,
    )
    restarts = [t for t in range(1, 40) if values[t] > values[t - 1]]
    assert restarts == [5, 15, 35]
