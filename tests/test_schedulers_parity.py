"""optim_lessons.schedulers drives an optimizer exactly as torch.optim.lr_scheduler does.

Every case is built from the same arguments on both sides and run on the same optimizer
(torch's SGD and Adam, and this library's); rates, momenta (or beta1), ``get_last_lr()``,
warnings and state dicts must be equal bit for bit, over at least three cycles where the
schedule has cycles, and after handing the state dict over mid-run in either direction.
"""

import inspect

import pytest
import torch
from _scheduler_checks import (
    OPTIMIZER_IDS,
    OURS,
    TORCH,
    check_parity,
    check_resume_both_ways,
    make_optimizer,
    run_schedule,
)

import optim_lessons.schedulers as ours_schedulers


class Halving:
    """A callable object: its attributes are saved in the state dict, unlike a lambda's."""

    def __init__(self, rate: float = 0.5) -> None:
        self.rate = rate

    def __call__(self, epoch: int) -> float:
        return self.rate ** (epoch // 3)


def case(name, build, steps):
    return pytest.param(build, steps, id=name)


CASES = [
    case("LambdaLR-one-function", lambda L, o: L.LambdaLR(o, lambda t: 0.9**t), 10),
    case("LambdaLR-one-per-group",
         lambda L, o: L.LambdaLR(o, [lambda t: 0.9**t, lambda t: 1 / (1 + t)]), 10),
    case("LambdaLR-callable-object", lambda L, o: L.LambdaLR(o, Halving(0.7)), 10),
    case("MultiplicativeLR-one-function",
         lambda L, o: L.MultiplicativeLR(o, lambda t: 0.95), 10),
    case("MultiplicativeLR-one-per-group",
         lambda L, o: L.MultiplicativeLR(o, [lambda t: 0.95, lambda t: 1.0 - 0.01 * t]), 10),
    case("StepLR-default-gamma", lambda L, o: L.StepLR(o, step_size=3), 10),
    case("StepLR-gamma", lambda L, o: L.StepLR(o, 2, gamma=0.7), 10),
    case("MultiStepLR-increasing", lambda L, o: L.MultiStepLR(o, [2, 5, 6], gamma=0.5), 10),
    case("MultiStepLR-unsorted-with-repeats",
         lambda L, o: L.MultiStepLR(o, [6, 2, 2, 5], gamma=0.5), 10),
    case("ConstantLR-default", lambda L, o: L.ConstantLR(o), 10),
    case("ConstantLR-factor", lambda L, o: L.ConstantLR(o, factor=0.5, total_iters=3), 10),
    case("LinearLR-default", lambda L, o: L.LinearLR(o), 10),
    case("LinearLR-warmup", lambda L, o: L.LinearLR(o, 0.25, 1.0, total_iters=4), 10),
    case("LinearLR-decay", lambda L, o: L.LinearLR(o, 1.0, 0.1, total_iters=6), 10),
    case("ExponentialLR", lambda L, o: L.ExponentialLR(o, gamma=0.9), 10),
    case("PolynomialLR-default", lambda L, o: L.PolynomialLR(o), 10),
    case("PolynomialLR-power-2", lambda L, o: L.PolynomialLR(o, total_iters=6, power=2.0), 10),
    case("PolynomialLR-power-half",
         lambda L, o: L.PolynomialLR(o, total_iters=7, power=0.5), 10),
    # Past T_max the cosine climbs back: three periods of 2 T_max.
    case("CosineAnnealingLR", lambda L, o: L.CosineAnnealingLR(o, T_max=4), 25),
    case("CosineAnnealingLR-eta-min",
         lambda L, o: L.CosineAnnealingLR(o, T_max=3, eta_min=0.001), 20),
    case("CosineAnnealingWarmRestarts",
         lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=3), 12),
    case("CosineAnnealingWarmRestarts-T-mult-eta-min",
         lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2, eta_min=0.001), 16),
    case("CyclicLR-triangular", lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=2), 14),
    case("CyclicLR-triangular2-asymmetric",
         lambda L, o: L.CyclicLR(o, 0.01, 0.1, 2, 3, mode="triangular2"), 17),
    case("CyclicLR-exp-range",
         lambda L, o: L.CyclicLR(o, 0.01, 0.1, 3, 2, mode="exp_range", gamma=0.9), 17),
    case("CyclicLR-scale-fn-per-cycle",
         lambda L, o: L.CyclicLR(o, 0.01, 0.1, 2, scale_fn=lambda c: 1 / c), 14),
    case("CyclicLR-scale-fn-per-step",
         lambda L, o: L.CyclicLR(o, 0.01, 0.1, 2, scale_fn=lambda t: 0.95**t,
                                 scale_mode="iterations"), 14),
    case("CyclicLR-per-group-bounds-and-momenta",
         lambda L, o: L.CyclicLR(o, [0.01, 0.02], [0.1, 0.3], 2, base_momentum=[0.7, 0.8],
                                 max_momentum=[0.9, 0.95]), 14),
    case("CyclicLR-no-momentum",
         lambda L, o: L.CyclicLR(o, 0.01, 0.1, 2, cycle_momentum=False), 14),
    case("OneCycleLR-default", lambda L, o: L.OneCycleLR(o, 0.1, total_steps=12), 12),
    case("OneCycleLR-linear", lambda L, o: L.OneCycleLR(o, 0.1, total_steps=12,
                                                        anneal_strategy="linear"), 12),
    case("OneCycleLR-three-phase",
         lambda L, o: L.OneCycleLR(o, 0.1, total_steps=15, three_phase=True), 15),
    case("OneCycleLR-three-phase-linear",
         lambda L, o: L.OneCycleLR(o, 0.1, total_steps=15, three_phase=True,
                                   anneal_strategy="linear"), 15),
    case("OneCycleLR-epochs-and-steps-per-epoch",
         lambda L, o: L.OneCycleLR(o, 0.1, epochs=3, steps_per_epoch=4, pct_start=0.5), 12),
    case("OneCycleLR-per-group-and-factors",
         lambda L, o: L.OneCycleLR(o, [0.1, 0.4], total_steps=10, div_factor=10.0,
                                   final_div_factor=100.0, base_momentum=[0.8, 0.85],
                                   max_momentum=[0.9, 0.99]), 10),
    case("OneCycleLR-no-momentum",
         lambda L, o: L.OneCycleLR(o, 0.1, total_steps=10, cycle_momentum=False), 10),
    case("SequentialLR-warmup-then-cosine",
         lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=3),
                                         L.CosineAnnealingLR(o, T_max=6)], milestones=[3]), 15),
    case("SequentialLR-three-with-closed-form-handovers",
         lambda L, o: L.SequentialLR(o, [L.ConstantLR(o, 0.5, 2), L.ExponentialLR(o, 0.8),
                                         L.StepLR(o, 2)], milestones=[2, 5]), 12),
    # A ChainedScheduler can only come first: at a handover torch asks the next scheduler
    # for its closed form, and a chain has none (see the error tests).
    case("SequentialLR-nested-chain-first",
         lambda L, o: L.SequentialLR(
             o, [L.ChainedScheduler([L.ExponentialLR(o, 0.9), L.MultiStepLR(o, [2])]),
                 L.ConstantLR(o, 0.2, 2)],
             milestones=[4]), 12),
    case("ChainedScheduler-warmup-times-decay",
         lambda L, o: L.ChainedScheduler([L.ConstantLR(o, 0.5, 3), L.ExponentialLR(o, 0.9)]),
         12),
    case("ChainedScheduler-three",
         lambda L, o: L.ChainedScheduler([L.LinearLR(o, 0.2, total_iters=3),
                                          L.CosineAnnealingLR(o, 4), L.StepLR(o, 5)],
                                         optimizer=o), 15),
    case("SWALR-cos", lambda L, o: L.SWALR(o, swa_lr=0.05, anneal_epochs=3), 8),
    case("SWALR-linear-per-group",
         lambda L, o: L.SWALR(o, [0.05, 0.01], anneal_epochs=4, anneal_strategy="linear"), 8),
    case("SWALR-no-annealing", lambda L, o: L.SWALR(o, 0.05, anneal_epochs=0), 5),
]


