"""Chapter 9's recipe search: the plan, the runner's resume, and the tables from a results file."""

from __future__ import annotations

import json

import pytest

from optim_lessons.benchmarks import recipe_search
from optim_lessons.benchmarks.recipe_search import (
    CANDIDATES,
    EXTRAS,
    RESULTS,
    SEED_CANDIDATES,
    SEEDS,
    SWEEP,
    VAL_SIZE,
    planned_runs,
    read_records,
    recipe_record,
)
from optim_lessons.benchmarks.recipe_tables import (
    load_results,
    recipe_tables,
    seeds_table,
    sweep_table,
)


def runs_in(path):
    return [r for r in read_records(path) if r["kind"] == "run"]


def test_every_sgd_candidate_is_one_cycle_nesterov_sgd_for_20_epochs():
    for candidate in SWEEP:
        recipe = candidate.recipe
        assert recipe.optimizer == "SGD"
        assert dict(recipe.kwargs) == {"momentum": 0.9, "nesterov": True}
        assert (recipe.schedule, recipe.epochs) == ("one_cycle", 20)
    assert {c.recipe.batch_size for c in SWEEP} == {32, 64, 128}


def test_the_plan_trains_everything_once_and_the_leading_candidates_with_three_seeds():
    runs = [(candidate.name, seed) for candidate, seed in planned_runs()]
    assert len(runs) == len(set(runs)) == len(SWEEP) + len(EXTRAS) + 2 * len(SEED_CANDIDATES)
    for name in SEED_CANDIDATES:
        assert [seed for n, seed in runs if n == name] == list(SEEDS)
    # One seed of every candidate comes first: a search cut short still fills the first table.
    assert all(seed == 0 for _, seed in runs[: len(SWEEP) + len(EXTRAS)])


def test_quick_mode_trains_two_tiny_runs_and_a_restart_skips_them(tmp_path, capsys):
    results = tmp_path / "quick.jsonl"
    assert recipe_search.main(["--quick", "--results", str(results)]) == 0
    records = read_records(results)
    assert [r["kind"] for r in records] == ["header", "run", "run"]
    header = records[0]
    assert header["threads"] >= 1 and header["torch"] and header["cpu"]
    assert set(header["numerics_policy"]) == {
        "ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
    }  # fmt: skip
    for run in records[1:]:
        assert run["judged_on"] == "validation" and run["val_size"] == 500
        assert 0 <= run["val_accuracy"] <= 1 and 0 <= run["final_train_accuracy"] <= 1
        assert run["seconds"] > 0

    capsys.readouterr()
    assert recipe_search.main(["--quick", "--results", str(results)]) == 0
    assert "0 run(s) to train, 2 already" in capsys.readouterr().out
    assert read_records(results) == records  # no new run, no new header


def test_a_line_cut_short_by_a_killed_run_is_skipped(tmp_path):
    results = tmp_path / "cut.jsonl"
    whole = {"kind": "run", "candidate": "lr0.05", "seed": 0}
    results.write_text(json.dumps(whole) + "\n" + json.dumps(whole)[:20])
    assert read_records(results) == [whole]


def fake_run(name, seed, val_accuracy, train_accuracy=0.9, **overrides):
    record = {
        "kind": "run",
        "candidate": name,
        "seed": seed,
        "recipe": recipe_record(CANDIDATES[name].recipe.with_(seed=seed)),
        "train_size": None,
        "val_size": VAL_SIZE,
        "judged_on": "validation",
        "val_accuracy": val_accuracy,
        "val_loss": 0.3,
        "final_train_accuracy": train_accuracy,
        "final_train_loss": 0.3,
        "steps": 17_200,
        "seconds": 20.0,
        "wall_seconds": 21.0,
        "cpu_seconds": 21.0,
        "device": "cpu",
    }
    record.update(overrides)
    return record


