"""The search for chapter 9's recipe: about thirty 20-epoch runs of the seed MLP, and their tables.

Every candidate is a :class:`~optim_lessons.benchmarks.recipe.Recipe` with the one-cycle schedule,
trained by :func:`~optim_lessons.benchmarks.recipe.train_recipe` on 55,000 training images and
judged on the 5,000 held out (the test set is never looked at). The candidates come in three
groups:

- :data:`SWEEP`: SGD with Nesterov momentum 0.9, batch 64 unless stated, one seed: peak rate,
  weight decay, label smoothing, augmentation and batch size;
- :data:`EXTRAS`: AdamW, Muon on the weight matrices, and a moving average of the weights;
- :data:`SEED_CANDIDATES`: the leading candidates, trained again with seeds 1 and 2 (a seed
  draws another validation split, another initialization and another batch order).

The runs take half an hour of one core, so they run outside the notebook::

    python -m optim_lessons.numerics python -m optim_lessons.benchmarks.recipe_search

Each finished run is appended, as one JSON line, to :data:`RESULTS` (committed with the
repository); a restart skips the runs already there. Every session first writes a header line
with the machine, torch's version, the thread count and the numerics policy it ran under. The
chapter prints the tables from that file with
``print(optim_lessons.benchmarks.recipe_tables.recipe_tables())``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from optim_lessons.benchmarks.recipe import Recipe

#: The results of the full search, one JSON object per line.
RESULTS = Path(__file__).parent / "results" / "recipe_search.jsonl"

#: Training images held out for judging; the rest (55,000) are trained on.
VAL_SIZE = 5_000

#: The seeds each leading candidate is trained with.
SEEDS = (0, 1, 2)

#: SGD with Nesterov momentum 0.9 (one-cycle cycles it between 0.85 and 0.95), 20 epochs.
SGD = Recipe(
    optimizer="SGD", lr=0.05, kwargs={"momentum": 0.9, "nesterov": True}, batch_size=64, epochs=20
)


@dataclass(frozen=True)
class Candidate:
    """One recipe of the search, under a name that stays the same when its numbers are shown."""

    name: str
    recipe: Recipe
    #: What the candidate adds to plain SGD, for the extra results ("" for the SGD sweep).
    note: str = ""


def _sgd(name: str, **changes: Any) -> Candidate:
    return Candidate(name, SGD.with_(**changes))


#: The first table: SGD, one seed (0).
SWEEP: tuple[Candidate, ...] = (
    _sgd("lr0.05", lr=0.05),
    _sgd("lr0.05-ls0.1", lr=0.05, label_smoothing=0.1),
    _sgd("lr0.05-wd5e-4", lr=0.05, weight_decay=5e-4),
    _sgd("lr0.05-wd5e-4-ls0.1", lr=0.05, weight_decay=5e-4, label_smoothing=0.1),
    _sgd("lr0.1", lr=0.1),
    _sgd("lr0.1-wd5e-4-ls0.1", lr=0.1, weight_decay=5e-4, label_smoothing=0.1),
    _sgd("lr0.2", lr=0.2),
    _sgd("lr0.2-wd5e-4-ls0.1", lr=0.2, weight_decay=5e-4, label_smoothing=0.1),
    _sgd("lr0.02-wd1e-3", lr=0.02, weight_decay=1e-3),
    _sgd("lr0.03-wd1e-3", lr=0.03, weight_decay=1e-3),
    _sgd("lr0.03-wd2e-3", lr=0.03, weight_decay=2e-3),
    _sgd("lr0.03-wd1e-3-ls0.1", lr=0.03, weight_decay=1e-3, label_smoothing=0.1),
    _sgd("lr0.05-wd5e-4-flip", lr=0.05, weight_decay=5e-4, flip=True),
    _sgd("lr0.05-wd5e-4-shift1", lr=0.05, weight_decay=5e-4, max_shift=1),
    _sgd("lr0.03-wd1e-3-batch32", lr=0.03, weight_decay=1e-3, batch_size=32),
    _sgd("lr0.06-wd1e-3-batch128", lr=0.06, weight_decay=1e-3, batch_size=128),
    # Trained with three seeds in the second table; its seed-0 run belongs here too.
    _sgd("lr0.05-wd1e-3-ls0.1-flip", lr=0.05, weight_decay=1e-3, label_smoothing=0.1, flip=True),
)

#: The other optimizers and the moving average, one seed (0). AdamW and Muon keep their own
#: defaults (betas 0.9 and 0.999; momentum 0.95 with Nesterov); one-cycle cycles the first beta,
#: or the momentum, between 0.85 and 0.95 all the same.
EXTRAS: tuple[Candidate, ...] = (
    Candidate(
        "adamw-lr0.003-wd0.05",
        Recipe(optimizer="AdamW", lr=0.003, kwargs={}, weight_decay=0.05),
        "AdamW, one-cycle to 0.003, weight decay 0.05",
    ),
    Candidate(
        "adamw-lr0.003-wd0.2",
        Recipe(optimizer="AdamW", lr=0.003, kwargs={}, weight_decay=0.2),
        "AdamW, one-cycle to 0.003, weight decay 0.2",
    ),
    Candidate(
        "muon-lr0.03-wd0.1",
        Recipe(optimizer="Muon", lr=0.03, kwargs={}, weight_decay=0.1, params="matrices"),
        "Muon on the weight matrices, one-cycle to 0.03, weight decay 0.1",
    ),
    Candidate(
        "lr0.03-wd1e-3-ema0.999",
        SGD.with_(lr=0.03, weight_decay=1e-3, ema_decay=0.999),
        "SGD lr 0.03, weight decay 1e-3, judged on a moving average of the weights (decay 0.999)",
    ),
)

#: The second table: the leading candidates of the first, trained with every seed of SEEDS.
SEED_CANDIDATES: tuple[str, ...] = (
    "lr0.03-wd1e-3",
    "lr0.03-wd1e-3-batch32",
    "lr0.05-wd5e-4",
    "lr0.1-wd5e-4-ls0.1",
    "lr0.03-wd2e-3",
    "lr0.05-wd1e-3-ls0.1-flip",
)

CANDIDATES: dict[str, Candidate] = {c.name: c for c in SWEEP + EXTRAS}

#: The recipe the chapter chose, and the seeds it is trained with on all 60,000 training images
#: and judged on the test set (``--final``; the validation split is not held out).
FINAL = "lr0.03-wd1e-3"
FINAL_SEEDS = (0, 1, 2)


def planned_runs() -> list[tuple[Candidate, int]]:
    """Every run of the search, in the order it is trained: one seed of everything first, so
    that a search cut short still fills the first table."""
    runs = [(candidate, 0) for candidate in SWEEP + EXTRAS]
    for seed in SEEDS[1:]:
        runs += [(CANDIDATES[name], seed) for name in SEED_CANDIDATES]
    return runs


# ----------------------------------------------------------------------------------- the runner


def recipe_record(recipe: Recipe) -> dict[str, Any]:
    """The recipe's fields as plain JSON values."""
    return json.loads(json.dumps(asdict(recipe)))


