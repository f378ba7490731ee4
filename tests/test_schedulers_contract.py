"""optim_lessons.schedulers raises and warns as torch.optim.lr_scheduler does, word for word,
and mixes with torch's schedulers and optimizers."""

import warnings

import pytest
import torch
from _scheduler_checks import (
    OURS,
    TORCH,
    assert_same_error,
    make_optimizer,
    raised,
    run_schedule,
    snapshot,
)


def _other_optimizer():
    return torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)


def _adagrad():
    return torch.optim.Adagrad([torch.zeros(2, requires_grad=True)], lr=0.1)


def _step_past(build, steps):
    def run(L, o):
        scheduler = build(L, o)
        for _ in range(steps):
            o.step()
            scheduler.step()
    return run


BAD_INPUT = {
    "LRScheduler-not-an-optimizer": lambda L, o: L.StepLR("not an optimizer", 3),
    "resume-without-initial-lr": lambda L, o: L.StepLR(o, 3, last_epoch=4),
    "LambdaLR-wrong-number-of-lambdas":
        lambda L, o: L.LambdaLR(o, [lambda t: 1.0] * 3),
    "MultiplicativeLR-wrong-number-of-lambdas":
        lambda L, o: L.MultiplicativeLR(o, (lambda t: 1.0,)),
    "MultiplicativeLR-not-callable": lambda L, o: L.MultiplicativeLR(o, 0.9),
    "ConstantLR-factor-above-1": lambda L, o: L.ConstantLR(o, factor=1.5),
    "ConstantLR-negative-factor": lambda L, o: L.ConstantLR(o, factor=-0.1),
    "ConstantLR-factor-0-divides-by-zero-at-total-iters":
        _step_past(lambda L, o: L.ConstantLR(o, factor=0.0, total_iters=2), 3),
    "LinearLR-start-factor-0": lambda L, o: L.LinearLR(o, start_factor=0.0),
    "LinearLR-start-factor-above-1": lambda L, o: L.LinearLR(o, start_factor=1.1),
    "LinearLR-end-factor-above-1": lambda L, o: L.LinearLR(o, end_factor=1.5),
    "CosineAnnealingWarmRestarts-T0-zero": lambda L, o: L.CosineAnnealingWarmRestarts(o, 0),
    "CosineAnnealingWarmRestarts-T0-float":
        lambda L, o: L.CosineAnnealingWarmRestarts(o, 2.5),
    "CosineAnnealingWarmRestarts-T-mult-zero":
        lambda L, o: L.CosineAnnealingWarmRestarts(o, 2, T_mult=0),
    "CosineAnnealingWarmRestarts-T-mult-float":
        lambda L, o: L.CosineAnnealingWarmRestarts(o, 2, T_mult=1.5),
    "CosineAnnealingWarmRestarts-eta-min-string":
        lambda L, o: L.CosineAnnealingWarmRestarts(o, 2, eta_min="0"),
    "CosineAnnealingWarmRestarts-negative-epoch":
        lambda L, o: L.CosineAnnealingWarmRestarts(o, 2).step(-1),
    "CyclicLR-invalid-mode": lambda L, o: L.CyclicLR(o, 0.01, 0.1, mode="sawtooth"),
    "CyclicLR-base-lr-list-too-long": lambda L, o: L.CyclicLR(o, [0.01] * 3, 0.1),
    "CyclicLR-max-lr-list-too-short": lambda L, o: L.CyclicLR(o, 0.01, [0.1]),
    "CyclicLR-momentum-list-too-long":
        lambda L, o: L.CyclicLR(o, 0.01, 0.1, base_momentum=[0.8] * 3),
    "CyclicLR-optimizer-without-momentum": lambda L, o: L.CyclicLR(_adagrad(), 0.01, 0.1),
    "OneCycleLR-without-total-steps-or-epochs": lambda L, o: L.OneCycleLR(o, 0.1),
    "OneCycleLR-epochs-without-steps-per-epoch": lambda L, o: L.OneCycleLR(o, 0.1, epochs=3),
    "OneCycleLR-total-steps-zero": lambda L, o: L.OneCycleLR(o, 0.1, total_steps=0),
    "OneCycleLR-total-steps-float": lambda L, o: L.OneCycleLR(o, 0.1, total_steps=10.0),
    "OneCycleLR-epochs-zero":
        lambda L, o: L.OneCycleLR(o, 0.1, epochs=0, steps_per_epoch=4),
    "OneCycleLR-steps-per-epoch-negative":
        lambda L, o: L.OneCycleLR(o, 0.1, epochs=2, steps_per_epoch=-4),
    "OneCycleLR-pct-start-above-1": lambda L, o: L.OneCycleLR(o, 0.1, 10, pct_start=1.5),
    "OneCycleLR-pct-start-int": lambda L, o: L.OneCycleLR(o, 0.1, 10, pct_start=1),
    "OneCycleLR-unknown-anneal-strategy":
        lambda L, o: L.OneCycleLR(o, 0.1, 10, anneal_strategy="exp"),
    "OneCycleLR-max-lr-list-too-long": lambda L, o: L.OneCycleLR(o, [0.1] * 3, 10),
    "OneCycleLR-optimizer-without-momentum": lambda L, o: L.OneCycleLR(_adagrad(), 0.1, 10),
    "OneCycleLR-step-past-total-steps":
        _step_past(lambda L, o: L.OneCycleLR(o, 0.1, total_steps=5), 6),
    "ReduceLROnPlateau-factor-1": lambda L, o: L.ReduceLROnPlateau(o, factor=1.0),
    "ReduceLROnPlateau-unknown-mode": lambda L, o: L.ReduceLROnPlateau(o, mode="least"),
    "ReduceLROnPlateau-unknown-threshold-mode":
        lambda L, o: L.ReduceLROnPlateau(o, threshold_mode="log"),
    "ReduceLROnPlateau-min-lr-list-too-long":
        lambda L, o: L.ReduceLROnPlateau(o, min_lr=[0.0] * 3),
    "ReduceLROnPlateau-not-an-optimizer": lambda L, o: L.ReduceLROnPlateau([o]),
    "SequentialLR-no-schedulers": lambda L, o: L.SequentialLR(o, [], []),
    "SequentialLR-mismatched-optimizers":
        lambda L, o: L.SequentialLR(o, [L.ConstantLR(o), L.StepLR(_other_optimizer(), 2)], [3]),
    "SequentialLR-with-ReduceLROnPlateau":
        lambda L, o: L.SequentialLR(o, [L.ConstantLR(o), L.ReduceLROnPlateau(o)], [3]),
    "SequentialLR-wrong-number-of-milestones":
        lambda L, o: L.SequentialLR(o, [L.ConstantLR(o), L.StepLR(o, 2)], [3, 5]),
    "SequentialLR-not-a-scheduler": lambda L, o: L.SequentialLR(o, [L.ConstantLR(o), 3], [3]),
    "SequentialLR-hands-over-to-a-chain":
        _step_past(lambda L, o: L.SequentialLR(
            o, [L.ConstantLR(o), L.ChainedScheduler([L.StepLR(o, 2)])], [2]), 3),
    "ChainedScheduler-no-schedulers": lambda L, o: L.ChainedScheduler([]),
    "ChainedScheduler-mismatched-optimizers":
        lambda L, o: L.ChainedScheduler([L.ConstantLR(o), L.StepLR(_other_optimizer(), 2)]),
    "ChainedScheduler-with-ReduceLROnPlateau":
        lambda L, o: L.ChainedScheduler([L.ReduceLROnPlateau(o)]),
    "ChainedScheduler-other-optimizer-given":
        lambda L, o: L.ChainedScheduler([L.ConstantLR(o)], optimizer=_other_optimizer()),
    "SWALR-unknown-anneal-strategy": lambda L, o: L.SWALR(o, 0.05, anneal_strategy="exp"),
    "SWALR-negative-anneal-epochs": lambda L, o: L.SWALR(o, 0.05, anneal_epochs=-1),
    "SWALR-float-anneal-epochs": lambda L, o: L.SWALR(o, 0.05, anneal_epochs=2.0),
    "SWALR-swa-lr-list-too-long": lambda L, o: L.SWALR(o, [0.05] * 3),
}


