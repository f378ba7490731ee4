"""The race: every optimizer on the seed's MLP, from the same start, each at its best learning rate.

A fair race needs three things, and :func:`race` does all three:

1. **The same start.** One :class:`~optim_lessons.models.Net` is built once; its ``state_dict``
   is cloned into every run. Every run also sees the same batches in the same order.
2. **A learning rate for each optimizer.** A rate that suits SGD wrecks Adam, and the other way
   round. Each optimizer tries the few rates of its own small grid (:data:`SWEEPS`), a range
   centred on where that optimizer usually works.
3. **A judge that is not the test set.** The best rate is picked on a validation split held out
   from the training images. The test images are used once, for the run that was picked.

The *recipe* (one optimizer, one schedule and a few regularizers, trained for up to 20 epochs
on all of Fashion-MNIST) is in :mod:`optim_lessons.benchmarks.recipe`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from optim_lessons.data import TensorLoader, load_tensors
from optim_lessons.models import Net
from optim_lessons.tables import TextTable
from optim_lessons.training import (
    History,
    default_device,
    evaluate,
    optimizer_state_bytes,
    set_seed,
    train,
)

#: How an optimizer is given the model's parameters.
PARAM_MODES = ("all", "matrices", "sparse")


@dataclass(frozen=True)
class OptimizerSpec:
    """One racer: an optimizer class, its fixed hyperparameters and its learning-rate grid.

    ``params`` says what the optimizer is given: ``"all"`` parameters; ``"matrices"``, the 2-D
    weights only (Muon orthogonalizes matrices and refuses anything else, so the biases keep
    their initial values); or ``"sparse"``, all parameters with every gradient turned into a
    sparse tensor of its non-zero rows by a hook (SparseAdam refuses dense gradients, and the
    MLP has no embedding). SparseAdam then skips the rows whose gradient is exactly zero: a
    hidden unit that no image of the batch switched on.
    """

    name: str
    lrs: tuple[float, ...]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    params: str = "all"
    note: str = ""
    #: The class to build; ``None`` means the from-scratch class of the same name.
    optimizer_class: type[torch.optim.Optimizer] | None = None

    def __post_init__(self) -> None:
        if self.params not in PARAM_MODES:
            raise ValueError(f"params must be one of {PARAM_MODES}, got {self.params!r}")
        if not self.lrs:
            raise ValueError(f"{self.name}: the learning-rate grid is empty")

    def resolve_class(self) -> type[torch.optim.Optimizer]:
        if self.optimizer_class is not None:
            return self.optimizer_class
        import optim_lessons.optimizers as ours

        return getattr(ours, self.name)

    def sparse_context(self) -> contextlib.AbstractContextManager:
        """Where the run builds sparse tensors, say explicitly that their invariant checks are
        off (torch's default, which it otherwise warns about once per process)."""
        if self.params == "sparse":
            return torch.sparse.check_sparse_tensor_invariants(enable=False)
        return contextlib.nullcontext()

    def build(self, model: nn.Module, lr: float) -> torch.optim.Optimizer:
        """The optimizer over ``model``'s parameters at rate ``lr`` (hooks installed if needed)."""
        if self.params == "matrices":
            params = [p for p in model.parameters() if p.ndim == 2]
        else:
            params = list(model.parameters())
        if self.params == "sparse":
            for p in params:
                p.register_post_accumulate_grad_hook(_make_grad_sparse)
        return self.resolve_class()(params, lr=lr, **dict(self.kwargs))


def _make_grad_sparse(param: Tensor) -> None:
    """Called once ``backward`` has filled ``param.grad``: store it as a sparse tensor of rows.

    Only the rows with a non-zero entry are kept, the way an embedding's gradient holds only
    the rows a batch looked up. (Built by hand: ``Tensor.to_sparse(sparse_dim=1)`` gives the
    same tensor but is far slower on a CPU.)
    """
    grad = param.grad
    rows = grad.reshape(grad.shape[0], -1).ne(0).any(dim=1).nonzero().squeeze(1)
    param.grad = torch.sparse_coo_tensor(
        rows.unsqueeze(0), grad[rows], grad.shape, check_invariants=False, is_coalesced=True
    )


#: Each optimizer's learning-rate grid for a short race (a few hundred steps at batch 64) and
#: the settings it runs with. Three rates, a factor of about 3 apart, around the optimizer's
#: usual range for a race this short.
#:
#: LBFGS needs care on mini-batches. Its default (``max_iter=20``) would take twenty moves on
#: every batch, overfitting it at twenty times the cost. Here it takes two: the second move uses
#: a curvature pair measured on the same batch. ``max_eval=3`` matters: torch's default,
#: ``max_iter * 5 // 4``, is 2 for ``max_iter=2``, and the step would stop after the first move
#: (two evaluations used), paying for an evaluation it never uses. ``history_size=10`` keeps the
#: memory at 88 bytes per parameter instead of 808.
SWEEPS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in (
        OptimizerSpec("SGD", (0.003, 0.01, 0.03), {"momentum": 0.9}, note="momentum=0.9"),
        OptimizerSpec("Adam", (1e-3, 3e-3, 1e-2)),
        OptimizerSpec("AdamW", (1e-3, 3e-3, 1e-2)),
        OptimizerSpec("Adagrad", (0.01, 0.03, 0.1)),
        OptimizerSpec("Adadelta", (0.3, 1.0, 3.0)),
        OptimizerSpec("Adamax", (3e-3, 1e-2, 3e-2)),
        OptimizerSpec("ASGD", (0.03, 0.1, 0.3)),
        OptimizerSpec("NAdam", (1e-3, 3e-3, 1e-2)),
        OptimizerSpec("RAdam", (3e-3, 1e-2, 3e-2)),
        OptimizerSpec("RMSprop", (3e-4, 1e-3, 3e-3)),
        OptimizerSpec("Rprop", (1e-3, 1e-2, 1e-1)),
        OptimizerSpec(
            "LBFGS",
            (0.03, 0.1, 0.3),
            {"max_iter": 2, "max_eval": 3, "history_size": 10},
            note="max_iter=2, max_eval=3, history_size=10",
        ),
        OptimizerSpec(
            "SparseAdam",
            (1e-3, 3e-3, 1e-2),
            params="sparse",
            note="sparse gradients (non-zero rows)",
        ),
        OptimizerSpec("Adafactor", (1e-2, 3e-2, 1e-1)),
        OptimizerSpec(
            "Muon",
            (0.003, 0.01, 0.03),
            params="matrices",
            note="2-D weights only",
        ),
    )
}


