"""Many runs in one launch, compared with their one-process references; and small rank
functions that show how a launch fails.

Starting ranks costs seconds, a run of a few steps of a small MLP milliseconds, so
:func:`train_many` runs a whole list of :class:`~optim_lessons.distributed.runs.RunConfig` in one
launch, and :func:`compare` sets each beside :func:`~optim_lessons.distributed.runs.train_single`.
A run that raises (torch's Adafactor on DTensors, say) is reported by its message; it raises at
the same point on every rank, so the other runs go on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch.distributed as dist

from optim_lessons.distributed import ranks
from optim_lessons.distributed.launch import launch
from optim_lessons.distributed.runs import RunConfig, RunResult, train_rank, train_single

__all__ = ["Comparison", "compare", "expect_world_size", "fail_on_rank", "sleep", "train_many"]


def train_many(configs: list[RunConfig]) -> list[RunResult | str]:
    """Every run of ``configs`` in turn on this rank; a run that raises gives its message."""
    results: list[RunResult | str] = []
    for config in configs:
        try:
            results.append(train_rank(config))
        except Exception as error:  # noqa: BLE001 - reported beside the others
            results.append(f"{type(error).__name__}: {str(error).splitlines()[0]}")
            dist.barrier()
    return results


@dataclass
class Comparison:
    """One configuration on ``world_size`` ranks against the one-process run."""

    config: RunConfig
    gap: float | None  # the largest |difference| of a weight, rank 0 against the reference
    ranks_agree: bool | None  # whether every rank ends with the same whole weights
    state_numbers: list[int]  # per rank
    parameter_numbers: list[int]  # per rank
    bytes_per_step: list[float]  # sent by each rank's optimizer itself, per step
    reference_state_numbers: int
    error: str | None


def compare(
    configs: list[RunConfig], world_size: int = 2, timeout: float = 60.0
) -> list[Comparison]:
    """Run ``configs`` on ``world_size`` gloo ranks (one launch) and in one process; compare."""
    per_rank = launch(train_many, world_size, (configs,), timeout=timeout)
    comparisons = []
    for i, config in enumerate(configs):
        results = [rank_results[i] for rank_results in per_rank]
        reference = train_single(config, world_size)
        if isinstance(results[0], str):
            comparisons.append(
                Comparison(config, None, None, [], [], [], reference.state_numbers, results[0])
            )
            continue
        first = results[0].weights
        gap = max((first[k] - reference.weights[k]).abs().max().item() for k in first)
        agree = all(all(r.weights[k].equal(first[k]) for k in first) for r in results[1:])
        comparisons.append(
            Comparison(
                config,
                gap,
                agree,
                [r.state_numbers for r in results],
                [r.parameter_numbers for r in results],
                [r.optimizer_bytes_sent / config.steps for r in results],
                reference.state_numbers,
                None,
            )
        )
    return comparisons


# Rank functions for the failures a launch must survive (they live here, not in a notebook,
# because spawned ranks find a function by its module).


def fail_on_rank(bad_rank: int) -> int:
    """Raise ``ValueError`` on ``bad_rank``; the other ranks wait for it in a collective."""
    if ranks.rank() == bad_rank:
        raise ValueError(f"rank {bad_rank} cannot go on: a deliberate failure")
    dist.barrier()  # never completes: the failing rank does not come
    return ranks.rank()


def sleep(seconds: float) -> int:
    """Sleep, then return the rank (a run that outlasts its timeout)."""
    time.sleep(seconds)
    return ranks.rank()


def expect_world_size(expected: int) -> int:
    """Check the group's size, as training code that assumes a layout would."""
    return ranks.setup(expected)


def dtensor_tour(rows: int = 64, cols: int = 784) -> dict[str, object]:
    """What a DTensor parameter looks like on this rank once FSDP2 has sharded a layer."""
    from torch import nn
    from torch.distributed.fsdp import fully_shard

    layer = nn.Linear(cols, rows)
    fully_shard(layer)
    weight = layer.weight
    return {
        "type": type(weight).__name__,
        "shape": tuple(weight.shape),
        "local shape": tuple(weight.to_local().shape),
        "placements": str(weight.placements),
        "rows held": _rows_held(rows),
    }


def _rows_held(rows: int) -> str:
    per_rank = -(-rows // ranks.world_size())  # torch.chunk's sizes: ceil, the last gets less
    first = min(rows, ranks.rank() * per_rank)
    last = min(rows, first + per_rank)
    return f"{first} to {last - 1}"