def run_key(recipe: Recipe, train_size: int | None, val_size: int) -> str:
    """What identifies a run: every field of the recipe (seed included) and the split sizes."""
    return json.dumps(
        {"recipe": recipe_record(recipe), "train_size": train_size, "val_size": val_size},
        sort_keys=True,
    )


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what Python's platform says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """The header record: where and under which settings the runs that follow were computed."""
    import torch

    from optim_lessons.numerics import POLICY

    return {
        "kind": "header",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "numerics_policy": {name: os.environ.get(name) for name in POLICY},
        "policy_followed": all(os.environ.get(k) == v for k, v in POLICY.items()),
        "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    """The repository's commit, with "+changes" when tracked files differ from it."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if changed else "")


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of a results file (none if it does not exist). A last line cut short by a
    killed run is skipped; that run is trained again."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
        out.flush()
        os.fsync(out.fileno())


def run_one(
    candidate: Candidate,
    seed: int,
    *,
    train_size: int | None = None,
    val_size: int = VAL_SIZE,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train one candidate with one seed and return its result record."""
    from optim_lessons.benchmarks.recipe import train_recipe

    recipe = candidate.recipe.with_(seed=seed)
    cpu_started, started = time.process_time(), time.perf_counter()
    result = train_recipe(recipe, val_size=val_size, train_size=train_size, device=device)
    history = result.history
    return {
        "kind": "run",
        "candidate": candidate.name,
        "seed": seed,
        "recipe": recipe_record(recipe),
        "train_size": train_size,
        "val_size": val_size,
        "judged_on": result.judged_on,
        "val_accuracy": result.accuracy,
        "val_loss": result.loss,
        # Averaged over the last epoch's batches while the weights were still moving.
        "final_train_accuracy": history.train_accuracy[-1] if history.train_accuracy else None,
        "final_train_loss": history.train_loss[-1] if history.train_loss else None,
        "steps": history.steps,
        "seconds": result.seconds,
        "wall_seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "device": device,
    }


def run_search(
    runs: Iterable[tuple[Candidate, int]],
    results: str | os.PathLike = RESULTS,
    *,
    train_size: int | None = None,
    val_size: int = VAL_SIZE,
    device: str = "cpu",
    progress: Callable[[str], None] | None = print,
) -> list[dict[str, Any]]:
    """Train every ``(candidate, seed)`` of ``runs`` not yet in ``results``, appending each
    result as soon as it is known. Returns the records of the runs trained now."""
    results = Path(results)
    results.parent.mkdir(parents=True, exist_ok=True)
    done = {
        run_key(Recipe(**_recipe_fields(r["recipe"])), r["train_size"], r["val_size"])
        for r in read_records(results)
        if r.get("kind") == "run"
    }
    todo = [
        (candidate, seed)
        for candidate, seed in runs
        if run_key(candidate.recipe.with_(seed=seed), train_size, val_size) not in done
    ]
    if progress is not None:
        progress(f"{len(todo)} run(s) to train, {len(done)} already in {results}")
    if not todo:
        return []
    _append(results, environment())
    trained = []
    for number, (candidate, seed) in enumerate(todo, 1):
        record = run_one(candidate, seed, train_size=train_size, val_size=val_size, device=device)
        _append(results, record)
        trained.append(record)
        if progress is not None:
            train_accuracy = record["final_train_accuracy"]
            progress(
                f"[{number}/{len(todo)}] {candidate.name} seed {seed}: validation accuracy "
                f"{record['val_accuracy']:.4f}, training accuracy {train_accuracy:.4f}, "
                f"{record['wall_seconds']:.0f} s"
            )
    return trained


def _recipe_fields(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored recipe back into :class:`Recipe`'s arguments (the fields it knows)."""
    known = Recipe.__dataclass_fields__
    return {k: v for k, v in stored.items() if k in known}


# ----------------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m optim_lessons.benchmarks.recipe_search",
        description="Train chapter 9's recipe candidates (skipping those already in the results "
        "file) and print the tables. Run it under the numerics policy: "
        "python -m optim_lessons.numerics python -m optim_lessons.benchmarks.recipe_search",
    )
    parser.add_argument("--results", type=Path, default=None, help=f"default: {RESULTS}")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="two tiny runs (1 epoch, 1,000 training and 500 validation images) into a "
        "temporary file, to check that everything works",
    )
    parser.add_argument("--tables", action="store_true", help="only print the tables")
    parser.add_argument(
        "--final",
        action="store_true",
        help=f"train the chosen recipe ({FINAL}) with seeds {FINAL_SEEDS} on all the training "
        "images and judge each once on the test set",
    )
    args = parser.parse_args(argv)
    if args.final:
        runs = [(CANDIDATES[FINAL], seed) for seed in FINAL_SEEDS]
        run_search(runs, args.results or RESULTS, val_size=0, progress=_print)
        return 0
    if args.quick:
        results = args.results or Path(tempfile.mkdtemp()) / "recipe_search_quick.jsonl"
        runs = [(Candidate(c.name, c.recipe.with_(epochs=1)), 0) for c in SWEEP[:2]]
        run_search(runs, results, train_size=1_000, val_size=500, progress=_print)
        _print(f"results in {results}")
        return 0
    results = args.results or RESULTS
    if not args.tables:
        started = time.perf_counter()
        run_search(planned_runs(), results, progress=_print)
        _print(f"search done in {(time.perf_counter() - started) / 60:.1f} min")
    from optim_lessons.benchmarks.recipe_tables import recipe_tables

    print(recipe_tables(results))
    return 0


def _print(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