def default_specs(names: Sequence[str] | None = None) -> list[OptimizerSpec]:
    """The racers of :data:`SWEEPS` called ``names`` (default: all fifteen), in that order."""
    names = list(SWEEPS) if names is None else list(names)
    unknown = [n for n in names if n not in SWEEPS]
    if unknown:
        raise ValueError(f"No sweep grid for {unknown}; known: {sorted(SWEEPS)}")
    return [SWEEPS[n] for n in names]


# ----------------------------------------------------------------------------------- data


@dataclass
class Splits:
    """Training, validation and test loaders; training and validation are disjoint parts of the
    60,000 training images, the test loader holds the 10,000 test images."""

    train: Any
    validation: TensorLoader | None
    test: TensorLoader
    #: Which of the 60,000 training images each of the first two holds.
    train_index: Tensor | None = None
    validation_index: Tensor | None = None


def make_splits(
    train_size: int | None = None,
    val_size: int = 5_000,
    *,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device | None = None,
    name: str = "fashion_mnist",
    eval_batch_size: int = 1000,
) -> Splits:
    """Hold out ``val_size`` training images for validation; train on ``train_size`` of the rest.

    ``train_size=None`` trains on every image not held out; ``val_size=0`` holds out nothing
    (``validation`` is then ``None``). Which images go where depends only on ``seed``.
    """
    device = default_device() if device is None else torch.device(device)
    images, labels = load_tensors(name, train=True, device=device)
    available = labels.shape[0]
    if not 0 <= val_size < available:
        raise ValueError(f"val_size must be from 0 to {available - 1}, got {val_size}")
    rest = available - val_size
    if train_size is None:
        train_size = rest
    if not 1 <= train_size <= rest:
        raise ValueError(
            f"train_size must be from 1 to {rest} when val_size={val_size}, got {train_size}"
        )
    order = torch.randperm(available, generator=torch.Generator().manual_seed(seed)).to(device)
    validation_index, train_index = order[:val_size], order[val_size : val_size + train_size]
    train_loader = TensorLoader(images[train_index], labels[train_index], batch_size, True, seed)
    validation = None
    if val_size:
        validation = TensorLoader(
            images[validation_index], labels[validation_index], eval_batch_size, False, seed
        )
    test_images, test_labels = load_tensors(name, train=False, device=device)
    test = TensorLoader(test_images, test_labels, eval_batch_size, False, seed)
    return Splits(train_loader, validation, test, train_index.cpu(), validation_index.cpu())


# ----------------------------------------------------------------------------------- the race


