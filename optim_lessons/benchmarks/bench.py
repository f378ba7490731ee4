"""How long does ``optimizer.step()`` take? Ours against torch.optim, and both against the limit.

Run it as a script::

    python -m optim_lessons.benchmarks.bench            # about a minute: see "the default run"
    python -m optim_lessons.benchmarks.bench --all      # every optimizer at both sizes (slow)
    python -m optim_lessons.benchmarks.bench --sizes large --optimizers Adam --repeats 30
    python -m optim_lessons.benchmarks.bench --output results.md   # also write the table

For each optimizer it times every implementation of the same update it has, on identical copies
of one model:

- **ours**: the readable class in :mod:`optim_lessons.optimizers`, one parameter at a time;
- **for-loop**: torch.optim's class with ``foreach=False``, its one-tensor-at-a-time path, the
  fair comparison for ours (on a CPU it is also torch's default);
- **foreach**: torch's multi-tensor path, each operation on a list of tensors at once;
- **fused**: torch's hand-written single-kernel path (SGD, Adam, AdamW, Adagrad);
- **flat** and **compiled**: ours from :mod:`optim_lessons.fast` (flat buffers, one update per
  group; the same through ``torch.compile``), for SGD, Adam, AdamW and Adagrad;
- **triton**: our hand-written Triton kernel (Adam, AdamW), on CUDA only.

Beside them, the **roofline**: the time to move the bytes one step must read and write
(:mod:`optim_lessons.benchmarks.roofline`) at the machine's streaming speed. On a shared
machine that speed changes by the minute, so the run times it in every round, beside the
steps: an in-place pass over buffers of exactly that many bytes (:class:`StreamPass`).
``%roof`` is that time over the fastest measured step, for ours and for torch's. The bandwidth
measured once at the start goes into the results file's environment.

What is timed is ``step()`` alone. The gradients are filled once, with fixed random values, and
never recomputed: no forward or backward pass is in the measurement. The implementations take
turns step by step (so a burst of load on a shared machine hits all alike), and each reported
time is the median of at least 15 timed steps; a ratio such as ``ours/loop`` is the median of the
ratios of the two steps timed in the same round. Every implementation first takes two untimed
steps: they create the state, and for ``compiled`` they compile (seconds, once per process).

Three optimizers need a different set-up, and the table marks them:

- **LBFGS** calls its closure inside ``step()``. It gets a closure that returns a fixed loss
  and leaves ``.grad`` as it is, so it stops after one inner iteration without history.
- **Muon** only accepts 2-D parameters: it gets the model's weight matrices, not the biases.
- **SparseAdam** needs sparse gradients: it gets an embedding table (with ``sparse=True``) of
  the same size class, whose gradient comes from one backward pass over a fixed batch of rows.

The models: ``small`` is the seed's 784-64-10 MLP (:class:`optim_lessons.models.Net`, 50,890
parameters); ``large`` is the same one-hidden-layer MLP widened to 784-6400-10 (5,088,010
parameters); ``deep`` has about as many parameters in many more tensors (32 layers of 392-392:
5,241,442 parameters in 68 tensors), where per-tensor costs show. The embedding tables for
SparseAdam are 800 x 64 and 40,000 x 128 (the large one for ``deep`` too).

The default run (under a minute on two CPU cores) times all fifteen optimizers on ``small``
against torch's paths, and the four with fast paths on ``large`` with them. ``--all`` adds the
other eleven on ``large`` and the fast paths on ``small``: Muon alone then takes minutes on a
CPU without bfloat16 arithmetic (:data:`MUON_NOTE`).
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from optim_lessons.benchmarks import roofline
from optim_lessons.benchmarks.bench_models import (
    SIZES,
    clone_params,
    make_params,
)
from optim_lessons.benchmarks.bench_report import (
    LABELS,
    MUON_NOTE,
    BenchRow,
    bfloat16_slowdown,
    cpu_has_bfloat16,
    environment,
    format_spread,
    format_table,
    goal_summary,
)
from optim_lessons.training import optimizer_state_bytes

#: Hyperparameters that differ from the class defaults. Plain SGD is a single ``add_``;
#: SGD with momentum is the one people use, and it has state to keep.
BENCH_KWARGS: dict[str, dict] = {"SGD": {"momentum": 0.9}}

#: The optimizers with fast paths in optim_lessons.fast, and their classes there.
FAST_PATHS = {
    "SGD": ("FlatSGD", "CompiledSGD"),
    "Adam": ("FlatAdam", "CompiledAdam"),
    "AdamW": ("FlatAdamW", "CompiledAdamW"),
    "Adagrad": ("FlatAdagrad", "CompiledAdagrad"),
}
TRITON_PATHS = {"Adam": "TritonAdam", "AdamW": "TritonAdamW"}




def torch_names() -> tuple[str, ...]:
    """The fifteen optimizers torch.optim ships, in the order the library lists them."""
    from optim_lessons.optimizers import TORCH_NAMES

    return tuple(TORCH_NAMES)


def our_class(name: str) -> type[torch.optim.Optimizer]:
    """The from-scratch optimizer called ``name``."""
    import optim_lessons.optimizers as ours

    return getattr(ours, name)


def torch_class(name: str) -> type[torch.optim.Optimizer]:
    return getattr(torch.optim, name)


def takes_foreach(cls: type[torch.optim.Optimizer]) -> bool:
    """Whether a torch.optim class has a ``foreach`` switch (LBFGS, Muon and SparseAdam do not)."""
    return "foreach" in inspect.signature(cls.__init__).parameters


def takes_fused(cls: type[torch.optim.Optimizer]) -> bool:
    """Whether a torch.optim class has a ``fused`` switch (SGD, Adam, AdamW, Adagrad)."""
    return "fused" in inspect.signature(cls.__init__).parameters


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def implementations(
    name: str, device: torch.device, fast: bool = True
) -> dict[str, Callable[[list[Tensor]], torch.optim.Optimizer]]:
    """Every implementation of ``name`` this run can time, by column label: a function that
    builds it on a list of parameters."""
    kwargs = BENCH_KWARGS.get(name, {})
    reference = torch_class(name)
    builders: dict[str, Callable[[list[Tensor]], torch.optim.Optimizer]] = {
        "ours": lambda params: our_class(name)(params, **kwargs)
    }
    if takes_foreach(reference):
        builders["for-loop"] = lambda params: reference(params, foreach=False, **kwargs)
        builders["foreach"] = lambda params: reference(params, foreach=True, **kwargs)
    else:
        builders["for-loop"] = lambda params: reference(params, **kwargs)
    if takes_fused(reference):
        builders["fused"] = lambda params: reference(params, fused=True, **kwargs)
    if fast and name in FAST_PATHS:
        from optim_lessons.fast import compiled, flat

        flat_name, compiled_name = FAST_PATHS[name]
        builders["flat"] = lambda params: getattr(flat, flat_name)(params, **kwargs)
        builders["compiled"] = lambda params: getattr(compiled, compiled_name)(params, **kwargs)
    if fast and name in TRITON_PATHS and device.type == "cuda":
        from optim_lessons.fast import triton_adam

        builders["triton"] = lambda params: getattr(triton_adam, TRITON_PATHS[name])(
            params, **kwargs
        )
    return builders


def _take_turns(
    optimizers: dict[str, torch.optim.Optimizer],
    closure: Callable[[], Tensor] | None,
    device: torch.device,
    repeats: int,
    budget_s: float,
    min_repeats: int,
) -> dict[str, list[float]]:
    """Time one step of each per round, rotating who goes first; times in ms."""
    samples: dict[str, list[float]] = {label: [] for label in optimizers}
    labels = list(optimizers)
    spent = 0.0
    for round_index in range(repeats):
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            optimizer = optimizers[label]
            start = time.perf_counter()
            optimizer.step(closure)
            _synchronize(device)
            elapsed = time.perf_counter() - start
            samples[label].append(elapsed * 1e3)
            spent += elapsed
        if spent > budget_s and round_index + 1 >= min_repeats:
            break
    return samples


class StreamPass:
    """The roofline, timed: ``x.addcmul_(y, z)`` (three buffers read, one written, in place,
    as an optimizer's step does) over buffers sized so that the pass moves exactly the bytes a
    step must move. It stands in the round-robin with the optimizers, so that it meets the same
    load they do."""

    def __init__(self, bytes_moved: int, device: torch.device) -> None:
        n = max(1, bytes_moved // 16)  # 16 bytes per number: three reads and a write
        self.buffers = [torch.ones(n, device=device) for _ in range(3)]

    def step(self, closure: object = None) -> None:
        target, first, second = self.buffers
        target.addcmul_(first, second)


def _roofline_params(name: str, params: Sequence[Tensor]) -> int:
    """The parameters a step must touch: all of them, or for SparseAdam the rows in its
    gradient."""
    if name == "SparseAdam":
        (table,) = params
        rows = table.grad.coalesce().indices().unique().numel()
        return rows * table.shape[1]
    return sum(p.numel() for p in params)


def time_optimizer(
    name: str,
    size: str,
    *,
    device: str | torch.device = "cpu",
    repeats: int = 15,
    warmup: int = 2,
    budget_s: float = 30.0,
    min_repeats: int = 15,
    seed: int = 0,
    fast: bool = True,
    bandwidth: float | None = None,
    stream_roofline: bool = False,
) -> BenchRow:
    """Time ``step()`` of every implementation of one optimizer on one model size.

    Each implementation first takes ``warmup`` untimed steps (they create the state, and
    compile). Then they take turns, one timed step each per round, for ``repeats`` rounds, or
    fewer (but at least ``min_repeats``) once ``budget_s`` seconds of timed steps have passed.
    ``bandwidth`` (bytes per second) gives the roofline column; with ``stream_roofline`` the
    roofline is instead timed in the same rounds (:class:`StreamPass`), under the same load.
    """
    started = time.perf_counter()
    device = torch.device(device)
    base = make_params(name, size, device, seed)
    n_params = sum(p.numel() for p in base)

    closure: Callable[[], Tensor] | None = None
    if name == "LBFGS":
        fixed_loss = torch.tensor(1.0, device=device)

        def closure() -> Tensor:  # the gradient stays the one filled in above
            return fixed_loss

    optimizers: dict[str, torch.optim.Optimizer] = {}
    skipped: dict[str, str] = {}
    # The sparse gradients of SparseAdam are built inside step(); saying explicitly that their
    # invariant checks are off (torch's default anyway) keeps torch from warning about it.
    with torch.sparse.check_sparse_tensor_invariants(enable=False):
        for label, build in implementations(name, device, fast).items():
            try:
                optimizer = build(clone_params(base))
                for _ in range(warmup):
                    optimizer.step(closure)
            except RuntimeError as error:  # no C++ compiler for "compiled", say
                if label in ("ours", "for-loop"):
                    raise
                skipped[label] = str(error).splitlines()[0]
                continue
            optimizers[label] = optimizer
        traffic = roofline.TRAFFIC.get(name)
        if stream_roofline and traffic is not None:
            moved = _roofline_params(name, base) * traffic.bytes_per_param()
            optimizers["stream"] = StreamPass(moved, device)  # type: ignore[assignment]
        _synchronize(device)
        samples = _take_turns(optimizers, closure, device, repeats, budget_s, min_repeats)

    def per_param(optimizer: torch.optim.Optimizer) -> float:
        return optimizer_state_bytes(optimizer) / n_params

    limit = None
    if "stream" in samples:
        limit = statistics.median(samples["stream"])
    elif bandwidth is not None:
        seconds = roofline.step_time_limit(name, _roofline_params(name, base), bandwidth)
        limit = None if seconds is None else seconds * 1e3
    return BenchRow(
        optimizer=name,
        size=size,
        n_params=n_params,
        samples_ms=samples,
        ours_state_bytes_per_param=per_param(optimizers["ours"]),
        torch_state_bytes_per_param=per_param(optimizers["for-loop"]),
        device=str(device),
        roofline_ms=limit,
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )


def default_plan(names: Sequence[str], sizes: Sequence[str]) -> list[tuple[str, str, bool]]:
    """The default run, as (optimizer, size, with fast paths): every optimizer on ``small``
    against torch, and on the other sizes the optimizers with fast paths, with them. (The rest
    of ``large`` is slow, Muon above all; on ``small`` the fast paths are all overhead, and
    compiling them for a second shape would double the compile time.)"""
    return [
        (name, size, size != "small")
        for size in sizes
        for name in names
        if size == "small" or name in FAST_PATHS
    ]


def run_benchmark(
    optimizers: Sequence[str] | None = None,
    sizes: Sequence[str] = ("small",),
    *,
    device: str | torch.device = "cpu",
    repeats: int = 15,
    warmup: int = 2,
    budget_s: float = 30.0,
    min_repeats: int | None = None,
    seed: int = 0,
    fast: bool = True,
    plan: Sequence[tuple[str, str, bool]] | None = None,
    bandwidth: float | None = None,
    stream_roofline: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[BenchRow]:
    """Time every optimizer in ``optimizers`` (default: all fifteen) at every size in ``sizes``
    (or the (optimizer, size, with fast paths) triples in ``plan``); ``progress`` hears about
    each row as it finishes."""
    names = list(optimizers) if optimizers else list(torch_names())
    pairs = list(plan) if plan is not None else [(n, s, fast) for s in sizes for n in names]
    rows = []
    for index, (name, size, with_fast) in enumerate(pairs, start=1):
        if progress is not None:
            progress(f"[{index}/{len(pairs)}] {name} ({size}) ...")
        row = time_optimizer(
            name,
            size,
            device=device,
            repeats=repeats,
            warmup=warmup,
            budget_s=budget_s,
            min_repeats=min(repeats, 15) if min_repeats is None else min_repeats,
            seed=seed,
            fast=with_fast,
            bandwidth=bandwidth,
            stream_roofline=stream_roofline,
        )
        rows.append(row)
        if progress is not None:
            progress(f"[{index}/{len(pairs)}] {name} ({size}) {row_summary(row)}")
    return rows


def row_summary(row: BenchRow) -> str:
    """One line per finished row, for the progress log."""
    times = ", ".join(f"{label} {row.median(label):.2f}" for label in LABELS if row.median(label))
    return f"ms: {times} ({row.seconds:.1f} s)"


def main(argv: Sequence[str] | None = None) -> list[BenchRow]:
    parser = argparse.ArgumentParser(
        prog="python -m optim_lessons.benchmarks.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="every optimizer at every size given (Muon at large takes minutes on most CPUs)",
    )
    parser.add_argument("--sizes", default="small,large", help="comma-separated: small,large,deep")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=15, help="timed steps per implementation")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument(
        "--optimizers", default="", help="comma-separated names (default: all fifteen)"
    )
    parser.add_argument(
        "--no-fast", action="store_true", help="leave out the flat, compiled and triton columns"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default 1: steadier timings on a busy machine; "
        "0 keeps torch's own choice)",
    )
    parser.add_argument("--output", default="", help="also write the tables to this file")
    args = parser.parse_args(argv)

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for size in sizes:
        if size not in SIZES:
            parser.error(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
    names = [n.strip() for n in args.optimizers.split(",") if n.strip()] or list(torch_names())
    for name in names:
        if name not in torch_names():
            parser.error(f"unknown optimizer {name!r}; choose from {', '.join(torch_names())}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    # Named optimizers run at every size; otherwise the default plan keeps the run short.
    plan = None if args.all or args.optimizers else default_plan(names, sizes)
    if plan is not None and args.no_fast:
        plan = [(name, size, False) for name, size, _ in plan]

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    start = time.perf_counter()
    device = torch.device(args.device)
    progress(f"measuring the streaming bandwidth of {device} ...")
    bandwidth = roofline.measure_bandwidth(device)
    muon_large = any(
        name == "Muon" and size != "small"
        for name, size, _ in (plan or [(n, s, True) for s in sizes for n in names])
    )
    if "Muon" in names and device.type == "cpu" and cpu_has_bfloat16() is not True:
        slowdown = bfloat16_slowdown()
        note = (
            f"{MUON_NOTE} Here a 512 x 512 matrix product takes {slowdown:.0f}x longer in "
            "bfloat16 than in float32."
        )
        if muon_large:
            note += " Muon at large is in this run: expect minutes."
        progress(note)
    rows = run_benchmark(
        names,
        sizes,
        device=device,
        repeats=args.repeats,
        warmup=args.warmup,
        fast=not args.no_fast,
        plan=plan,
        stream_roofline=True,
        progress=progress,
    )
    info = environment(device, bandwidth)
    header = (
        f"optimizer.step(): median ms per step on {device} "
        f"({torch.get_num_threads()} CPU thread(s)), torch {torch.__version__}"
    )
    table = format_table(rows)
    judged = "large" if "large" in sizes else sizes[-1]
    goals = goal_summary(rows, judged)
    print(header)
    print(table)
    print()
    print(goals)
    elapsed = time.perf_counter() - start
    print(f"benchmark took {elapsed:.0f} s")
    if args.output:
        text = [f"# {header}", ""]
        text += [f"- {key}: {value}" for key, value in info.items()]
        text += [f"- command: python -m optim_lessons.benchmarks.bench {' '.join(argv or [])}"]
        text += [f"- run time: {elapsed:.0f} s", "", "```", table, "", goals, "```", ""]
        text += ["Spread of the timed steps (ms):", "", "```", format_spread(rows), "```", ""]
        Path(args.output).write_text("\n".join(text))
        progress(f"wrote {args.output}")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
