"""Warmup-stable-decay: its closed form, checked against torch's LambdaLR and by hand."""

import math

import pytest
import torch
from _scheduler_checks import OPTIMIZER_IDS, make_optimizer, run_schedule

from optim_lessons.schedulers import WarmupStableDecayLR
from optim_lessons.schedulers.wsd import DECAY_SHAPES, wsd_factor

CONFIGS = [
    {"warmup_steps": 3, "stable_steps": 5, "decay_steps": 4},
    {"warmup_steps": 0, "stable_steps": 2, "decay_steps": 6, "min_lr_ratio": 0.1},
    {"warmup_steps": 4, "stable_steps": 0, "decay_steps": 0, "min_lr_ratio": 0.5},
]


@pytest.mark.parametrize("optimizer", OPTIMIZER_IDS)
@pytest.mark.parametrize("shape", DECAY_SHAPES)
@pytest.mark.parametrize("config", CONFIGS, ids=["plain", "no-warmup-floor", "no-decay"])
def test_wsd_matches_torchs_lambda_lr_with_the_same_factor(config, shape, optimizer):
    """WSD is eta_0 times a function of t: torch's LambdaLR with that function is the
    reference, bit for bit, on both optimizers' param groups."""
    kwargs = dict(config, decay_shape=shape)
    steps = sum(config[k] for k in ("warmup_steps", "stable_steps", "decay_steps")) + 3
    reference = run_schedule(
        None, lambda L, o: torch.optim.lr_scheduler.LambdaLR(
            o, lambda t: wsd_factor(t, **kwargs)), steps, optimizer=optimizer)
    ours = run_schedule(None, lambda L, o: WarmupStableDecayLR(o, **kwargs), steps,
                        optimizer=optimizer)
    assert ours["records"] == reference["records"]
    assert ours["warnings"] == reference["warnings"] == []


@pytest.mark.parametrize("shape", DECAY_SHAPES)
def test_wsd_passes_through_its_landmarks(shape):
    """Computed independently: 0 at the start, the base rate through the stable phase, the
    shape's midpoint half-way through the decay, the floor at the end."""
    midpoint = {"linear": 0.5, "cosine": 0.5, "1-sqrt": 1 - math.sqrt(0.5)}[shape]
    config = {"warmup_steps": 4, "stable_steps": 6, "decay_steps": 10, "min_lr_ratio": 0.2,
              "decay_shape": shape}
    assert wsd_factor(0, **config) == 0.0
    assert wsd_factor(2, **config) == 0.5
    assert wsd_factor(4, **config) == wsd_factor(9, **config) == 1.0
    assert wsd_factor(15, **config) == pytest.approx(0.2 + 0.8 * midpoint, abs=1e-15)
    assert wsd_factor(20, **config) == wsd_factor(100, **config) == 0.2
    decay = [wsd_factor(t, **config) for t in range(10, 21)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))


def test_wsd_jumps_with_an_epoch_and_resumes_from_its_state_dict():
    config = {"warmup_steps": 2, "stable_steps": 3, "decay_steps": 4, "decay_shape": "1-sqrt"}
    straight = run_schedule(None, lambda L, o: WarmupStableDecayLR(o, **config), 12)
    resumed = run_schedule(None, lambda L, o: WarmupStableDecayLR(o, **config), 12,
                           resume_at=6, resume_with=None)
    assert resumed["records"] == straight["records"]
    optimizer = make_optimizer()
    scheduler = WarmupStableDecayLR(optimizer, **config)
    optimizer.step()
    with pytest.warns(UserWarning, match="deprecated"):
        scheduler.step(7)
    assert scheduler.get_last_lr() == [
        base * wsd_factor(7, **config) for base in scheduler.base_lrs
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"warmup_steps": -1}, "Expected non-negative integer warmup_steps, but got -1"),
        ({"decay_steps": 2.5}, "Expected non-negative integer decay_steps, but got 2.5"),
        ({"min_lr_ratio": 1.5}, "Expected min_lr_ratio between 0 and 1, but got 1.5"),
        ({"decay_shape": "exp"},
         "decay_shape must be one of 'linear', 'cosine', '1-sqrt', instead got 'exp'"),
    ],
)
def test_wsd_rejects_bad_input(kwargs, message):
    config = dict({"warmup_steps": 2, "stable_steps": 3, "decay_steps": 4}, **kwargs)
    with pytest.raises(ValueError) as info:
        WarmupStableDecayLR(make_optimizer(), **config)
    assert str(info.value) == message
