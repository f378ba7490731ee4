"""optim_lessons.checkpoints: a resumed run continues exactly like an uninterrupted one."""

from __future__ import annotations

import random

import numpy
import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler

from optim_lessons.checkpoints import (
    largest_difference,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from optim_lessons.data import TensorLoader

TOTAL_STEPS = 24


def make_run(seed: int = 0):
    """A small model with dropout (so the global RNG matters), Adam and a one-cycle schedule."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=TOTAL_STEPS)
    data = torch.Generator().manual_seed(123)
    loader = TensorLoader(
        torch.randn(40, 6, generator=data), torch.randint(0, 3, (40,), generator=data), batch_size=8
    )
    return model, optimizer, scheduler, loader


def train_steps(model, optimizer, scheduler, loader, steps: int) -> None:
    done = 0
    while done < steps:
        for inputs, labels in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs), labels).backward()
            optimizer.step()
            scheduler.step()
            done += 1
            if done == steps:
                return


def test_loading_restores_model_optimizer_and_scheduler_exactly(tmp_path):
    first = make_run()
    train_steps(*first, 7)
    model, optimizer, scheduler, loader = first
    save_checkpoint(
        tmp_path / "run.pt", model=model, optimizer=optimizer, scheduler=scheduler, loader=loader
    )

    resumed = make_run(seed=1)  # different initial weights: the checkpoint overwrites them
    load_checkpoint(
        tmp_path / "run.pt",
        model=resumed[0],
        optimizer=resumed[1],
        scheduler=resumed[2],
        loader=resumed[3],
    )
    assert largest_difference(model, resumed[0]) == 0.0
    assert resumed[2].last_epoch == 7
    assert resumed[1].param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    assert resumed[1].param_groups[0]["betas"] == optimizer.param_groups[0]["betas"]
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            assert torch.equal(value, resumed[1].state_dict()["state"][index][key]), (index, key)


def test_resume_at_an_epoch_boundary_matches_the_uninterrupted_run_exactly(tmp_path):
    reference = make_run()
    train_steps(*reference, TOTAL_STEPS - 4)

    first = make_run()
    train_steps(*first, 10)  # two whole passes of 5 batches
    save_checkpoint(
        tmp_path / "run.pt",
        model=first[0],
        optimizer=first[1],
        scheduler=first[2],
        loader=first[3],
        extra={"epoch": 2},
    )
    torch.manual_seed(999)
    resumed = make_run(seed=1)
    extra = load_checkpoint(
        tmp_path / "run.pt",
        model=resumed[0],
        optimizer=resumed[1],
        scheduler=resumed[2],
        loader=resumed[3],
    )
    train_steps(*resumed, TOTAL_STEPS - 4 - 10)

    assert extra == {"epoch": 2}
    assert largest_difference(reference[0], resumed[0]) == 0.0
    reference_state = reference[1].state_dict()["state"]
    resumed_state = resumed[1].state_dict()["state"]
    for index, state in reference_state.items():
        for key, value in state.items():
            assert torch.equal(value, resumed_state[index][key]), (index, key)


def test_resume_without_restoring_the_random_state_diverges(tmp_path):
    reference = make_run()
    train_steps(*reference, 15)
    first = make_run()
    train_steps(*first, 10)
    save_checkpoint(
        tmp_path / "run.pt", model=first[0], optimizer=first[1], scheduler=first[2], loader=first[3]
    )
    torch.manual_seed(999)
    resumed = make_run(seed=1)
    load_checkpoint(
        tmp_path / "run.pt",
        model=resumed[0],
        optimizer=resumed[1],
        scheduler=resumed[2],
        loader=resumed[3],
        restore_rng=False,
    )
    train_steps(*resumed, 5)
    assert largest_difference(reference[0], resumed[0]) > 0.0


def test_checkpoint_file_loads_in_weights_only_mode(tmp_path):
    model, optimizer, scheduler, loader = make_run()
    train_steps(model, optimizer, scheduler, loader, 3)
    save_checkpoint(
        tmp_path / "run.pt", model=model, optimizer=optimizer, scheduler=scheduler, loader=loader
    )
    checkpoint = torch.load(tmp_path / "run.pt", weights_only=True)
    assert set(checkpoint) == {"version", "model", "optimizer", "scheduler", "rng", "extra"}
    assert not list(tmp_path.glob("*.partial"))


def test_rng_state_round_trip_restores_torch_python_numpy_and_loader():
    loader = TensorLoader(torch.zeros(10, 2), torch.zeros(10, dtype=torch.long), batch_size=5)
    state = rng_state(loader)
    expected = (torch.rand(3), random.random(), numpy.random.rand(), [b[0].sum() for b in loader])
    torch.rand(5)
    random.random()
    numpy.random.rand(4)
    list(loader)
    set_rng_state(state, loader)
    again = (torch.rand(3), random.random(), numpy.random.rand(), [b[0].sum() for b in loader])
    assert torch.equal(expected[0], again[0])
    assert expected[1:3] == again[1:3]


def test_loading_moves_optimizer_state_to_the_dtype_of_its_parameters(tmp_path):
    model, optimizer, scheduler, loader = make_run()
    train_steps(model, optimizer, scheduler, loader, 3)
    save_checkpoint(tmp_path / "run.pt", model=model, optimizer=optimizer, scheduler=scheduler)

    wide, wide_optimizer, wide_scheduler, _ = make_run()
    wide.double()  # a module moves its parameters in place: the optimizer still holds them
    load_checkpoint(
        tmp_path / "run.pt", model=wide, optimizer=wide_optimizer, scheduler=wide_scheduler
    )
    state = wide_optimizer.state[wide[0].weight]
    assert state["exp_avg"].dtype == torch.float64
    assert state["step"].dtype == torch.float32  # the step counter keeps its own dtype


def test_largest_difference_refuses_models_with_different_tensors():
    with pytest.raises(ValueError, match="different tensors"):
        largest_difference(nn.Linear(2, 2), nn.Linear(2, 2, bias=False))
    with pytest.raises(ValueError, match="shape"):
        largest_difference(nn.Linear(2, 2), nn.Linear(3, 2))


def test_load_checkpoint_refuses_a_scheduler_when_none_was_saved(tmp_path):
    model, optimizer, scheduler, _ = make_run()
    save_checkpoint(tmp_path / "run.pt", model=model, optimizer=optimizer)
    with pytest.raises(ValueError, match="no scheduler state"):
        load_checkpoint(tmp_path / "run.pt", model=model, optimizer=optimizer, scheduler=scheduler)
