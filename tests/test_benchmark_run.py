"""The benchmark harness: its plan, resuming after a kill, its tables, and the command."""

from __future__ import annotations

import json
import math

import pytest
import torch

from optim_lessons.benchmarks import run as bench
from optim_lessons.benchmarks.benchmark_tables import Interval, Results
from optim_lessons.benchmarks.submissions import (
    DIMENSIONS,
    SUBMISSIONS,
    build_optimizer,
    build_schedule,
    trial_points,
    warmup_cosine,
)
from optim_lessons.benchmarks.workloads import WORKLOADS

#: A benchmark small enough for a test: 2 submissions, 2 trials, 2 seeds, 6 steps, 2% of the data.
TINY = bench.Config(
    workloads=("mlp",),
    submissions=("SGD", "AdamW"),
    trials=2,
    seeds=(1, 2),
    data_scale=0.02,
    steps=6,
)


def _lines(path):
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:  # the line cut off by the kill
            continue
    return lines


def test_plan_lists_trials_before_seed_runs_workload_by_workload():
    config = bench.Config(
        workloads=("mlp", "cnn"), submissions=("SGD", "Adam"), trials=2, seeds=(1, 2, 3)
    )
    todo = bench.plan(config, {})
    assert len(todo) == 2 * (2 * (2 + 3) + 0)  # AdamW, the one run without decay, is not here
    assert [k.workload for k in todo] == ["mlp"] * 10 + ["cnn"] * 10
    kinds = [k.kind for k in todo[:10]]
    assert kinds == ["trial"] * 4 + ["seed"] * 6
    with_adamw = bench.plan(bench.replace(config, submissions=("SGD", "AdamW")), {})
    assert [k.kind for k in with_adamw[:13]] == ["trial"] * 4 + ["seed"] * 6 + ["no_wd"] * 3
    done = {k.as_tuple(): {} for k in todo[:3]}
    assert bench.plan(config, done) == todo[3:]


def test_trials_are_the_same_points_for_every_workload_and_inside_the_space():
    points = trial_points(6)
    assert points[:2] == trial_points(2)  # a longer search extends a shorter one
    assert all(len(p) == len(DIMENSIONS) and all(0 <= u < 1 for u in p) for p in points)
    for submission in SUBMISSIONS.values():
        for point in points:
            settings = submission.hyperparameters(point)
            assert submission.lr[0] <= settings["lr"] <= submission.lr[1] * 1.0001
            assert 0.02 <= settings["warmup"] <= 0.1
            if "beta1" in settings:
                assert 0.8 <= settings["beta1"] <= 0.98


def test_warmup_cosine_climbs_then_falls_to_zero():
    factor = warmup_cosine(4, 20)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert (
        factor(4) == 1.0 and factor(12) == pytest.approx(0.5) and factor(20) == pytest.approx(0.0)
    )


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_every_submission_builds_and_steps_on_every_model(workload):
    w = WORKLOADS[workload]
    data = w.data(scale=0.01)
    for name, submission in SUBMISSIONS.items():
        model = w.model(0)
        settings = submission.hyperparameters(trial_points(1)[0])
        optimizer = build_optimizer(submission, settings, model, 10, w.head_parameters(model))
        schedule = build_schedule(submission, settings, optimizer, 10)
        assert (schedule is None) == submission.schedule_free, name
        before = [p.detach().clone() for p in model.parameters()]
        if hasattr(optimizer, "train"):
            optimizer.train()
        x, y = next(data.batches(8, 0))
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        moved = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
        assert moved > 0, name


def test_asgd_is_judged_on_its_average_and_the_weights_come_back():
    model = torch.nn.Linear(3, 1)
    opt = build_optimizer(
        SUBMISSIONS["ASGD"], {"lr": 0.1, "warmup": 0.1, "weight_decay": 0.0}, model, 4, set()
    )
    for _ in range(8):  # averaging starts after t0 = 2 steps
        opt.zero_grad()
        model(torch.ones(2, 3)).sum().backward()
        opt.step()
    current = model.weight.detach().clone()
    average = opt.state[model.weight]["ax"].clone()
    assert not torch.equal(current, average)
    with bench.judged_weights(opt):
        assert torch.equal(model.weight, average)
    assert torch.equal(model.weight, current)


def test_choice_uses_validation_only():
    trials = [
        {"index": 0, "steps_to_target": None, "val_accuracy": 0.9},
        {"index": 1, "steps_to_target": 300, "val_accuracy": 0.85},
        {"index": 2, "steps_to_target": 300, "val_accuracy": 0.86},
    ]
    assert bench.choose(trials)["index"] == 2  # fastest to the target, then the better score
    assert bench.choose(trials[:1])["index"] == 0