@pytest.mark.parametrize("optimizer", OPTIMIZER_IDS)
@pytest.mark.parametrize(("build", "steps"), CASES)
def test_scheduler_matches_torch_bit_for_bit(build, steps, optimizer):
    check_parity(build, steps, optimizer=optimizer)


#: The resume checks take each case on one of the four optimizers, in turn.
CASES_WITH_AN_OPTIMIZER = [
    pytest.param(*p.values, OPTIMIZER_IDS[i % len(OPTIMIZER_IDS)],
                 id=f"{p.id}-{OPTIMIZER_IDS[i % len(OPTIMIZER_IDS)]}")
    for i, p in enumerate(CASES)
]


@pytest.mark.parametrize(("build", "steps", "optimizer"), CASES_WITH_AN_OPTIMIZER)
def test_scheduler_resumes_from_either_sides_state_dict(build, steps, optimizer):
    check_resume_both_ways(build, steps, resume_at=steps // 2, optimizer=optimizer)


#: Cases without per-group lists, run on three param groups.
LIST_FREE = [p for p in CASES if "group" not in p.id]


@pytest.mark.parametrize(("build", "steps"), LIST_FREE)
def test_scheduler_matches_torch_with_three_param_groups(build, steps):
    check_parity(build, steps, optimizer="ours-SGD", groups=3)


@pytest.mark.parametrize(("build", "steps"), LIST_FREE)
def test_scheduler_matches_torch_with_tensor_learning_rates(build, steps):
    """A tensor ``lr`` is filled in place by both, never replaced."""
    ours, _ = check_parity(build, steps, optimizer="torch-SGD", tensor_lr=True)
    assert all(isinstance(g["lr"], torch.Tensor) for g in ours["optimizer"].param_groups)


PLATEAU_METRICS = [1.0, 0.9, 0.95, 0.95, 0.9, 0.89995, 0.91, 0.91, 0.91, 0.5, 0.6, 0.6, 0.6, 0.6]


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("threshold_mode", ["rel", "abs"])
@pytest.mark.parametrize(
    "options",
    [{}, {"patience": 1}, {"patience": 0, "cooldown": 2, "factor": 0.5},
     {"patience": 1, "min_lr": [0.02, 0.001]}, {"patience": 0, "eps": 0.05},
     {"patience": 1, "threshold": 0.1}],
    ids=["default", "patience-1", "cooldown", "min-lr-per-group", "large-eps", "threshold"],
)
def test_reduce_lr_on_plateau_matches_torch(mode, threshold_mode, options):
    metrics = PLATEAU_METRICS if mode == "min" else [-m for m in PLATEAU_METRICS]

    def build(L, o):
        return L.ReduceLROnPlateau(o, mode=mode, threshold_mode=threshold_mode, **options)

    for optimizer in ("torch-SGD", "ours-Adam"):
        check_parity(build, len(metrics), optimizer=optimizer, metrics=metrics)
        check_resume_both_ways(build, len(metrics), 7, optimizer=optimizer, metrics=metrics)


def test_reduce_lr_on_plateau_reads_a_tensor_metric_like_torch():
    metrics = [torch.tensor(m) for m in PLATEAU_METRICS]
    check_parity(lambda L, o: L.ReduceLROnPlateau(o, patience=1), len(metrics), metrics=metrics)


#: step(epoch) uses the closed form where there is one, get_lr() where there is not.
EPOCH_CASES = [p for p in CASES if p.id.split("-")[0] in {
    "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR",
    "CosineAnnealingLR", "LambdaLR", "MultiplicativeLR", "CyclicLR"}]


@pytest.mark.parametrize(("build", "steps"), EPOCH_CASES)
def test_step_with_an_epoch_jumps_like_torch_with_the_deprecation_warning(build, steps):
    epochs = [0, 3, 1, 7, 7, 12, 2, 5]
    ours, _ = check_parity(build, len(epochs), epochs=epochs)
    assert any("deprecated" in message for _, message in ours["warnings"])


@pytest.mark.parametrize("T_mult", [1, 2, 3])
def test_warm_restarts_jump_to_fractional_epochs_like_torch(T_mult):
    epochs = [0, 0.5, 3.25, 1, 7, 7.75, 12, 30.5, 2, 14]

    def build(L, o):
        return L.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=T_mult, eta_min=0.01)

    check_parity(build, len(epochs), epochs=epochs)