@pytest.mark.parametrize("build", list(BAD_INPUT.values()), ids=list(BAD_INPUT))
def test_bad_input_raises_what_torch_raises_word_for_word(build):
    assert_same_error(build)


def test_reduce_lr_on_plateau_with_a_group_added_later_raises_like_torch():
    def build(L, o):
        scheduler = L.ReduceLROnPlateau(o, patience=0, min_lr=[0.0, 0.0])
        o.add_param_group({"params": [torch.zeros(1, requires_grad=True)]})
        scheduler.step(1.0)
        scheduler.step(2.0)

    assert "param groups" in assert_same_error(build)


def test_reduce_lr_on_plateau_extends_a_single_min_lr_to_a_new_group_like_torch():
    lrs = []
    for L in (TORCH, OURS):
        optimizer = make_optimizer()
        scheduler = L.ReduceLROnPlateau(optimizer, patience=0, min_lr=0.01)
        optimizer.add_param_group({"params": [torch.zeros(1, requires_grad=True)], "lr": 0.2})
        for metric in (1.0, 2.0, 3.0, 4.0):
            scheduler.step(metric)
        lrs.append((scheduler.get_last_lr(), scheduler.min_lrs))
    assert lrs[0] == lrs[1]


def test_milestones_are_not_checked_for_order_in_torch_or_here():
    """torch documents increasing milestones but checks nothing: neither side raises, and the
    rates agree (a repeated MultiStepLR milestone decays twice)."""
    for build in (
        lambda L, o: L.MultiStepLR(o, [5, 2, 2], gamma=0.5),
        lambda L, o: L.SequentialLR(o, [L.ConstantLR(o), L.ExponentialLR(o, 0.9),
                                        L.StepLR(o, 2)], milestones=[6, 3]),
    ):
        reference = run_schedule(TORCH, build, 9)
        ours = run_schedule(OURS, build, 9)
        assert ours["records"] == reference["records"]