def test_a_killed_benchmark_resumes_and_ends_with_the_same_numbers(tmp_path):
    whole = tmp_path / "whole.jsonl"
    bench.run(TINY, whole, progress=False)
    cut = tmp_path / "cut.jsonl"
    bench.run(TINY, cut, progress=False, stop_after=3)
    assert sum(r["type"] == "run" for r in _lines(cut)) == 3
    with open(cut, "a") as handle:  # a kill in the middle of writing a line
        handle.write('{"type": "run", "workload": "mlp", "subm')
    _, runs = bench.load(cut)
    assert len(runs) == 3
    bench.run(TINY, cut, progress=False)
    _, resumed = bench.load(cut)
    _, expected = bench.load(whole)
    assert sorted(resumed) == sorted(expected) and len(expected) == 2 * (2 + 2) + 2
    for key in expected:
        for field in ("val_accuracy", "settings", "seed", "steps_to_target"):
            assert resumed[key][field] == expected[key][field], (key, field)
        # the same validation scores at the same steps (the CPU-seconds beside them differ)
        scores = [[e[0], e[2]] for e in resumed[key]["evaluations"]]
        assert scores == [[e[0], e[2]] for e in expected[key]["evaluations"]], key
    sessions = [r for r in _lines(cut) if r["type"] == "session"]
    assert len(sessions) == 2 and sessions[0]["torch"] == torch.__version__
    assert all("test_accuracy" not in r for k, r in expected.items() if k[2] == "trial")
    assert all("test_accuracy" in r for k, r in expected.items() if k[2] != "trial")
    no_decay = expected[("mlp", "AdamW", "no_wd", 1)]
    chosen = expected[("mlp", "AdamW", "seed", 1)]
    assert no_decay["settings"] == chosen["settings"] | {"weight_decay": 0.0}
    assert chosen["settings"]["weight_decay"] > 0
    assert bench.run(TINY, cut, progress=False) == resumed  # nothing left to do


def test_interval_uses_students_t():
    interval = Interval.of([0.80, 0.82, 0.84])
    assert interval.mean == pytest.approx(0.82)
    assert interval.half_width == pytest.approx(4.303 * 0.02 / math.sqrt(3))
    assert Interval.of([0.8]).half_width == math.inf


def _fake(workload, submission, kind, index, val, steps, test=None):
    record = {
        "type": "run",
        "workload": workload,
        "submission": submission,
        "kind": kind,
        "index": index,
        "val_accuracy": val,
        "steps_to_target": steps,
        "cpu_to_target": None if steps is None else steps / 100,
        "state_bytes_per_parameter": 8.0,
    }
    if kind == "seed":
        record.update(test_accuracy=test, chosen_trial=0)
    return record


def test_tables_tiers_profiles_and_what_is_missing():
    config = bench.Config(
        workloads=("mlp", "cnn"), submissions=("A", "B", "C"), trials=1, seeds=(1, 2, 3)
    )
    runs = {}
    tests = {"A": (0.90, 0.91, 0.92), "B": (0.89, 0.90, 0.91), "C": (0.80, 0.805, 0.81)}
    steps = {"A": (100, 100, 120), "B": (200, 200, None), "C": (None, None, 50)}
    for s in "ABC":
        runs[("mlp", s, "trial", 0)] = _fake("mlp", s, "trial", 0, 0.9, 100)
        for seed, test, step in zip((1, 2, 3), tests[s], steps[s]):
            runs[("mlp", s, "seed", seed)] = _fake("mlp", s, "seed", seed, test, step, test)
    runs[("cnn", "A", "trial", 0)] = _fake("cnn", "A", "trial", 0, 0.8, None)
    results = Results.from_runs(runs, config)
    assert results.tiers("mlp") == [["A", "B"], ["C"]]
    assert results.complete_workloads() == ["mlp"]
    assert results.missing() == ["cnn: 2 of 3 trials and 9 of 9 seed runs missing"]
    ratios = results.ratios()
    assert (
        ratios["A"]["mlp"] == 1.0 and ratios["B"]["mlp"] == 2.0 and ratios["C"]["mlp"] == math.inf
    )
    assert results.score("A") == 1.0 and results.score("C") == 0.0
    assert 0.0 < results.score("B") < 1.0  # within 4x, but not fastest
    summary = results.summary()
    assert "missing: cnn: 2 of 3 trials" in summary and "(0 of 1 trials done)" in summary
    assert results.table("mlp").rows[0][0] == "A"


def test_the_command_on_a_tiny_config(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "QUICK", TINY)
    path = tmp_path / "quick.jsonl"
    bench.main(["--quick", "--results", str(path), "--no-progress"])
    out = capsys.readouterr().out
    assert f"results: {path} (10 runs" in out and "missing: nothing" in out
    assert sum(r["type"] == "run" for r in _lines(path)) == 10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_a_run_on_cuda(tmp_path):
    runs = bench.run(TINY, tmp_path / "cuda.jsonl", device="cuda", progress=False)
    assert len(runs) == 10


def test_the_recipe_test_runs_are_read_apart_from_the_validation_runs(tmp_path):
    from optim_lessons.benchmarks.recipe_search import CANDIDATES, FINAL, recipe_record
    from optim_lessons.benchmarks.recipe_tables import final_tests, load_results

    recipe = CANDIDATES[FINAL].recipe
    path = tmp_path / "recipe.jsonl"
    records = [
        {
            "kind": "run",
            "candidate": FINAL,
            "seed": 1,
            "recipe": recipe_record(recipe.with_(seed=1)),
            "train_size": None,
            "val_size": val_size,
            "val_accuracy": accuracy,
        }
        for val_size, accuracy in ((0, 0.89), (5_000, 0.9))
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert {seed: r["val_accuracy"] for seed, r in final_tests(path).items()} == {1: 0.89}
    assert load_results(path)[(FINAL, 1)]["val_accuracy"] == 0.9