def test_one_cycle_lr_steps_to_exactly_total_steps_like_torch():
    check_parity(lambda L, o: L.OneCycleLR(o, 0.1, total_steps=6), 6, optimizer="ours-Adam")


RESUMABLE = [
    pytest.param(lambda L, o, e: L.StepLR(o, 3, 0.5, last_epoch=e), id="StepLR"),
    pytest.param(lambda L, o, e: L.ExponentialLR(o, 0.9, last_epoch=e), id="ExponentialLR"),
    pytest.param(lambda L, o, e: L.LinearLR(o, 0.2, total_iters=8, last_epoch=e), id="LinearLR"),
    pytest.param(lambda L, o, e: L.PolynomialLR(o, 9, 2.0, last_epoch=e), id="PolynomialLR"),
    pytest.param(lambda L, o, e: L.CosineAnnealingLR(o, 5, last_epoch=e), id="Cosine"),
    pytest.param(lambda L, o, e: L.CosineAnnealingWarmRestarts(o, 2, 2, last_epoch=e),
                 id="WarmRestarts"),
    pytest.param(lambda L, o, e: L.MultiplicativeLR(o, lambda t: 0.9, last_epoch=e),
                 id="MultiplicativeLR"),
    pytest.param(lambda L, o, e: L.CyclicLR(o, 0.01, 0.1, 2, 3, last_epoch=e), id="CyclicLR"),
    pytest.param(lambda L, o, e: L.OneCycleLR(o, 0.1, total_steps=12, last_epoch=e),
                 id="OneCycleLR"),
    pytest.param(lambda L, o, e: L.SWALR(o, 0.05, 3, last_epoch=e), id="SWALR"),
]