def _warnings_of(action):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    return [(w.category, str(w.message)) for w in caught]


def _scheduler_before_optimizer(L):
    optimizer = make_optimizer("ours-SGD")
    scheduler = L.StepLR(optimizer, 2)
    scheduler.step()


def _optimizer_step_replaced(L):
    optimizer = make_optimizer("torch-SGD")
    scheduler = L.ExponentialLR(optimizer, 0.9)
    optimizer.step = lambda closure=None: None
    optimizer.step()
    scheduler.step()


def _get_lr_by_hand(L):
    scheduler = L.CosineAnnealingLR(make_optimizer(), 5)
    scheduler.get_lr()


def _swalr_get_lr_by_hand(L):
    L.SWALR(make_optimizer(), 0.05).get_lr()


def _epoch_given(L):
    optimizer = make_optimizer()
    scheduler = L.ReduceLROnPlateau(optimizer)
    scheduler.step(1.0, epoch=3)
    L.StepLR(optimizer, 2).step(4)


@pytest.mark.parametrize(
    "action",
    [_scheduler_before_optimizer, _optimizer_step_replaced, _get_lr_by_hand,
     _swalr_get_lr_by_hand, _epoch_given],
    ids=["scheduler-step-before-optimizer-step", "optimizer-step-replaced", "get-lr-by-hand",
         "swalr-get-lr-by-hand", "epoch-given"],
)
def test_warnings_are_torchs_word_for_word(action):
    expected = _warnings_of(lambda: action(TORCH))
    assert expected, "the reference should warn here"
    assert _warnings_of(lambda: action(OURS)) == expected


def test_ours_and_torchs_schedulers_share_one_step_wrapper():
    """Either side wraps ``optimizer.step`` once; the other sees the mark and neither warns
    that the step was overridden."""
    optimizer = make_optimizer("ours-Adam")
    first = OURS.StepLR(optimizer, 2)
    wrapped = optimizer.step
    second = TORCH.ExponentialLR(optimizer, 0.9)
    assert optimizer.step is wrapped

    def run():
        optimizer.step()
        first.step()
        second.step()

    assert _warnings_of(run) == []


