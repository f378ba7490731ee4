"""The hand-written Triton Adam kernel: checked on the CPU through Triton's interpreter (in a
subprocess, since TRITON_INTERPRET must be set before triton is first imported), and for real
on CUDA where a GPU is present."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

#: Triton against the readable class after 25 steps: |ours - readable| <= ATOL + RTOL |readable|
#: in float32 (the same bound as the compiled optimizers), and the book's parity tolerances
#: (rtol 1e-6, atol 1e-9) in float64.
BOUNDS = {"float32": (1e-5, 1e-6), "float64": (1e-6, 1e-9)}

CONFIGS = {
    "Adam": ("TritonAdam", "Adam", {"lr": 0.05}),
    "Adam-amsgrad-decay-maximize": (
        "TritonAdam",
        "Adam",
        {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1, "maximize": True},
    ),
    "AdamW": ("TritonAdamW", "AdamW", {"lr": 0.05, "weight_decay": 0.1}),
}

#: (config, dtype, problem kind, reference): the interpreter runs a step in NumPy, program by
#: program, so the runs are few. The readable classes match torch.optim in their own tests.
CASES = [
    ("Adam", "float32", "dense", "readable"),
    ("Adam", "float32", "dense", "torch"),
    ("Adam", "float64", "complex", "readable"),
    ("Adam-amsgrad-decay-maximize", "float32", "dense", "readable"),
    ("AdamW", "float32", "dense", "torch"),
]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    from optim_lessons import optimizers as readable
    from optim_lessons.fast import triton_adam
    from optim_lessons.parity import compare_trajectories, make_problem

    assert triton_adam.interpreting()
    torch.set_num_threads(1)
    configs, cases, bounds = (json.loads(argument) for argument in sys.argv[1:4])
    results = {}
    for name, dtype_name, kind, against in cases:
        ours, reference, kwargs = configs[name]
        dtype = getattr(torch, dtype_name)
        module = readable if against == "readable" else torch.optim
        report = compare_trajectories(
            getattr(triton_adam, ours), getattr(module, reference), kwargs, dtype=dtype,
            problem=make_problem(kind, dtype),
        )
        rtol, atol = bounds[dtype_name]
        excess = max(
            ((a - b).abs() - (b.abs() * rtol + atol)).max().item()
            for a, b in zip(report.ours_params, report.reference_params)
        )
        results["/".join((name, dtype_name, kind, against))] = {
            "largest": max(report.max_abs_diff_per_step),
            "excess": excess,
            "first_loss": report.ours_losses[0],
            "final_loss": report.ours_losses[-1],
        }
    print(json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def interpreted():
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, *(json.dumps(x) for x in (CONFIGS, CASES, BOUNDS))],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", CASES, ids="/".join)
def test_triton_adam_in_the_interpreter_matches(interpreted, case):
    result = interpreted["/".join(case)]
    # Every parameter within ATOL + RTOL |reference| after 25 steps; and the run went somewhere.
    assert result["excess"] <= 0, result
    assert result["final_loss"] != result["first_loss"]


def test_triton_adam_on_cpu_tensors_without_the_interpreter_says_where_it_runs():
    code = textwrap.dedent(
        """
        import torch
        from optim_lessons.fast.triton_adam import TritonAdam
        param = torch.zeros(3, requires_grad=True)
        param.grad = torch.ones(3)
        try:
            TritonAdam([param]).step()
        except RuntimeError as error:
            print(error)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    completed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert "TritonAdam runs on CUDA tensors" in completed.stdout, completed.stderr[-2000:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", CONFIGS)
def test_triton_adam_on_cuda_matches_the_readable_class(name):
    from optim_lessons import optimizers as readable
    from optim_lessons.fast import triton_adam
    from optim_lessons.parity import compare_trajectories, make_problem

    ours, reference, kwargs = CONFIGS[name]
    problem = make_problem("dense", torch.float32, device="cuda")
    report = compare_trajectories(
        getattr(triton_adam, ours), getattr(readable, reference), kwargs, problem=problem
    )
    rtol, atol = BOUNDS["float32"]
    for a, b in zip(report.ours_params, report.reference_params, strict=True):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=rtol, atol=atol)
