"""Schedule-Free SGD, AdamW and the wrapper follow the ``schedulefree`` package step by step
in float64: parameters, the ``z`` and ``exp_avg_sq`` state and every param-group entry equal
bit for bit, in train mode and after ``eval()``."""

import copy

import pytest
import schedulefree
import torch
from _optim_checks import assert_same_error

from optim_lessons.optimizers import Adam
from optim_lessons.optimizers.schedule_free import (
    AdamWScheduleFree,
    ScheduleFreeWrapper,
    SGDScheduleFree,
)

STEPS = 20


def make_params():
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(4, 3, generator=generator, dtype=torch.float64).requires_grad_(),
            torch.randn(3, generator=generator, dtype=torch.float64).requires_grad_()]


def loss_at(params, step):
    """A noisy least-squares loss: a different mini-batch at every step."""
    generator = torch.Generator().manual_seed(100 + step)
    inputs = torch.randn(8, 4, generator=generator, dtype=torch.float64)
    targets = torch.randn(8, 3, generator=generator, dtype=torch.float64)
    return ((inputs @ params[0] + params[1] - targets) ** 2).mean()


def param_groups(params, groups):
    if groups is None:
        return params
    return [dict(group, params=[p]) for p, group in zip(params, groups, strict=True)]


def assert_same_optimizer(ours, reference, ours_params, reference_params, where):
    for a, b in zip(ours_params, reference_params, strict=True):
        assert torch.equal(a, b), f"{where}: parameters differ by {(a - b).abs().max()}"
    for a, b in zip(ours.param_groups, reference.param_groups, strict=True):
        assert {k: v for k, v in a.items() if k != "params"} == {
            k: v for k, v in b.items() if k != "params"}, where
    for a, b in zip(ours_params, reference_params, strict=True):
        ours_state, reference_state = ours.state[a], reference.state[b]
        assert sorted(ours_state) == sorted(reference_state)
        for key in reference_state:
            assert torch.equal(ours_state[key], reference_state[key]), f"{where}: {key}"


def run_side_by_side(make_ours, make_reference, *, eval_every=7, groups=None):
    """Both optimizers from the same start, every step compared, with eval()/train() switches
    along the way (and a comparison of x while in eval mode)."""
    ours_params, reference_params = make_params(), make_params()
    ours = make_ours(param_groups(ours_params, groups))
    reference = make_reference(param_groups(reference_params, groups))
    for optimizer in (ours, reference):
        optimizer.train()
    for step in range(STEPS):
        for optimizer, params in ((ours, ours_params), (reference, reference_params)):
            optimizer.zero_grad()
            loss_at(params, step).backward()
            optimizer.step()
        assert_same_optimizer(ours, reference, ours_params, reference_params, f"step {step}")
        if step % eval_every == eval_every - 1:
            for optimizer in (ours, reference):
                optimizer.eval()
            assert_same_optimizer(ours, reference, ours_params, reference_params,
                                  f"eval after step {step}")
            for optimizer in (ours, reference):
                optimizer.train()
    return ours, reference, ours_params, reference_params


def one_at_a_time(**choices):
    """The defaults, each option changed alone, and all of them changed together."""
    cases = [pytest.param({}, id="defaults")]
    cases += [pytest.param({name: value}, id=f"{name}={value}") for name, value in choices.items()]
    return cases + [pytest.param(dict(choices), id="all-changed")]


SGD_OPTIONS = one_at_a_time(
    momentum=0.5, weight_decay=0.01, warmup_steps=5, r=1.0, weight_lr_power=0.0
)


@pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "for-loop"])
@pytest.mark.parametrize("options", SGD_OPTIONS)
def test_sgd_schedule_free_matches_the_package_bit_for_bit(options, foreach):
    run_side_by_side(
        lambda params: SGDScheduleFree(params, lr=0.5, foreach=foreach, **options),
        lambda params: schedulefree.SGDScheduleFree(params, lr=0.5, foreach=foreach, **options),
    )


ADAMW_OPTIONS = one_at_a_time(
    betas=(0.5, 0.9), weight_decay=0.01, warmup_steps=5, r=1.0, weight_lr_power=0.0
)


@pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "for-loop"])
@pytest.mark.parametrize("options", ADAMW_OPTIONS)
def test_adamw_schedule_free_matches_the_package_bit_for_bit(options, foreach):
    run_side_by_side(
        lambda params: AdamWScheduleFree(params, lr=0.05, eps=1e-6, foreach=foreach, **options),
        lambda params: schedulefree.AdamWScheduleFree(params, lr=0.05, eps=1e-6,
                                                      foreach=foreach, **options),
    )


def test_schedule_free_matches_the_package_with_several_param_groups():
    groups = [{"lr": 0.3, "warmup_steps": 3}, {"lr": 0.1, "weight_decay": 0.05, "r": 0.5}]
    run_side_by_side(lambda p: SGDScheduleFree(p, lr=0.2),
                     lambda p: schedulefree.SGDScheduleFree(p, lr=0.2), groups=groups)
    run_side_by_side(lambda p: AdamWScheduleFree(p),
                     lambda p: schedulefree.AdamWScheduleFree(p), groups=groups)


WRAPPED = {
    "SGD": lambda params: torch.optim.SGD(params, lr=0.1),
    "SGD-momentum-weight-decay-at-z":
        lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.5, weight_decay=0.01),
}