@pytest.mark.parametrize("build", RESUMABLE)
def test_resuming_through_last_epoch_continues_like_torch(build):
    """The old way to resume: load the optimizer, then build the scheduler with
    ``last_epoch`` set; every group must hold ``initial_lr`` by then."""
    warmed = run_schedule(TORCH, lambda L, o: build(L, o, -1), 4, optimizer="torch-Adam")
    saved = warmed["optimizer"].state_dict()
    sequences = []
    for namespace in (TORCH, OURS):
        optimizer = make_optimizer("torch-Adam")
        optimizer.load_state_dict(saved)
        scheduler = build(namespace, optimizer, 4)
        values = [scheduler.get_last_lr()]
        for _ in range(6):
            optimizer.step()
            scheduler.step()
            values.append([g["lr"] for g in optimizer.param_groups] + scheduler.get_last_lr()
                          + [g["betas"] for g in optimizer.param_groups])
        sequences.append((values, scheduler.last_epoch))
    assert sequences[0] == sequences[1]


@pytest.mark.parametrize("name", ours_schedulers.TORCH_NAMES + ("SWALR",))
def test_scheduler_has_torchs_signature_and_defaults(name):
    ours = inspect.signature(getattr(OURS, name)).parameters
    reference = inspect.signature(getattr(TORCH, name)).parameters
    assert [(p.name, p.default, p.kind) for p in ours.values()] == [
        (p.name, p.default, p.kind) for p in reference.values()
    ]


def test_every_torch_scheduler_is_importable_by_name():
    public = {name for name in torch.optim.lr_scheduler.__all__}
    assert public == set(ours_schedulers.TORCH_NAMES)
    for name in public:
        cls = getattr(ours_schedulers, name)
        assert cls.__module__.startswith("optim_lessons.schedulers")
        assert issubclass(cls, ours_schedulers.LRScheduler)
        assert not issubclass(cls, torch.optim.lr_scheduler.LRScheduler)
