"""The tables of chapter 9's recipe search, read from its committed results file.

:mod:`optim_lessons.benchmarks.recipe_search` trains the candidates and appends each run to
:data:`~optim_lessons.benchmarks.recipe_search.RESULTS`; this module only reads that file and
formats what the chapter prints: the single-seed sweep, the other optimizers and the moving
average, and the leading candidates over three seeds.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optim_lessons.benchmarks.recipe import Recipe
from optim_lessons.benchmarks.recipe_search import (
    CANDIDATES,
    EXTRAS,
    RESULTS,
    SEED_CANDIDATES,
    SEEDS,
    SWEEP,
    VAL_SIZE,
    _recipe_fields,
    planned_runs,
    read_records,
    run_key,
)
from optim_lessons.tables import TextBlocks, TextTable


def load_results(path: str | os.PathLike = RESULTS) -> dict[tuple[str, int], dict[str, Any]]:
    """The full-size runs of the results file, as ``{(candidate name, seed): record}``.

    A record counts only if its recipe is still the candidate's recipe (so a changed candidate
    is not shown with an old number); of several, the latest wins.
    """
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for record in read_records(path):
        if record.get("kind") != "run" or record.get("candidate") not in CANDIDATES:
            continue
        candidate, seed = CANDIDATES[record["candidate"]], record["seed"]
        expected = run_key(candidate.recipe.with_(seed=seed), None, VAL_SIZE)
        stored = run_key(
            Recipe(**_recipe_fields(record["recipe"])), record["train_size"], record["val_size"]
        )
        if stored == expected:
            found[(candidate.name, seed)] = record
    return found


def final_tests(path: str | os.PathLike = RESULTS) -> dict[int, dict[str, Any]]:
    """The chosen recipe trained on all 60,000 training images and judged on the test set,
    ``{seed: record}`` (``python -m optim_lessons.benchmarks.recipe_search --final``)."""
    from optim_lessons.benchmarks.recipe_search import FINAL

    found: dict[int, dict[str, Any]] = {}
    candidate = CANDIDATES[FINAL]
    for record in read_records(path):
        if record.get("kind") != "run" or record.get("candidate") != FINAL:
            continue
        expected = run_key(candidate.recipe.with_(seed=record["seed"]), None, 0)
        stored = run_key(
            Recipe(**_recipe_fields(record["recipe"])), record["train_size"], record["val_size"]
        )
        if stored == expected:
            found[record["seed"]] = record
    return found


def _number(x: float) -> str:
    """0.05 -> "0.05", 5e-4 -> "5e-4": the way the chapter writes rates and decays."""
    if x == 0:
        return "0"
    if abs(x) < 0.01:
        mantissa, exponent = f"{x:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{x:g}"


def _other(recipe: Recipe) -> str:
    parts = []
    if recipe.flip:
        parts.append("random mirroring")
    if recipe.max_shift:
        parts.append(f"random shifts of {recipe.max_shift} px")
    if recipe.batch_size != 64:
        parts.append(f"batch {recipe.batch_size}")
    return ", ".join(parts)


def describe_candidate(recipe: Recipe) -> str:
    """A short label: "lr 0.03, weight decay 1e-3, batch 32"."""
    parts = [f"lr {_number(recipe.lr)}"]
    if recipe.weight_decay:
        parts.append(f"weight decay {_number(recipe.weight_decay)}")
    if recipe.label_smoothing:
        parts.append(f"label smoothing {_number(recipe.label_smoothing)}")
    if recipe.flip:
        parts.append("mirroring")
    if recipe.max_shift:
        parts.append(f"shifts of {recipe.max_shift} px")
    if recipe.batch_size != 64:
        parts.append(f"batch {recipe.batch_size}")
    return ", ".join(parts)


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> TextTable:
    """A table that reads as plain text and as markdown: columns padded to one width (and an
    HTML table where a notebook displays it)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if i in right else "-" * (w + 2) for i, w in enumerate(widths)
        )
        + "|"
    )
    text = "\n".join([line(header), rule, *(line(r) for r in rows)])
    return TextTable(header, rows, right=right, text=text)


def _accuracy(record: dict[str, Any] | None, key: str = "val_accuracy") -> str:
    if record is None or record.get(key) is None:
        return "not run"
    return f"{record[key]:.4f}"


def _bold_best(cells: list[list[str]], column: int) -> None:
    values = [float(row[column]) for row in cells if row[column] != "not run"]
    if not values:
        return
    best = f"{max(values):.4f}"
    for row in cells:
        if row[column] == best:
            row[column] = f"**{best}**"