@dataclass
class SweepRun:
    """One optimizer at one learning rate."""

    name: str
    lr: float
    val_loss: float
    val_accuracy: float
    seconds: float
    #: CPU time of the process during training (on a CPU device; GPU work is not counted).
    cpu_seconds: float = 0.0

    @property
    def diverged(self) -> bool:
        return not math.isfinite(self.val_loss)


@dataclass
class RaceRow:
    """One optimizer's entry in the race: its run at the rate the validation split chose."""

    name: str
    best_lr: float
    val_accuracy: float
    test_accuracy: float
    test_loss: float
    #: Training loss of every step of the chosen run (the mini-batch loss before each step).
    loss: list[float]
    #: Training time of the chosen run (evaluation excluded), and of the whole grid.
    seconds: float
    sweep_seconds: float
    state_bytes_per_param: float
    lrs: tuple[float, ...]
    note: str = ""
    #: CPU time of the chosen run: steadier than wall time when other programs share the CPU.
    cpu_seconds: float = 0.0


@dataclass
class RaceResult:
    rows: list[RaceRow]
    sweep: list[SweepRun]
    epochs: int
    train_size: int
    val_size: int
    batch_size: int
    seconds: float

    def row(self, name: str) -> RaceRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def ranked(self) -> list[RaceRow]:
        """Rows from the highest test accuracy to the lowest."""
        return sorted(self.rows, key=lambda r: -r.test_accuracy)

    def table(self, *, ranked: bool = True, timings: bool = True) -> TextTable:
        """A fixed-width text table, one line per optimizer, best test accuracy first (an HTML
        table where a notebook displays it).

        ``timings=False`` leaves out the two wall-time columns (seconds of the chosen run and of
        the whole grid), the only numbers that change from run to run.
        """
        columns = ["optimizer", "best lr", "val acc", "test acc", "test loss"]
        columns += ["train s", "grid s"] if timings else []
        columns += ["state B/param", "note"]
        widths = [11, 9, 9, 10, 10, *((9, 8) if timings else ()), 15]
        cells = []
        for r in self.ranked() if ranked else self.rows:
            numbers = [r.val_accuracy, r.test_accuracy, r.test_loss]
            seconds = [f"{r.seconds:.2f}", f"{r.sweep_seconds:.2f}"] if timings else []
            cells.append(
                [r.name, f"{r.best_lr:.3g}", *(f"{v:.4f}" for v in numbers), *seconds]
                + [f"{r.state_bytes_per_param:.2f}", r.note]
            )

        def line(row: list[str]) -> str:
            padded = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
            return f"{''.join(padded)}  {row[-1]}".rstrip()

        header = line(columns)
        text = "\n".join([header, "-" * len(header), *map(line, cells)])
        return TextTable(columns, cells, right=range(1, len(columns) - 1), text=text)


def _better(run: SweepRun, best: SweepRun | None) -> bool:
    """Higher validation accuracy wins; equal accuracies go to the lower validation loss."""
    if best is None:
        return True
    if run.diverged != best.diverged:
        return not run.diverged
    if run.val_accuracy != best.val_accuracy:
        return run.val_accuracy > best.val_accuracy
    return run.val_loss < best.val_loss


