"""The benchmark: every submission on every workload, tuned, re-run over seeds, and recorded.

::

    python -m optim_lessons.numerics \
        python -m optim_lessons.benchmarks.run [--quick] [--device cuda]

For each workload in turn (so complete workloads land first), the command trains

1. the *trials*: each submission at each of the same ``trials`` quasi-random points of its
   search space (:mod:`~optim_lessons.benchmarks.submissions`), with seed 0;
2. the *seed runs*: for each submission, the trial chosen on the validation split alone
   (:func:`choose`) is trained again with seeds 1, 2 and 3, and only these runs are shown the
   test set, once, at their end;
3. AdamW's chosen setting once more with each seed, without weight decay (kind ``"no_wd"``).

Every finished run is appended as one JSON line to the results file (:data:`RESULTS`, committed
with the book); a restart reads the file and skips what is there, so a killed benchmark picks up
at the run it was in. Every session first writes a header line with the machine, the versions
and the numerics policy. ``--quick`` trains a small part of the plan (:data:`QUICK`) into a
separate file in well under a minute; the chapter runs it to check that the committed numbers
come out again.

A run's *time to target* is the first evaluation at which the validation accuracy reaches the
workload's target: in steps, and in CPU-seconds of training (process CPU time, evaluations not
counted; with one thread it is the work done, not the time spent waiting for a core).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from optim_lessons.benchmarks.submissions import (
    SUBMISSIONS,
    Submission,
    build_optimizer,
    build_schedule,
    trial_points,
)
from optim_lessons.benchmarks.workloads import WORKLOADS, Workload, accuracy_and_loss
from optim_lessons.training import optimizer_state_bytes

#: The committed results of the full benchmark, one JSON object per line.
RESULTS = Path(__file__).parent / "results" / "benchmark.jsonl"


@dataclass(frozen=True)
class Config:
    """What a benchmark session trains."""

    workloads: tuple[str, ...] = tuple(WORKLOADS)
    submissions: tuple[str, ...] = tuple(SUBMISSIONS)
    trials: int = 6
    seeds: tuple[int, ...] = (1, 2, 3)
    #: Shrinks the data (1.0: the full workload) and the step budget (None: the workload's).
    data_scale: float = 1.0
    steps: int | None = None
    #: Submissions whose chosen setting also runs, with every seed, without weight decay
    #: (kind ``"no_wd"``): what the decay does, with everything else held fixed.
    without_decay: tuple[str, ...] = ("AdamW",)

    def workload(self, name: str) -> Workload:
        workload = WORKLOADS[name]
        if self.steps is not None:
            every = max(1, self.steps // 10)
            workload = replace(workload, steps=self.steps, eval_every=every)
        return workload


#: The full benchmark: 15 submissions x 3 workloads x (6 trials + 3 seeds) = 405 runs. Six
#: trials, not AlgoPerf's 5 to 100 per study, is what fits an hour of one CPU core.
FULL = Config()
#: The quick check: two trials and two seeds of three submissions on the seed MLP.
QUICK = Config(
    workloads=("mlp",),
    submissions=("SGD", "AdamW", "Lion"),
    trials=2,
    seeds=(1, 2),
    without_decay=(),
)


@dataclass(frozen=True)
class RunKey:
    workload: str
    submission: str
    kind: str  # "trial", "seed" or "no_wd"
    index: int  # the trial number, or the seed

    def as_tuple(self) -> tuple[str, str, str, int]:
        return (self.workload, self.submission, self.kind, self.index)


# ----------------------------------------------------------------------------- one run


@contextmanager
def judged_weights(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Put in place the weights an algorithm is judged on, and take them away again:
    Schedule-Free's averaged point ``x`` (its ``eval()``), ASGD's running average ``ax``."""
    if hasattr(optimizer, "eval") and hasattr(optimizer, "train"):
        optimizer.eval()
        try:
            yield
        finally:
            optimizer.train()
        return
    swapped = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "ax" in state:
                swapped.append((p, p.detach().clone()))
                p.data.copy_(state["ax"])
    try:
        yield
    finally:
        for p, original in swapped:
            p.data.copy_(original)