@pytest.fixture
def small_results(tmp_path):
    header = {
        "kind": "header",
        "date": "2026-01-01T00:00:00+00:00",
        "cpu": "Test CPU",
        "torch": "2.x",
        "threads": 1,
        "numerics_policy": {},
        "policy_followed": True,
    }
    records = [
        header,
        fake_run("lr0.05", 0, 0.8874, 0.9612),
        fake_run("lr0.03-wd1e-3", 0, 0.8952),
        fake_run("lr0.03-wd1e-3", 1, 0.9012),
        fake_run("lr0.03-wd1e-3", 2, 0.9000),
        fake_run("lr0.05-wd5e-4", 0, 0.8924),
        fake_run("lr0.05-wd5e-4", 1, 0.9016),
        fake_run("muon-lr0.03-wd0.1", 0, 0.8950),
        # A run of an older version of a candidate (another rate) is not shown under its name.
        fake_run("lr0.1", 0, 0.5, recipe=recipe_record(CANDIDATES["lr0.1"].recipe.with_(lr=1.0))),
        # Nor is a run on a smaller split.
        fake_run("lr0.2", 0, 0.5, train_size=1000),
    ]
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_only_runs_of_the_current_candidates_at_full_size_are_loaded(small_results):
    assert set(load_results(small_results)) == {
        ("lr0.05", 0),
        ("lr0.03-wd1e-3", 0),
        ("lr0.03-wd1e-3", 1),
        ("lr0.03-wd1e-3", 2),
        ("lr0.05-wd5e-4", 0),
        ("lr0.05-wd5e-4", 1),
        ("muon-lr0.03-wd0.1", 0),
    }


def cells(line):
    return [cell.strip() for cell in line.split("|")[1:-1]]


def test_the_first_table_has_a_row_per_sgd_candidate_with_the_best_in_bold(small_results):
    lines = sweep_table(load_results(small_results)).splitlines()
    assert len(lines) == 2 + len(SWEEP)
    assert cells(lines[0])[:5] == [
        "peak lr", "weight decay", "label smoothing", "other", "validation accuracy",
    ]  # fmt: skip
    rows = [cells(line) for line in lines[2:]]
    assert rows[0] == ["0.05", "0", "0", "", "0.8874", "0.9612"]
    assert [row for row in rows if "**" in row[4]] == [
        ["0.03", "1e-3", "0", "", "**0.8952**", "0.9000"]
    ]
    assert sum(row[4] == "not run" for row in rows) == len(SWEEP) - 3
    assert ["0.03", "1e-3", "0", "batch 32", "not run", "not run"] in rows
    assert len({len(line) for line in lines}) == 1  # the columns line up


def test_the_seeds_table_averages_only_complete_rows(small_results):
    lines = seeds_table(load_results(small_results)).splitlines()
    assert cells(lines[0]) == ["candidate", "seed 0", "seed 1", "seed 2", "mean"]
    rows = [cells(line) for line in lines[2:]]
    assert len(rows) == len(SEED_CANDIDATES)
    # (0.8952 + 0.9012 + 0.9000) / 3, the only complete row, so the best mean.
    assert rows[0] == ["lr 0.03, weight decay 1e-3", "0.8952", "0.9012", "0.9000", "**0.8988**"]
    assert rows[2] == ["lr 0.05, weight decay 5e-4", "0.8924", "0.9016", "not run", "not run"]
    assert rows[5][0] == "lr 0.05, weight decay 1e-3, label smoothing 0.1, mirroring"


def test_recipe_tables_prints_both_tables_the_extras_and_the_machine(small_results):
    text = recipe_tables(small_results)
    assert "Muon on the weight matrices, one-cycle to 0.03, weight decay 0.1: validation " \
        "accuracy 0.8950" in text  # fmt: skip
    assert "AdamW, one-cycle to 0.003, weight decay 0.05: validation accuracy not run" in text
    assert "lr 0.05: 0.9612" in text  # training accuracy without weight decay
    assert "7 of 33 runs" in text
    assert "Test CPU, torch 2.x, 1 thread(s), under the numerics policy" in text


def test_the_committed_results_hold_every_planned_run_under_the_policy():
    results = load_results(RESULTS)
    missing = [(c.name, seed) for c, seed in planned_runs() if (c.name, seed) not in results]
    assert not missing, f"{RESULTS.name} lacks {missing}: run the search to finish it"
    headers = [r for r in read_records(RESULTS) if r["kind"] == "header"]
    assert headers and all(h["policy_followed"] and h["threads"] == 1 for h in headers)
