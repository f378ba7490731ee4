"""Training runs of a small MLP under data parallelism (DDP), ZeRO-1 and FSDP2, and the same
run in one process on the concatenated batch, to compare them.

:func:`train_rank` is what every rank runs (under :func:`~optim_lessons.distributed.launch` or
``torchrun``); :func:`train_single` is the one-process reference. With ``world_size`` ranks, each
rank takes ``batch_per_rank`` examples of every step's batch; the reference takes all
``world_size * batch_per_rank`` at once. The loss is a mean over the batch, and every wrapper
averages the gradients over the ranks, so the two compute the same gradient up to the order of
the additions: the weights they reach must agree to rounding.

Each run returns a :class:`RunResult`: the final weights (gathered whole), the losses, how many
state numbers this rank's optimizer holds, and how many bytes the optimizer itself sent in its
steps (the wrapper's own traffic, gradients and parameters, is not in it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from optim_lessons.distributed import ranks, sharded

__all__ = ["RunConfig", "RunResult", "WRAPPERS", "make_model", "train_rank", "train_single"]

#: How each rank's model and optimizer are wrapped.
WRAPPERS = ("ddp", "zero", "fsdp")


@dataclass(frozen=True)
class RunConfig:
    """One training run: which optimizer (a name of ``optim_lessons.optimizers`` or, with
    ``library="torch"``, of ``torch.optim``), its keyword arguments, the wrapper and the sizes.
    """

    optimizer: str = "Adam"
    kwargs: dict[str, Any] = field(default_factory=dict)
    wrapper: str = "ddp"
    library: str = "ours"
    steps: int = 4
    batch_per_rank: int = 8
    sizes: tuple[int, ...] = (12, 16, 16, 4)
    bias: bool = True
    clip_grad_norm: float | None = None
    dtype: torch.dtype = torch.float64
    seed: int = 0

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


@dataclass
class RunResult:
    """What one rank (or the one-process reference) reports after its run."""

    weights: dict[str, Tensor]
    losses: list[float]
    state_numbers: int
    parameter_numbers: int
    optimizer_bytes_sent: int


def make_model(config: RunConfig) -> nn.Module:
    """``Linear, Tanh, Linear, Tanh, ..., Linear`` through ``config.sizes``, seeded."""
    torch.manual_seed(config.seed)
    layers: list[nn.Module] = []
    for i, (inputs, outputs) in enumerate(zip(config.sizes[:-1], config.sizes[1:])):
        if i:
            layers.append(nn.Tanh())
        layers.append(nn.Linear(inputs, outputs, bias=config.bias))
    return nn.Sequential(*layers).to(config.dtype)


def _batches(config: RunConfig, world_size: int) -> list[tuple[Tensor, Tensor]]:
    """Every step's whole batch (all ranks together), the same in every process."""
    generator = torch.Generator().manual_seed(config.seed + 1)
    total = world_size * config.batch_per_rank
    return [
        (
            torch.randn(total, config.sizes[0], generator=generator, dtype=config.dtype),
            torch.randn(total, config.sizes[-1], generator=generator, dtype=config.dtype),
        )
        for _ in range(config.steps)
    ]


def _optimizer_class(config: RunConfig) -> type[torch.optim.Optimizer]:
    if config.library == "torch":
        return getattr(torch.optim, config.optimizer)
    import optim_lessons.optimizers as ours

    return getattr(ours, config.optimizer)


def _state_numbers(optimizer: torch.optim.Optimizer) -> int:
    """How many numbers this rank keeps in its optimizer's tensor state (its own shard only)."""
    total = 0
    for state in optimizer.state.values():
        for value in state.values():
            tensors = value if isinstance(value, list) else [value]
            for t in tensors:
                if isinstance(t, Tensor):
                    total += sharded.local(t).numel()
    return total


def _wrap(model: nn.Module, config: RunConfig) -> tuple[nn.Module, torch.optim.Optimizer]:
    cls = _optimizer_class(config)
    if config.wrapper == "ddp":
        model = nn.parallel.DistributedDataParallel(model)
        return model, cls(model.parameters(), **config.kwargs)
    if config.wrapper == "zero":
        from torch.distributed.optim import ZeroRedundancyOptimizer

        model = nn.parallel.DistributedDataParallel(model)
        optimizer = ZeroRedundancyOptimizer(
            model.parameters(), optimizer_class=cls, **config.kwargs
        )
        return model, optimizer
    if config.wrapper == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for layer in model:
            if isinstance(layer, nn.Linear):
                fully_shard(layer)
        fully_shard(model)
        return model, cls(model.parameters(), **config.kwargs)
    raise ValueError(f"wrapper must be one of {WRAPPERS}, got {config.wrapper!r}")


def _run(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: RunConfig,
    world_size: int,
    me: int,
    device: torch.device,
) -> list[float]:
    """The training loop, the same for every wrapper: each step's closure computes this rank's
    share of the batch, and returns the loss averaged over the ranks."""
    losses = []
    size = config.batch_per_rank
    for inputs, targets in _batches(config, world_size):
        x = inputs[me * size : (me + 1) * size].to(device)
        y = targets[me * size : (me + 1) * size].to(device)

        def closure(x: Tensor = x, y: Tensor = y) -> Tensor:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            if config.clip_grad_norm is not None:
                sharded.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
            loss = loss.detach()
            if world_size > 1:
                dist.all_reduce(loss)
                loss = loss / world_size
            return loss

        losses.append(float(optimizer.step(closure)))
    return losses


def _full_weights(model: nn.Module) -> dict[str, Tensor]:
    weights = {}
    for name, p in model.named_parameters():
        name = name.removeprefix("module.")
        weights[name] = sharded.full(p.detach()).cpu().clone()
    return weights


def train_rank(config: RunConfig) -> RunResult:
    """One rank's run; call it in every rank of a process group (or under ``torchrun``)."""
    world_size = ranks.setup()
    me, device = ranks.rank(), ranks.device()
    model = make_model(config).to(device)
    model, optimizer = _wrap(model, config)
    sharded.BYTES_SENT.clear()
    losses = _run(model, optimizer, config, world_size, me, device)
    sent = sum(sharded.BYTES_SENT.values())
    parameters = sum(sharded.local(p).numel() for p in model.parameters())
    if config.wrapper == "zero":
        inner = optimizer.optim
        numbers = _state_numbers(inner)
    else:
        numbers = _state_numbers(optimizer)
    return RunResult(_full_weights(model), losses, numbers, parameters, sent)


def train_single(config: RunConfig, world_size: int) -> RunResult:
    """The reference: one process, the whole batch of ``world_size`` ranks at every step."""
    model = make_model(config)
    optimizer = _optimizer_class(config)(model.parameters(), **config.kwargs)
    single = config.replace(batch_per_rank=config.batch_per_rank * world_size)
    batches = _batches(config, world_size)
    losses = []
    for inputs, targets in batches:

        def closure(x: Tensor = inputs, y: Tensor = targets) -> Tensor:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            if single.clip_grad_norm is not None:
                sharded.clip_grad_norm_(model.parameters(), single.clip_grad_norm)
            return loss.detach()

        losses.append(float(optimizer.step(closure)))
    numbers = _state_numbers(optimizer)
    parameters = sum(p.numel() for p in model.parameters())
    return RunResult(_full_weights(model), losses, numbers, parameters, 0)