def train_one(
    workload: Workload,
    submission: Submission,
    settings: dict[str, float],
    seed: int,
    data: Any,
    *,
    test: bool,
    device: torch.device,
    progress: Any = None,
) -> dict[str, Any]:
    """Train one run; return its record (evaluations, time to target, final scores)."""
    model = workload.model(seed, device)
    optimizer = build_optimizer(
        submission, settings, model, workload.steps, workload.head_parameters(model)
    )
    schedule = build_schedule(submission, settings, optimizer, workload.steps)
    if hasattr(optimizer, "train"):
        optimizer.train()
    batches = data.batches(workload.batch_size, seed)
    evaluations: list[list[float]] = []
    cpu = 0.0
    wall_start = time.perf_counter()
    diverged = False
    step = 0
    for step in range(1, workload.steps + 1):
        inputs, targets = next(batches)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.process_time() if device.type == "cpu" else time.perf_counter()
        loss = nn.functional.cross_entropy(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        cpu += (time.process_time() if device.type == "cpu" else time.perf_counter()) - started
        if progress is not None:
            progress.update(1)
        if not math.isfinite(loss.item()):
            diverged = True
            break
        if step % workload.eval_every == 0 or step == workload.steps:
            with judged_weights(optimizer):
                accuracy, _ = accuracy_and_loss(model, data.val_x, data.val_y)
            evaluations.append([step, round(cpu, 4), accuracy])
    if progress is not None and step < workload.steps:
        progress.update(workload.steps - step)
    reached = next((e for e in evaluations if e[2] >= workload.target), None)
    record: dict[str, Any] = {
        "settings": settings,
        "seed": seed,
        "steps": workload.steps,
        "diverged": diverged,
        "evaluations": evaluations,
        "steps_to_target": reached[0] if reached else None,
        "cpu_to_target": reached[1] if reached else None,
        "train_cpu_seconds": round(cpu, 3),
        "wall_seconds": round(time.perf_counter() - wall_start, 3),
        "state_bytes_per_parameter": optimizer_state_bytes(optimizer)
        / sum(p.numel() for p in model.parameters()),
    }
    with judged_weights(optimizer):
        if diverged:
            record.update(val_accuracy=0.0, val_loss=math.inf)
        else:
            record["val_accuracy"], record["val_loss"] = accuracy_and_loss(
                model, data.val_x, data.val_y
            )
        if test:
            record["test_accuracy"], record["test_loss"] = (
                (0.0, math.inf) if diverged else accuracy_and_loss(model, data.test_x, data.test_y)
            )
    return record


# ----------------------------------------------------------------------------- choice


def choose(trials: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The trial chosen on validation alone: the fewest steps to the target; among trials that
    never reach it (or tie), the higher final validation accuracy, then the lower trial number."""

    def order(record: dict[str, Any]) -> tuple[float, float, int]:
        steps = record["steps_to_target"]
        return (math.inf if steps is None else steps, -record["val_accuracy"], record["index"])

    return min(trials, key=order)


# ----------------------------------------------------------------------------- the file


def machine() -> dict[str, Any]:
    """The machine, the versions and the numerics policy, for the header of a session."""
    from optim_lessons import numerics
    from optim_lessons.benchmarks.recipe_search import cpu_model

    return {
        "type": "session",
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "policy": {k: os.environ.get(k) for k in numerics.POLICY},
    }


def load(path: Path | str) -> tuple[list[dict[str, Any]], dict[tuple, dict[str, Any]]]:
    """The session headers and the finished runs (by key) of a results file. A line cut off
    by a kill is skipped: that run is trained again."""
    sessions, runs = [], {}
    path = Path(path)
    if not path.exists():
        return sessions, runs
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("type") == "session":
            sessions.append(record)
        elif record.get("type") == "run":
            key = (record["workload"], record["submission"], record["kind"], record["index"])
            runs[key] = record
    return sessions, runs


def _append(path: Path, record: dict[str, Any]) -> None:
    """Append one line. A line left unfinished by a kill is ended first, so that it stays a
    line of its own (which :func:`load` skips) and does not swallow the new record."""
    unfinished = False
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            unfinished = handle.read(1) != b"\n"
    with open(path, "a") as handle:
        handle.write(("\n" if unfinished else "") + json.dumps(record, allow_nan=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def plan(config: Config, runs: dict[tuple, dict[str, Any]]) -> list[RunKey]:
    """The runs still to train, in order. Seed runs can only be planned once their
    submission's trials are all done (the choice needs them); they are listed then."""
    todo = []
    for w in config.workloads:
        for s in config.submissions:
            todo += [
                RunKey(w, s, "trial", i)
                for i in range(config.trials)
                if (w, s, "trial", i) not in runs
            ]
        for s in config.submissions:
            if all((w, s, "trial", i) in runs for i in range(config.trials)):
                todo += [
                    RunKey(w, s, "seed", seed)
                    for seed in config.seeds
                    if (w, s, "seed", seed) not in runs
                ]
            else:
                todo += [RunKey(w, s, "seed", seed) for seed in config.seeds]
        for s in config.without_decay:
            if s in config.submissions:
                todo += [
                    RunKey(w, s, "no_wd", seed)
                    for seed in config.seeds
                    if (w, s, "no_wd", seed) not in runs
                ]
    return todo


def run(
    config: Config = FULL,
    path: Path | str = RESULTS,
    *,
    device: str = "cpu",
    progress: bool = True,
    stop_after: int | None = None,
) -> dict[tuple, dict[str, Any]]:
    """Train every run of ``config`` missing from ``path``, appending each as it finishes.

    ``stop_after`` ends the session after that many new runs (to test resuming)."""
    from tqdm.auto import tqdm

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    target_device = torch.device(device)
    _, runs = load(path)
    todo = plan(config, runs)
    if not todo:
        return runs
    _append(path, machine() | {"device": str(target_device), "config": _config_dict(config)})
    points = trial_points(config.trials)
    total_steps = sum(config.workload(k.workload).steps for k in todo)
    bar = tqdm(total=total_steps, disable=not progress, unit="step", desc="benchmark")
    data_cache: dict[str, Any] = {}
    done = 0
    for key in todo:
        workload = config.workload(key.workload)
        submission = SUBMISSIONS[key.submission]
        if key.workload not in data_cache:
            data_cache.clear()
            data_cache[key.workload] = workload.data(target_device, config.data_scale)
        if key.kind == "trial":
            settings, seed = submission.hyperparameters(points[key.index]), 0
        else:
            trials = [
                runs[(key.workload, key.submission, "trial", i)] for i in range(config.trials)
            ]
            chosen = choose(trials)
            settings, seed = chosen["settings"], key.index
            if key.kind == "no_wd":
                settings = settings | {"weight_decay": 0.0}
        bar.set_postfix_str(f"{key.workload} {key.submission} {key.kind} {key.index}")
        record = train_one(
            workload,
            submission,
            settings,
            seed,
            data_cache[key.workload],
            test=key.kind != "trial",
            device=target_device,
            progress=bar,
        )
        record = {
            "type": "run",
            "workload": key.workload,
            "submission": key.submission,
            "kind": key.kind,
            "index": key.index,
            "target": workload.target,
        } | record
        if key.kind != "trial":
            record["chosen_trial"] = chosen["index"]
        _append(path, record)
        runs[key.as_tuple()] = record
        done += 1
        if stop_after is not None and done >= stop_after:
            break
    bar.close()
    return runs


def _config_dict(config: Config) -> dict[str, Any]:
    return {
        "workloads": list(config.workloads),
        "submissions": list(config.submissions),
        "trials": config.trials,
        "seeds": list(config.seeds),
        "without_decay": list(config.without_decay),
        "data_scale": config.data_scale,
        "steps": config.steps,
    }


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small part, in under a minute")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="results file (default: the committed file; --quick: a temporary one)",
    )
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=list(WORKLOADS),
        default=None,
        help="only these workloads (several sessions can share one file)",
    )
    parser.add_argument(
        "--submissions",
        nargs="+",
        choices=list(SUBMISSIONS),
        default=None,
        help="only these submissions",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(None if argv is None else list(argv))
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    config = QUICK if args.quick else FULL
    if args.workloads:
        config = replace(config, workloads=tuple(args.workloads))
    if args.submissions:
        config = replace(config, submissions=tuple(args.submissions))
    path = args.results
    if path is None:
        path = Path(tempfile.mkdtemp()) / "benchmark_quick.jsonl" if args.quick else RESULTS
    started = time.perf_counter()
    runs = run(config, path, device=args.device, progress=not args.no_progress)
    from optim_lessons.benchmarks.benchmark_tables import Results

    print(f"results: {path} ({len(runs)} runs, this session {time.perf_counter() - started:.0f} s)")
    print(Results.from_runs(runs, config).summary())


if __name__ == "__main__":
    main(sys.argv[1:])
