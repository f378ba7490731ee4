"""The recipe: one optimizer, one schedule and a few regularizers, trained for up to 20 epochs
on all of Fashion-MNIST (:class:`Recipe`, :func:`train_recipe`), with optional cheap input
augmentation (:class:`optim_lessons.data.AugmentedLoader`). Chapter 9 uses it after the race
(:mod:`optim_lessons.benchmarks.race`) to ask how good the seed's MLP can get.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from optim_lessons.benchmarks.race import Splits, make_splits
from optim_lessons.data import AugmentedLoader, TensorLoader, standardize_pixels
from optim_lessons.models import Net
from optim_lessons.training import (
    History,
    default_device,
    evaluate,
    set_seed,
    train,
)


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a training run of the seed MLP, in one place.

    The schedule is one-cycle (:class:`torch.optim.lr_scheduler.OneCycleLR`, stepped every
    batch): the rate climbs from ``lr / 25`` to ``lr`` over the first ``pct_start`` of the steps,
    then anneals to almost zero. For SGD it also cycles the momentum between 0.85 and 0.95.
    """

    optimizer: str = "SGD"
    lr: float = 0.1
    kwargs: Mapping[str, Any] = field(default_factory=lambda: {"momentum": 0.9, "nesterov": True})
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    batch_size: int = 64
    epochs: int = 20
    pct_start: float = 0.3
    max_shift: int = 0
    flip: bool = False
    seed: int = 0
    #: ``"all"`` parameters, or ``"matrices"`` (the 2-D weights only, for Muon).
    params: str = "all"
    #: If above 0, evaluate an exponential moving average of the weights, updated after every
    #: step with this decay (0.999 averages over roughly the last thousand steps).
    ema_decay: float = 0.0
    #: ``"one_cycle"`` (above), or ``"cosine"``: a linear warm-up from zero over the first
    #: ``pct_start`` of the steps, then a cosine decay to zero (momentum stays fixed).
    schedule: str = "one_cycle"
    #: If set, rescale each step's gradients so that their global norm is at most this.
    clip_grad_norm: float | None = None
    #: If above 0, evaluate the plain average of the weights after every step of the last
    #: ``average_epochs`` epochs (stochastic weight averaging along the annealed tail).
    average_epochs: int = 0
    #: Per-layer learning-rate factors, e.g. ``{"fc2": 0.5}``: the parameters whose name starts
    #: with the key train at that multiple of every rate of the schedule.
    lr_scales: Mapping[str, float] = field(default_factory=dict)
    #: ``"global"``: pixels normalized by one mean and standard deviation (the data's default);
    #: ``"pixel"``: each of the 784 pixels standardized by its own mean and standard deviation
    #: over the training images (the judged images get the same transform).
    standardize: str = "global"

    def with_(self, **changes: Any) -> Recipe:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def describe(self) -> str:
        extras = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        augment = []
        if self.max_shift:
            augment.append(f"shifts up to {self.max_shift} px")
        if self.flip:
            augment.append("mirroring")
        schedule = "one-cycle" if self.schedule == "one_cycle" else "warm-up + cosine"
        text = (
            f"{self.optimizer}(lr={self.lr:g} peak, {extras}, weight_decay={self.weight_decay:g}), "
            f"{schedule} over {self.epochs} epochs, batch {self.batch_size}, "
            f"label smoothing {self.label_smoothing:g}, augmentation: "
            f"{', '.join(augment) or 'none'}"
        )
        if self.standardize != "global":
            text += ", per-pixel standardization"
        if self.lr_scales:
            text += ", rate factors " + ", ".join(f"{k} x{v:g}" for k, v in self.lr_scales.items())
        if self.clip_grad_norm is not None:
            text += f", gradient norm clipped at {self.clip_grad_norm:g}"
        if self.ema_decay > 0:
            text += f", moving average of the weights (decay {self.ema_decay:g})"
        if self.average_epochs:
            text += f", weights averaged over the last {self.average_epochs} epoch(s)"
        return text


@dataclass
class RecipeResult:
    recipe: Recipe
    history: History
    #: Accuracy and loss on the split the run was judged on ("validation" or "test").
    judged_on: str
    accuracy: float
    loss: float
    seconds: float


#: The schedules and input standardizations a :class:`Recipe` can use.
SCHEDULES = ("one_cycle", "cosine")
STANDARDIZATIONS = ("global", "pixel")