def race(
    specs: Sequence[OptimizerSpec] | None = None,
    *,
    epochs: int = 2,
    lrs: Mapping[str, Sequence[float]] | None = None,
    seed: int = 0,
    train_size: int | None = 10_000,
    val_size: int = 5_000,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    splits: Splits | None = None,
    progress: Callable[[str], None] | None = None,
) -> RaceResult:
    """Train the seed MLP with every optimizer in ``specs`` at every rate of its grid.

    All runs start from one set of initial weights (built with ``set_seed(seed)``) and see the
    same batches. For each optimizer the rate with the best validation accuracy is kept and
    only that run is evaluated on the test set.

    Args:
        specs: the racers (default: all fifteen of :data:`SWEEPS`).
        epochs: passes over the training subset for every run.
        lrs: optional ``{name: rates}`` replacing a racer's own grid.
        train_size, val_size, batch_size, seed: see :func:`make_splits`.
        splits: ready-made loaders (then ``train_size``, ``val_size`` and ``batch_size`` are
            ignored).
        progress: called with a short message before each run, e.g. ``print``.
    """
    started = time.perf_counter()
    specs = default_specs() if specs is None else list(specs)
    lrs = dict(lrs or {})
    device = default_device() if device is None else torch.device(device)
    if splits is None:
        splits = make_splits(train_size, val_size, batch_size=batch_size, seed=seed, device=device)
    if splits.validation is None:
        raise ValueError("the race needs a validation split to choose the learning rates")

    set_seed(seed)
    initial_state = {k: v.detach().clone() for k, v in Net().state_dict().items()}

    rows: list[RaceRow] = []
    sweep: list[SweepRun] = []
    for spec in specs:
        grid = tuple(lrs.get(spec.name, spec.lrs))
        best: SweepRun | None = None
        best_model: nn.Module | None = None
        best_history: History | None = None
        best_state_bytes = 0.0
        for lr in grid:
            if progress is not None:
                progress(f"{spec.name} lr={lr:g}")
            model = Net()
            model.load_state_dict(initial_state)
            model.to(device)
            optimizer = spec.build(model, lr)
            cpu_started = time.process_time()
            with spec.sparse_context():
                history = train(
                    model,
                    optimizer,
                    splits.train,
                    epochs=epochs,
                    device=device,
                    seed=seed,
                    progress=False,
                )
            validation = evaluate(model, splits.validation, device=device)
            cpu_seconds = time.process_time() - cpu_started
            run = SweepRun(
                spec.name,
                lr,
                validation.loss,
                validation.accuracy,
                sum(history.epoch_seconds),
                cpu_seconds,
            )
            sweep.append(run)
            if _better(run, best):
                optimized = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
                best, best_model, best_history = run, model, history
                best_state_bytes = optimizer_state_bytes(optimizer) / optimized
        assert best is not None and best_model is not None and best_history is not None
        test = evaluate(best_model, splits.test, device=device)
        rows.append(
            RaceRow(
                name=spec.name,
                best_lr=best.lr,
                val_accuracy=best.val_accuracy,
                test_accuracy=test.accuracy,
                test_loss=test.loss,
                loss=list(best_history.loss),
                seconds=best.seconds,
                sweep_seconds=sum(r.seconds for r in sweep if r.name == spec.name),
                state_bytes_per_param=best_state_bytes,
                lrs=grid,
                note=spec.note,
                cpu_seconds=best.cpu_seconds,
            )
        )
    return RaceResult(
        rows,
        sweep,
        epochs,
        splits.train.dataset_size,
        splits.validation.dataset_size,
        splits.train.batch_size,
        time.perf_counter() - started,
    )


def plot_race(
    result: RaceResult, *, smooth_window: int = 25, figsize: tuple[float, float] = (12.0, 7.5)
):
    """Four panels: training loss of each chosen run, test accuracy, training time and the
    optimizer's memory (state bytes per parameter), one bar per optimizer, best first."""
    import matplotlib.pyplot as plt
    import numpy as np

    from optim_lessons.playground.plots import smooth

    figure, axes = plt.subplots(2, 2, figsize=figsize)
    loss_ax, accuracy_ax, time_ax, memory_ax = axes.flat
    ranked = result.ranked()
    colors = plt.get_cmap("tab20").colors
    color_of = {row.name: colors[i % len(colors)] for i, row in enumerate(result.rows)}

    for row in result.rows:
        values = smooth(np.asarray(row.loss, dtype=float), smooth_window)
        loss_ax.plot(
            np.arange(values.size), values, color=color_of[row.name], linewidth=1.2, label=row.name
        )
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("step (mini-batch)")
    loss_ax.set_ylabel("training loss (cross-entropy)")
    loss_ax.set_title(f"Training loss at the chosen rate ({smooth_window}-step average)")
    loss_ax.legend(fontsize="x-small", ncol=3, loc="upper right")

    names = [row.name for row in ranked]
    positions = np.arange(len(ranked))
    panels = (
        (
            accuracy_ax,
            [r.test_accuracy for r in ranked],
            "test accuracy",
            f"Test accuracy after {result.epochs} epoch(s)",
        ),
        (time_ax, [r.seconds for r in ranked], "training time (s)", "Wall time of the chosen run"),
        (
            memory_ax,
            [r.state_bytes_per_param for r in ranked],
            "bytes per parameter",
            "Optimizer state per parameter",
        ),
    )
    for ax, values, xlabel, title in panels:
        ax.barh(positions, values, color=[color_of[n] for n in names])
        ax.set_yticks(positions, names, fontsize="small")
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.grid(True, axis="x", alpha=0.3)
    accuracies = [r.test_accuracy for r in ranked]
    low = min(accuracies)
    accuracy_ax.set_xlim(max(0.0, low - 0.05), min(1.0, max(accuracies) + 0.02))
    for ax in axes.flat:
        ax.tick_params(labelsize="small")
    figure.suptitle(
        f"The race: {len(result.rows)} optimizers, seed MLP, "
        f"{result.train_size:,} training images, best of each grid on validation"
    )
    figure.tight_layout()
    return figure