@pytest.mark.parametrize("base", list(WRAPPED))
@pytest.mark.parametrize(
    "options",
    [{}, {"weight_decay_at_y": 0.05}, {"momentum": 0.5, "r": 1.0, "weight_lr_power": 0.0}],
    ids=["default", "weight-decay-at-y", "momentum-r-power"],
)
def test_wrapper_matches_the_package_bit_for_bit(base, options):
    run_side_by_side(
        lambda params: ScheduleFreeWrapper(WRAPPED[base](params), **options),
        lambda params: schedulefree.ScheduleFreeWrapper(WRAPPED[base](params), **options),
    )


@pytest.mark.parametrize("base", [torch.optim.Adam, torch.optim.RMSprop, Adam],
                         ids=["torch-Adam", "torch-RMSprop", "ours-Adam"])
def test_wrapper_runs_where_the_packages_raises(base):
    """The package's wrapper puts z in the base optimizer's state before the base's first step,
    so Adam and RMSprop, which fill their state only when it is empty, fail; ours does not."""
    params = make_params()
    package = schedulefree.ScheduleFreeWrapper(base(params, lr=0.01))
    package.train()
    loss_at(params, 0).backward()
    with pytest.raises(KeyError):
        package.step()
    params = make_params()
    ours = ScheduleFreeWrapper(base(params, lr=0.01))
    ours.train()
    for step in range(3):
        ours.zero_grad()
        loss_at(params, step).backward()
        ours.step()
    assert {"z", "step"} <= set(ours.state[params[0]])


def test_wrapped_adam_without_momentum_is_schedule_free_adamw():
    """Around Adam with beta1 = 0 (so m_t = g_t and no first bias correction), the wrapper runs
    Schedule-Free AdamW; the two differ only in rounding (sqrt(v)/sqrt(1-beta2^t) against
    sqrt(v/(1-beta2^t)), and x kept apart from y): at most 1.8e-15 relative, a few units in the
    last place, was measured over these 20 steps; 1e-12 is asserted."""
    wrapped_params, direct_params = make_params(), make_params()
    wrapped = ScheduleFreeWrapper(Adam(wrapped_params, lr=0.05, betas=(0.0, 0.99), eps=1e-6),
                                  momentum=0.9)
    direct = AdamWScheduleFree(direct_params, lr=0.05, betas=(0.9, 0.99), eps=1e-6)
    for optimizer in (wrapped, direct):
        optimizer.train()
    for step in range(STEPS):
        for optimizer, params in ((wrapped, wrapped_params), (direct, direct_params)):
            optimizer.zero_grad()
            loss_at(params, step).backward()
            optimizer.step()
        for a, b in zip(wrapped_params, direct_params, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    wrapped.eval()
    direct.eval()
    for a, b in zip(wrapped_params, direct_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_x_is_the_plain_mean_of_the_z_sequence_without_weighting():
    """The claim behind the method: with r = 0 and weight_lr_power = 0, every z counts the
    same, so eval() shows the mean of z_1 .. z_t."""
    params = make_params()
    optimizer = SGDScheduleFree(params, lr=0.2, momentum=0.8, weight_lr_power=0.0)
    optimizer.train()
    zs = []
    for step in range(10):
        optimizer.zero_grad()
        loss_at(params, step).backward()
        optimizer.step()
        zs.append([optimizer.state[p]["z"].clone() for p in params])
    optimizer.eval()
    for index, param in enumerate(params):
        mean = torch.stack([z[index] for z in zs]).mean(0)
        torch.testing.assert_close(param.detach(), mean, rtol=1e-12, atol=1e-12)


def test_state_dict_hands_over_to_the_package_and_back():
    ours, reference, ours_params, reference_params = run_side_by_side(
        lambda p: AdamWScheduleFree(p, warmup_steps=4),
        lambda p: schedulefree.AdamWScheduleFree(p, warmup_steps=4))
    package = schedulefree.AdamWScheduleFree(
        param_groups(p := [q.detach().clone().requires_grad_() for q in ours_params], None))
    package.load_state_dict(copy.deepcopy(ours.state_dict()))
    back = AdamWScheduleFree([q.detach().clone().requires_grad_() for q in p])
    back.load_state_dict(copy.deepcopy(package.state_dict()))
    assert back.state_dict()["param_groups"] == reference.state_dict()["param_groups"]


def test_step_outside_train_mode_raises_like_the_package():
    def stepping(cls):
        params = make_params()
        optimizer = cls(params)
        loss_at(params, 0).backward()
        optimizer.step()

    assert "train mode" in assert_same_error(lambda: stepping(SGDScheduleFree),
                                             lambda: stepping(schedulefree.SGDScheduleFree))
    assert_same_error(lambda: stepping(AdamWScheduleFree),
                      lambda: stepping(schedulefree.AdamWScheduleFree))
    assert_same_error(
        lambda: stepping(lambda p: ScheduleFreeWrapper(torch.optim.SGD(p, lr=0.1))),
        lambda: stepping(lambda p: schedulefree.ScheduleFreeWrapper(torch.optim.SGD(p, lr=0.1))),
    )


@pytest.mark.parametrize(
    "kwargs", [{"lr": -1.0}, {"weight_decay": -0.1}, {"momentum": 0.0}, {"momentum": 1.0}],
    ids=repr,
)
def test_sgd_schedule_free_rejects_what_the_package_rejects(kwargs):
    assert_same_error(lambda: SGDScheduleFree(make_params(), **kwargs),
                      lambda: schedulefree.SGDScheduleFree(make_params(), **kwargs))