MIXES = {
    "torch-SequentialLR-over-ours": lambda L, o: TORCH.SequentialLR(
        o, [OURS.LinearLR(o, 0.1, total_iters=3), OURS.CosineAnnealingLR(o, 5)], [3]),
    "ours-SequentialLR-over-torch": lambda L, o: OURS.SequentialLR(
        o, [TORCH.LinearLR(o, 0.1, total_iters=3), TORCH.CosineAnnealingLR(o, 5)], [3]),
    "ours-SequentialLR-over-both": lambda L, o: OURS.SequentialLR(
        o, [TORCH.ConstantLR(o, 0.5, 2), OURS.ExponentialLR(o, 0.8), TORCH.StepLR(o, 2)],
        [2, 5]),
    "torch-ChainedScheduler-over-ours": lambda L, o: TORCH.ChainedScheduler(
        [OURS.ConstantLR(o, 0.5, 3), OURS.ExponentialLR(o, 0.9)]),
    "ours-ChainedScheduler-over-both": lambda L, o: OURS.ChainedScheduler(
        [TORCH.ConstantLR(o, 0.5, 3), OURS.ExponentialLR(o, 0.9)]),
}
PURE_TORCH = {
    "torch-SequentialLR-over-ours": lambda L, o: TORCH.SequentialLR(
        o, [TORCH.LinearLR(o, 0.1, total_iters=3), TORCH.CosineAnnealingLR(o, 5)], [3]),
    "ours-SequentialLR-over-torch": lambda L, o: TORCH.SequentialLR(
        o, [TORCH.LinearLR(o, 0.1, total_iters=3), TORCH.CosineAnnealingLR(o, 5)], [3]),
    "ours-SequentialLR-over-both": lambda L, o: TORCH.SequentialLR(
        o, [TORCH.ConstantLR(o, 0.5, 2), TORCH.ExponentialLR(o, 0.8), TORCH.StepLR(o, 2)],
        [2, 5]),
    "torch-ChainedScheduler-over-ours": lambda L, o: TORCH.ChainedScheduler(
        [TORCH.ConstantLR(o, 0.5, 3), TORCH.ExponentialLR(o, 0.9)]),
    "ours-ChainedScheduler-over-both": lambda L, o: TORCH.ChainedScheduler(
        [TORCH.ConstantLR(o, 0.5, 3), TORCH.ExponentialLR(o, 0.9)]),
}


@pytest.mark.parametrize("name", list(MIXES))
def test_combinations_accept_either_sides_schedulers(name):
    mixed = run_schedule(None, MIXES[name], 12, optimizer="ours-SGD")
    reference = run_schedule(None, PURE_TORCH[name], 12, optimizer="ours-SGD")
    assert mixed["records"] == reference["records"]
    assert mixed["warnings"] == reference["warnings"]


def test_our_sequential_lr_rejects_torchs_reduce_lr_on_plateau():
    def build(L, o):
        L.SequentialLR(o, [L.ConstantLR(o), TORCH.ReduceLROnPlateau(o)], [3])

    assert raised(lambda: build(OURS, make_optimizer())) == raised(
        lambda: build(TORCH, make_optimizer()))


def test_get_last_lr_and_base_lrs_are_copies_of_tensor_rates():
    optimizer = make_optimizer(tensor_lr=True)
    scheduler = OURS.ExponentialLR(optimizer, 0.5)
    last = scheduler.get_last_lr()[0]
    last.fill_(123.0)
    scheduler.base_lrs[0].fill_(456.0)
    group_lr = optimizer.param_groups[0]["lr"]
    assert group_lr.item() == 0.1 and optimizer.param_groups[0]["initial_lr"].item() == 0.1
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] is group_lr  # filled in place, never replaced
    assert snapshot(optimizer, scheduler)[1][0][2] == 0.05


def test_state_dict_of_a_callable_object_lambda_round_trips_through_torch():
    class Decay:
        def __init__(self):
            self.rate = 0.5

        def __call__(self, t):
            return self.rate**t

    torch_side = TORCH.LambdaLR(make_optimizer(), Decay())
    torch_side.lr_lambdas[0].rate = 0.25
    ours = OURS.LambdaLR(make_optimizer(), Decay())
    ours.load_state_dict(torch_side.state_dict())
    assert ours.lr_lambdas[0].rate == 0.25
    back = TORCH.LambdaLR(make_optimizer(), Decay())
    back.load_state_dict(ours.state_dict())
    assert back.lr_lambdas[0].rate == 0.25
