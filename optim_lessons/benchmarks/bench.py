"""How long does ``optimizer.step()`` take? The from-scratch optimizers against torch.optim.

Run it as a script::

    python -m optim_lessons.benchmarks.bench                      # all fifteen, both model sizes
    python -m optim_lessons.benchmarks.bench --sizes large --optimizers Adam,SGD --repeats 30

For each optimizer it times three implementations of the same update on identical copies of
one model:

- **ours**: the from-scratch class in :mod:`optim_lessons.optimizers`, which updates one
  parameter at a time in a plain Python loop;
- **torch for-loop**: torch.optim's class with ``foreach=False``, its own one-tensor-at-a-time
  path, the fair comparison for ours;
- **torch default**: torch.optim's class as constructed with no flags. On a CPU this is also the
  for-loop path (torch only defaults to its multi-tensor ``foreach`` kernels on accelerators),
  so on a CPU the gap between the two torch columns shows how noisy the timing is.

What is timed is ``step()`` alone. The gradients are filled once, with fixed random values, and
never recomputed: no forward or backward pass is in the measurement. The three implementations
take turns step by step (so a burst of load on a shared machine hits all three alike). The
table reports the median of the per-step times, and for ``ours/loop`` the median of the ratios of
the two steps timed in the same round.

Three optimizers need a different set-up, and the table marks them:

- **LBFGS** calls its closure inside ``step()``. It gets a closure that returns a fixed loss
  and leaves ``.grad`` as it is. Because the loss never changes, LBFGS stops after one inner
  iteration (its test on the change in loss), and since the gradient never changes its
  curvature history stays empty: the time is that of one LBFGS iteration without history.
- **Muon** only accepts 2-D parameters: it gets the model's weight matrices, not the biases.
- **SparseAdam** needs sparse gradients: it gets an embedding table (with ``sparse=True``) of
  the same size class, whose gradient comes from one backward pass over a fixed batch of rows.

The models: ``small`` is the seed's 784-64-10 MLP (:class:`optim_lessons.models.Net`, 50,890
parameters); ``large`` is the same one-hidden-layer MLP widened to 784-6400-10 (5,088,010
parameters). A wide single hidden layer keeps the seed's shape, and keeps Muon's
Newton-Schulz iteration affordable on a CPU (its cost grows with the smaller side of each
weight matrix, 784 here). The embedding tables for SparseAdam are 800 x 64 and 40,000 x 128.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from optim_lessons.training import optimizer_state_bytes

#: The model sizes the benchmark knows.
SIZES = ("small", "large")

#: The hidden width of the large MLP (784-6400-10, about 5.1M parameters).
LARGE_HIDDEN = 6400

#: Rows x columns of the embedding table SparseAdam gets, by size.
EMBEDDING_SHAPES = {"small": (800, 64), "large": (40_000, 128)}

#: Hyperparameters that differ from the class defaults. Plain SGD is a single ``add_``;
#: SGD with momentum is the one people use, and it has state to keep.
BENCH_KWARGS: dict[str, dict] = {"SGD": {"momentum": 0.9}}

#: What the project promises: ours at most this many times torch's for-loop step, at ~5M params.
GOAL_RATIO = 1.25

#: Notes printed under the table for the optimizers that need a special set-up.
SETUP_NOTES = {
    "LBFGS": "closure returns a fixed loss, .grad left as is (one inner iteration, no history)",
    "Muon": "2-D weights only (Muon takes no biases)",
    "SparseAdam": "embedding table with sparse gradients",
    "SGD": "momentum=0.9",
}


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


def large_mlp(hidden: int = LARGE_HIDDEN) -> nn.Module:
    """The seed's MLP shape, 784-hidden-10, made wide enough to have about 5M parameters."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def small_mlp() -> nn.Module:
    """The seed's 784-64-10 MLP."""
    from optim_lessons.models import Net

    return Net()