def train_recipe(
    recipe: Recipe,
    *,
    val_size: int = 0,
    train_size: int | None = None,
    device: str | torch.device | None = None,
    splits: Splits | None = None,
    progress: bool = False,
) -> RecipeResult:
    """Train the seed MLP with ``recipe`` and evaluate it once at the end.

    With ``val_size > 0`` the run trains on the remaining training images and is judged on the
    held-out ones (use this to choose a recipe). With ``val_size=0`` it trains on all 60,000
    training images and is judged on the test set: do that once, for the chosen recipe.
    """
    device = default_device() if device is None else torch.device(device)
    if recipe.params not in ("all", "matrices"):
        raise ValueError(f"params must be 'all' or 'matrices', got {recipe.params!r}")
    if recipe.schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {recipe.schedule!r}")
    if recipe.standardize not in STANDARDIZATIONS:
        raise ValueError(
            f"standardize must be one of {STANDARDIZATIONS}, got {recipe.standardize!r}"
        )
    if not 0 <= recipe.average_epochs <= recipe.epochs:
        raise ValueError(
            f"average_epochs must be from 0 to epochs={recipe.epochs}, got {recipe.average_epochs}"
        )
    if splits is None:
        splits = make_splits(
            train_size, val_size, batch_size=recipe.batch_size, seed=recipe.seed, device=device
        )
    judge, judged_on = (
        (splits.validation, "validation") if splits.validation else (splits.test, "test")
    )
    base_loader: TensorLoader = splits.train
    if recipe.standardize == "pixel":
        if recipe.max_shift:
            raise ValueError("shifts fill the gap with one value: they need standardize='global'")
        base_loader, judge = standardize_pixels(base_loader, judge, recipe.seed)
    train_loader: Any = base_loader
    if recipe.max_shift or recipe.flip:
        train_loader = AugmentedLoader(
            base_loader, max_shift=recipe.max_shift, flip=recipe.flip, seed=recipe.seed
        )

    set_seed(recipe.seed)
    model = Net().to(device)
    import optim_lessons.optimizers as ours

    optimizer_class = getattr(ours, recipe.optimizer)
    groups: dict[float, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.ndim == 2 or recipe.params == "all":
            scale = next((v for k, v in recipe.lr_scales.items() if name.startswith(k)), 1.0)
            groups.setdefault(scale, []).append(p)
    scales = list(groups)
    optimizer = optimizer_class(
        [{"params": groups[s], "lr": recipe.lr * s} for s in scales],
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        **dict(recipe.kwargs),
    )
    steps = recipe.epochs * len(train_loader)
    scheduler: Any
    if recipe.schedule == "one_cycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[recipe.lr * s for s in scales],
            total_steps=steps,
            pct_start=recipe.pct_start,
        )
    else:
        warmup = max(1, round(recipe.pct_start * steps))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    average: list[Tensor] = []
    if recipe.ema_decay > 0 and recipe.average_epochs:
        raise ValueError("choose either ema_decay or average_epochs, not both")
    if recipe.ema_decay > 0:
        average = [p.detach().clone() for p in model.parameters()]

        def update_average(*_: Any) -> None:
            with torch.no_grad():
                for mean, p in zip(average, model.parameters(), strict=True):
                    mean.lerp_(p, 1 - recipe.ema_decay)  # mean <- decay mean + (1 - decay) p

        optimizer.register_step_post_hook(update_average)
    elif recipe.average_epochs:
        average = [torch.zeros_like(p) for p in model.parameters()]
        first_averaged = steps - recipe.average_epochs * len(train_loader)
        taken = [0, 0]  # steps taken, steps averaged

        def update_uniform_average(*_: Any) -> None:
            taken[0] += 1
            if taken[0] <= first_averaged:
                return
            taken[1] += 1
            with torch.no_grad():
                for mean, p in zip(average, model.parameters(), strict=True):
                    mean.add_(p - mean, alpha=1 / taken[1])  # running mean of the iterates

        optimizer.register_step_post_hook(update_uniform_average)
    history = train(
        model,
        optimizer,
        train_loader,
        epochs=recipe.epochs,
        device=device,
        seed=recipe.seed,
        criterion=criterion,
        scheduler=scheduler,
        scheduler_step="batch",
        progress=progress,
        clip_grad_norm=recipe.clip_grad_norm,
    )
    if average:
        with torch.no_grad():
            for mean, p in zip(average, model.parameters(), strict=True):
                p.copy_(mean)
    result = evaluate(model, judge, device=device)  # plain cross-entropy, no smoothing
    return RecipeResult(
        copy.deepcopy(recipe),
        history,
        judged_on,
        result.accuracy,
        result.loss,
        sum(history.epoch_seconds),
    )
