"""The compiled optimizers: parity with the readable classes and torch, one compile per group
shape (no recompiles from step to step), and a clear message where no C++ compiler exists.

Compiling takes seconds per configuration, so each configuration runs once per test session
(a module-scoped fixture) and the tests read its results.
"""

from __future__ import annotations

import pytest
import torch
from _optim_checks import one_cpu_thread  # noqa: F401 (an autouse fixture)

from optim_lessons import optimizers as readable
from optim_lessons.fast import compiled
from optim_lessons.fast.compiled import CompiledAdagrad, CompiledAdam, CompiledAdamW, CompiledSGD
from optim_lessons.parity import compare_trajectories, make_problem

CONFIGS = {
    "Adam": (CompiledAdam, "Adam", {"lr": 0.05}),
    "AdamW": (CompiledAdamW, "AdamW", {"lr": 0.05}),
    "SGD-nesterov-decay": (
        CompiledSGD,
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    ),
    "Adagrad-lr-decay": (CompiledAdagrad, "Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
}

#: Compiled against readable, float32, after 25 steps: |ours - readable| <= ATOL + RTOL |readable|.
#: Measured: at most 4.6e-7 on parameters of size about 1 (fused multiply-adds round once where
#: the readable class rounds twice). The book's usual parity tolerance is rtol 1e-4, atol 1e-6.
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def runs():
    results = {}
    for name, (cls, reference, kwargs) in CONFIGS.items():
        problem = make_problem("dense", torch.float32)
        results[name] = {
            "readable": compare_trajectories(
                cls, getattr(readable, reference), kwargs, dtype=torch.float32, problem=problem
            ),
            "torch": compare_trajectories(
                cls, getattr(torch.optim, reference), kwargs, dtype=torch.float32, problem=problem
            ),
        }
    return results


@pytest.mark.parametrize("name", CONFIGS)
def test_compiled_optimizer_matches_the_readable_class_within_a_few_float32_roundings(runs, name):
    report = runs[name]["readable"]
    for ours, reference in zip(report.ours_params, report.reference_params, strict=True):
        torch.testing.assert_close(ours.detach(), reference.detach(), rtol=RTOL, atol=ATOL)
    assert report.ours_losses == pytest.approx(report.reference_losses, rel=1e-5)


@pytest.mark.parametrize("name", CONFIGS)
def test_compiled_optimizer_matches_torch_after_every_step(runs, name):
    report = runs[name]["torch"]
    largest = max(report.max_abs_diff_per_step)
    assert largest <= ATOL + RTOL * max(p.abs().max().item() for p in report.reference_params)


@pytest.mark.slow  # one more compile (amsgrad, coupled weight decay, maximize): seconds
def test_compiled_adam_matches_the_readable_class_with_amsgrad_decay_and_maximize():
    kwargs = {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1, "maximize": True}
    report = compare_trajectories(CompiledAdam, readable.Adam, kwargs, dtype=torch.float32)
    for ours, reference in zip(report.ours_params, report.reference_params, strict=True):
        torch.testing.assert_close(ours.detach(), reference.detach(), rtol=RTOL, atol=ATOL)


def test_a_compiled_step_does_not_recompile_from_one_step_to_the_next(runs):
    # The scalars (bias corrections, step size) change every step; as 0-dim tensors they are
    # data to the compiled loop, so running more steps compiles nothing new.
    from torch._dynamo.utils import counters

    problem = make_problem("dense", torch.float32)
    params = problem.clone_params()
    optimizer = CompiledAdam(params, lr=0.05)
    frames_before = dict(counters["frames"])
    for _ in range(6):
        optimizer.zero_grad(set_to_none=False)
        problem.loss_fn(params).backward()
        optimizer.step()
    assert dict(counters["frames"]) == frames_before


def test_compiled_state_dict_hands_over_to_the_readable_class(runs):
    report = runs["Adam"]["readable"]
    handed = readable.Adam(
        [p.detach().clone().requires_grad_(True) for p in report.ours_params], lr=0.05
    )
    handed.load_state_dict(report.ours.state_dict())
    (first,) = [s for i, s in handed.state_dict()["state"].items() if i == 0]
    assert float(first["step"]) == 25.0
    assert set(first) == {"step", "exp_avg", "exp_avg_sq"}


def test_without_a_cpp_compiler_the_first_step_says_what_to_install(monkeypatch):
    monkeypatch.setattr(compiled, "_compiled", {})  # as if nothing had been compiled yet
    monkeypatch.setattr(compiled, "cpp_compiler", lambda: None)
    param = torch.zeros(3, requires_grad=True)
    param.grad = torch.ones(3)
    with pytest.raises(RuntimeError, match="apt-get install g\\+\\+"):
        CompiledAdam([param]).step()


def test_the_compiler_search_finds_nothing_on_an_empty_path(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert compiled.cpp_compiler() is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_compiled_adam_on_cuda_matches_the_readable_class():
    problem = make_problem("dense", torch.float32, device="cuda")
    report = compare_trajectories(CompiledAdam, readable.Adam, {"lr": 0.05}, problem=problem)
    for ours, reference in zip(report.ours_params, report.reference_params, strict=True):
        torch.testing.assert_close(ours.detach(), reference.detach(), rtol=RTOL, atol=ATOL)