def make_params(name: str, size: str, device: str | torch.device, seed: int = 0) -> list[Tensor]:
    """The parameters ``name`` is timed on, with ``.grad`` already filled (fixed random values)."""
    if size not in SIZES:
        raise ValueError(f"Unknown size {size!r}; choose from {SIZES}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed + 1)
    if name == "SparseAdam":
        rows, columns = EMBEDDING_SHAPES[size]
        embedding = nn.Embedding(rows, columns, sparse=True).to(device)
        # One backward pass over a fixed batch touching about a tenth of the rows gives the
        # (uncoalesced) sparse gradient an embedding layer produces in training.
        index = torch.randint(0, rows, (rows // 10,), generator=generator).to(device)
        weights = torch.randn(rows // 10, columns, generator=generator).to(device)
        (embedding(index) * weights).sum().backward()
        return [embedding.weight]
    model = (small_mlp() if size == "small" else large_mlp()).to(device)
    params = [p for p in model.parameters() if p.ndim == 2 or name != "Muon"]
    for p in params:
        p.grad = (0.01 * torch.randn(p.shape, generator=generator)).to(device)
    return params


def clone_params(params: Sequence[Tensor]) -> list[Tensor]:
    """Independent copies of the parameters and their gradients, one set per implementation."""
    copies = []
    for p in params:
        copy = p.detach().clone().requires_grad_(True)
        copy.grad = p.grad.clone()
        copies.append(copy)
    return copies


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class BenchRow:
    """One optimizer on one model size: median step times and the memory its state takes."""

    optimizer: str
    size: str
    n_params: int
    ours_ms: float
    torch_for_loop_ms: float
    #: None when torch's class has no ``foreach`` switch: then its default *is* the for-loop.
    torch_default_ms: float | None
    ours_state_bytes_per_param: float
    torch_state_bytes_per_param: float
    steps_timed: int
    device: str
    #: Every per-step time, in ms, by implementation, for whoever wants more than the median.
    samples_ms: dict[str, list[float]] = field(default_factory=dict, repr=False)

    @property
    def ratio(self) -> float:
        """ours / torch for-loop, below 1 when ours is faster: the median over the rounds of the
        ratio of the two steps timed in the same round (moments apart, so a change in the
        machine's load between rounds cancels out)."""
        pairs = zip(self.samples_ms["ours"], self.samples_ms["for-loop"], strict=True)
        return statistics.median(ours / loop for ours, loop in pairs)

    @property
    def meets_goal(self) -> bool:
        return self.ratio <= GOAL_RATIO


def _take_turns(
    implementations: dict[str, torch.optim.Optimizer],
    closure: Callable[[], Tensor] | None,
    device: torch.device,
    warmup: int,
    repeats: int,
    budget_s: float,
    min_repeats: int,
) -> dict[str, list[float]]:
    """Warm every implementation up, then time one step of each per round; times in ms."""
    for optimizer in implementations.values():
        for _ in range(warmup):
            optimizer.step(closure)
    _synchronize(device)

    samples: dict[str, list[float]] = {label: [] for label in implementations}
    labels = list(implementations)
    spent = 0.0
    for round_index in range(repeats):
        # Rotate who goes first, so no implementation always runs right after another.
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            optimizer = implementations[label]
            start = time.perf_counter()
            optimizer.step(closure)
            _synchronize(device)
            elapsed = time.perf_counter() - start
            samples[label].append(elapsed * 1e3)
            spent += elapsed
        if spent > budget_s and round_index + 1 >= min_repeats:
            break
    return samples


def time_optimizer(
    name: str,
    size: str,
    *,
    device: str | torch.device = "cpu",
    repeats: int = 30,
    warmup: int = 2,
    budget_s: float = 4.0,
    min_repeats: int = 3,
    seed: int = 0,
) -> BenchRow:
    """Time ``step()`` of ours, torch's for-loop path and torch's default for one optimizer.

    Each implementation first takes ``warmup`` untimed steps (they create the state). Then the
    implementations take turns, one timed step each per round, for ``repeats`` rounds, or fewer
    (but at least ``min_repeats``) once ``budget_s`` seconds of timed steps have passed.
    """
    device = torch.device(device)
    kwargs = BENCH_KWARGS.get(name, {})
    reference_cls = torch_class(name)
    base = make_params(name, size, device, seed)
    n_params = sum(p.numel() for p in base)

    implementations: dict[str, torch.optim.Optimizer] = {
        "ours": our_class(name)(clone_params(base), **kwargs)
    }
    if takes_foreach(reference_cls):
        implementations["for-loop"] = reference_cls(clone_params(base), foreach=False, **kwargs)
        implementations["default"] = reference_cls(clone_params(base), **kwargs)
    else:
        implementations["for-loop"] = reference_cls(clone_params(base), **kwargs)

    closure: Callable[[], Tensor] | None = None
    if name == "LBFGS":
        fixed_loss = torch.tensor(1.0, device=device)

        def closure() -> Tensor:  # the gradient stays the one filled in above
            return fixed_loss

    # The sparse gradients of SparseAdam are built inside step(); saying explicitly that their
    # invariant checks are off (torch's default anyway) keeps torch from warning about it.
    with torch.sparse.check_sparse_tensor_invariants(enable=False):
        samples = _take_turns(
            implementations, closure, device, warmup, repeats, budget_s, min_repeats
        )

    def per_param(optimizer: torch.optim.Optimizer) -> float:
        return optimizer_state_bytes(optimizer) / n_params

    median = statistics.median
    return BenchRow(
        optimizer=name,
        size=size,
        n_params=n_params,
        ours_ms=median(samples["ours"]),
        torch_for_loop_ms=median(samples["for-loop"]),
        torch_default_ms=median(samples["default"]) if "default" in samples else None,
        ours_state_bytes_per_param=per_param(implementations["ours"]),
        torch_state_bytes_per_param=per_param(implementations["for-loop"]),
        steps_timed=len(samples["ours"]),
        device=str(device),
        samples_ms=samples,
    )


def run_benchmark(
    optimizers: Sequence[str] | None = None,
    sizes: Sequence[str] = SIZES,
    *,
    device: str | torch.device = "cpu",
    repeats: int = 30,
    warmup: int = 2,
    budget_s: float = 4.0,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[BenchRow]:
    """Time every optimizer in ``optimizers`` (default: all fifteen) at every size in ``sizes``."""
    names = list(optimizers) if optimizers else list(torch_names())
    rows = []
    for size in sizes:
        for name in names:
            if progress is not None:
                progress(f"timing {name} ({size})")
            rows.append(
                time_optimizer(
                    name,
                    size,
                    device=device,
                    repeats=repeats,
                    warmup=warmup,
                    budget_s=budget_s,
                    seed=seed,
                )
            )
    return rows


#: The table's columns: header and width.
COLUMNS = (
    ("optimizer", 12),
    ("size", 6),
    ("params", 10),
    ("ours ms", 9),
    ("for-loop ms", 12),
    ("default ms", 11),
    ("ours/loop", 10),
    ("B/param ours", 13),
    ("B/param torch", 14),
    ("steps", 6),
)


def format_table(rows: Sequence[BenchRow]) -> str:
    """The rows as a fixed-width text table, with notes on the special set-ups below it."""

    def cell(text: str, width: int, left: bool = False) -> str:
        return text.ljust(width) if left else text.rjust(width)

    lines = ["".join(cell(header, width, left=i < 2) for i, (header, width) in enumerate(COLUMNS))]
    lines.append("-" * len(lines[0]))
    for row in rows:
        name = row.optimizer + ("*" if row.optimizer in SETUP_NOTES else "")
        default = "= loop" if row.torch_default_ms is None else f"{row.torch_default_ms:.3f}"
        values = (
            name,
            row.size,
            f"{row.n_params:,}",
            f"{row.ours_ms:.3f}",
            f"{row.torch_for_loop_ms:.3f}",
            default,
            f"{row.ratio:.2f}",
            f"{row.ours_state_bytes_per_param:.2f}",
            f"{row.torch_state_bytes_per_param:.2f}",
            str(row.steps_timed),
        )
        lines.append(
            "".join(
                cell(v, w, left=i < 2)
                for i, (v, (_, w)) in enumerate(zip(values, COLUMNS, strict=True))
            )
        )
    notes = [
        f"  * {name}: {SETUP_NOTES[name]}"
        for name in dict.fromkeys(r.optimizer for r in rows)
        if name in SETUP_NOTES
    ]
    if notes:
        lines.append("")
        lines.extend(notes)
    if any(r.torch_default_ms is None for r in rows):
        lines.append(
            "  '= loop': torch's class has no foreach switch; its default is the for-loop path"
        )
    return "\n".join(lines)


def goal_summary(rows: Sequence[BenchRow], size: str = "large") -> str:
    """Which optimizers miss the goal (ours within GOAL_RATIO x torch's for-loop) at ``size``."""
    judged = [r for r in rows if r.size == size]
    if not judged:
        return f"goal (ours <= {GOAL_RATIO}x torch for-loop): no {size} runs to judge"
    misses = [f"{r.optimizer} ({r.ratio:.2f}x)" for r in judged if not r.meets_goal]
    verdict = "all met" if not misses else "missed by " + ", ".join(misses)
    return f"goal (ours <= {GOAL_RATIO}x torch for-loop at {size}): {verdict}"


def main(argv: Sequence[str] | None = None) -> list[BenchRow]:
    parser = argparse.ArgumentParser(
        prog="python -m optim_lessons.benchmarks.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: small,large")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--repeats", type=int, default=30, help="timed steps per implementation (most)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument(
        "--budget",
        type=float,
        default=4.0,
        help="seconds of timed steps per optimizer and size before stopping early "
        "(at least 3 rounds run)",
    )
    parser.add_argument(
        "--optimizers", default="", help="comma-separated names (default: all fifteen)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default 1: steadier timings on a busy machine; "
        "0 keeps torch's own choice)",
    )
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

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    start = time.perf_counter()
    rows = run_benchmark(
        names,
        sizes,
        device=args.device,
        repeats=args.repeats,
        warmup=args.warmup,
        budget_s=args.budget,
        progress=progress,
    )
    print(
        f"optimizer.step(): median time per step on {args.device} "
        f"({torch.get_num_threads()} CPU thread(s)), torch {torch.__version__}"
    )
    print(format_table(rows))
    print()
    print(goal_summary(rows, "large" if "large" in sizes else sizes[-1]))
    print(f"benchmark took {time.perf_counter() - start:.0f} s")
    return rows


if __name__ == "__main__":
    main()