def sweep_table(results: dict[tuple[str, int], dict[str, Any]] | None = None) -> str:
    """The first table: one row per SGD candidate (seed 0), the best validation accuracy in
    bold, with the training accuracy of the last epoch beside it."""
    results = load_results() if results is None else results
    rows = []
    for candidate in SWEEP:
        recipe, record = candidate.recipe, results.get((candidate.name, 0))
        rows.append(
            [
                _number(recipe.lr),
                _number(recipe.weight_decay),
                _number(recipe.label_smoothing),
                _other(recipe),
                _accuracy(record),
                _accuracy(record, "final_train_accuracy"),
            ]
        )
    _bold_best(rows, 4)
    header = (
        "peak lr",
        "weight decay",
        "label smoothing",
        "other",
        "validation accuracy",
        "training accuracy (last epoch)",
    )
    return _markdown(header, rows, right={0, 1, 2, 4, 5})


def seeds_table(results: dict[tuple[str, int], dict[str, Any]] | None = None) -> str:
    """The second table: the leading candidates with each seed of :data:`SEEDS` and their
    mean (only when every seed has run), the best mean in bold."""
    results = load_results() if results is None else results
    rows = []
    for name in SEED_CANDIDATES:
        records = [results.get((name, seed)) for seed in SEEDS]
        accuracies = [r["val_accuracy"] for r in records if r is not None]
        mean = f"{statistics.mean(accuracies):.4f}" if len(accuracies) == len(SEEDS) else "not run"
        rows.append([describe_candidate(CANDIDATES[name].recipe), *map(_accuracy, records), mean])
    _bold_best(rows, len(SEEDS) + 1)
    header = ("candidate", *(f"seed {s}" for s in SEEDS), "mean")
    return _markdown(header, rows, right=set(range(1, len(SEEDS) + 2)))


def extra_results(results: dict[tuple[str, int], dict[str, Any]] | None = None) -> str:
    """The other optimizers, the moving average, and the training accuracies the chapter's
    conclusions rest on, one line each."""
    results = load_results() if results is None else results

    def run(name: str) -> dict[str, Any] | None:
        return results.get((name, 0))

    lines = []
    for candidate in EXTRAS:
        lines.append(f"- {candidate.note}: validation accuracy {_accuracy(run(candidate.name))}")
    without_decay = [c for c in SWEEP if c.recipe.weight_decay == 0]
    lines.append(
        "- Training accuracy of the last epoch without weight decay: "
        + "; ".join(
            f"{describe_candidate(c.recipe)}: {_accuracy(run(c.name), 'final_train_accuracy')}"
            for c in without_decay
        )
    )
    for plain, augmented in (
        ("lr0.05-wd5e-4", "lr0.05-wd5e-4-shift1"),
        ("lr0.05-wd5e-4", "lr0.05-wd5e-4-flip"),
    ):
        lines.append(
            f"- {_other(CANDIDATES[augmented].recipe).capitalize()} "
            f"({describe_candidate(CANDIDATES[plain].recipe)}): training accuracy "
            f"{_accuracy(run(augmented), 'final_train_accuracy')} against "
            f"{_accuracy(run(plain), 'final_train_accuracy')} without, validation accuracy "
            f"{_accuracy(run(augmented))} against {_accuracy(run(plain))}"
        )
    return "\n".join(lines)


def environment_summary(path: str | os.PathLike = RESULTS) -> str:
    """One line per session that wrote to the results file: where, when and how it ran."""
    lines = []
    for record in read_records(path):
        if record.get("kind") == "header":
            policy = (
                "under the numerics policy"
                if record["policy_followed"]
                else ("NOT under the numerics policy")
            )
            lines.append(
                f"{record['date']}: {record['cpu']}, torch {record['torch']}, "
                f"{record['threads']} thread(s), {policy}"
            )
    return "\n".join(lines)


def recipe_tables(path: str | os.PathLike = RESULTS) -> TextBlocks:
    """Both tables and the extra results: text to print, or HTML tables where a notebook
    displays the result."""
    results = load_results(path)
    planned = len(planned_runs())
    seconds = sum(r["wall_seconds"] for r in results.values())
    cpu_seconds = sum(r["cpu_seconds"] for r in results.values())
    return TextBlocks(
        [
            "SGD (Nesterov momentum 0.9), one-cycle, 20 epochs, batch 64 unless stated; "
            f"{60_000 - VAL_SIZE:,} training images, judged on {VAL_SIZE:,} held out; seed 0:",
            sweep_table(results),
            "Other optimizers and the moving average (seed 0), and the training accuracies:",
            extra_results(results),
            "The leading candidates with three seeds (validation split, initialization and "
            "batch order all change with the seed):",
            seeds_table(results),
            f"{len(results)} of {planned} runs in {Path(path).name}, "
            f"{seconds / 60:.0f} min of wall time ({cpu_seconds / 60:.0f} min of CPU time) in all. "
            "Computed on:\n" + (environment_summary(path) or "(no header)"),
        ]
    )
