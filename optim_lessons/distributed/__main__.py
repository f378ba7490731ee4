"""One training run on every rank, started by ``torchrun`` (or by ``launch`` with ``--ranks``).

    torchrun --nproc-per-node=2 -m optim_lessons.distributed --optimizer Muon --wrapper fsdp
    python -m optim_lessons.distributed --ranks 2 --optimizer Adafactor --wrapper fsdp

Under ``torchrun`` each process joins the group itself: NCCL with one GPU per rank
(``cuda:LOCAL_RANK``) where CUDA is available, gloo on the CPU otherwise. Rank 0 then compares
the weights with the same run in one process on the concatenated batch and prints the gap.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.distributed as dist

from optim_lessons.distributed import ranks
from optim_lessons.distributed.launch import launch
from optim_lessons.distributed.runs import WRAPPERS, RunConfig, RunResult, train_rank, train_single


def _report(config: RunConfig, results: list[RunResult], world_size: int) -> dict:
    reference = train_single(config, world_size)
    gap = max(
        (results[0].weights[k] - reference.weights[k]).abs().max().item() for k in reference.weights
    )
    return {
        "optimizer": config.optimizer,
        "wrapper": config.wrapper,
        "world_size": world_size,
        "gap_to_one_process": gap,
        "state_numbers_per_rank": [r.state_numbers for r in results],
        "optimizer_bytes_sent_per_rank": [r.optimizer_bytes_sent for r in results],
    }


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(prog="python -m optim_lessons.distributed")
    parser.add_argument("--optimizer", default="Adam")
    parser.add_argument("--wrapper", choices=WRAPPERS, default="ddp")
    parser.add_argument("--library", choices=("ours", "torch"), default="ours")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--ranks", type=int, default=None, help="launch this many gloo ranks")
    args = parser.parse_args(argv)
    config = RunConfig(
        optimizer=args.optimizer,
        wrapper=args.wrapper,
        library=args.library,
        steps=args.steps,
        bias=args.optimizer != "Muon",  # Muon takes matrices only
    )
    if args.ranks is not None:
        report = _report(config, launch(train_rank, args.ranks, (config,)), args.ranks)
    else:
        result = train_rank(config)  # joins the group torchrun describes
        gathered: list = [None] * dist.get_world_size()
        dist.gather_object(result, gathered if ranks.rank() == 0 else None, dst=0)
        report = _report(config, gathered, dist.get_world_size()) if ranks.rank() == 0 else None
        dist.destroy_process_group()
    if report is not None:
        report["device"] = "cuda" if torch.cuda.is_available() and args.ranks is None else "cpu"
        print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
