"""Two ranks on 127.0.0.1 with gloo: the launcher's failures, and the optimizers under DDP,
ZeRO-1 and FSDP2 against one process on the concatenated batch.

Every launch carries a timeout, so no test can hang; the whole module is skipped, with the
reason, where two gloo ranks cannot start (no torch.distributed, no loopback networking).
Starting the first ranks of a test process imports torch in a server process (seconds on a
busy machine); later launches fork from it in a fraction of a second.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time

import pytest
import torch.distributed as dist

from optim_lessons.distributed import RankError, launch, ranks, sweep
from optim_lessons.distributed.runs import RunConfig

#: Largest |weight difference| allowed after 4 steps in float64, ranks against one process.
#: Measured: at most 9.7e-16 over all fifteen optimizers and three wrappers (L-BFGS under
#: FSDP2; the averaged gradients differ from the one-process ones in the order of the additions
#: only). The bound leaves three orders of magnitude for other CPUs' rounding.
TOLERANCE = 1e-12

#: Seconds any one launch may take.
LIMIT = 30.0
#: Seconds for the first launch, which starts the fork server (the import of torch and of
#: torch._dynamo, measured at up to 27 s on a heavily loaded 2-core machine).
WARM_UP = 120.0


@pytest.fixture(scope="module", autouse=True)
def gloo() -> None:
    if not dist.is_available():
        pytest.skip("this build of torch has no torch.distributed")
    try:  # the first launch of a process also starts the fork server: it imports torch
        launch(ranks.rank, 2, timeout=WARM_UP)
    except Exception as error:  # noqa: BLE001 - any reason is a reason to skip
        pytest.skip(f"two gloo ranks cannot start on 127.0.0.1 here: {error}")


def no_children_left() -> bool:
    return multiprocessing.active_children() == []


def test_each_rank_returns_its_result():
    assert launch(ranks.rank, 2, timeout=LIMIT) == [0, 1]
    assert launch(ranks.world_size, 2, timeout=LIMIT) == [2, 2]
    assert no_children_left()


def test_a_crashing_rank_raises_its_traceback_and_stops_the_others():
    start = time.monotonic()
    with pytest.raises(RankError) as caught:
        launch(sweep.fail_on_rank, 2, (1,), timeout=LIMIT)
    assert time.monotonic() - start < LIMIT  # rank 0, stuck in a barrier, was terminated
    assert caught.value.rank == 1
    message = str(caught.value)
    assert message.startswith("rank 1 raised:\nTraceback")
    assert "ValueError: rank 1 cannot go on: a deliberate failure" in message
    assert "fail_on_rank" in message
    assert no_children_left()


def test_a_taken_port_is_refused_before_anything_starts():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises(OSError, match=f"port {port} on 127.0.0.1 is already in use"):
            launch(ranks.rank, 2, port=port, timeout=LIMIT)
    assert no_children_left()


@pytest.mark.parametrize("world_size", [0, -1, 2.0, True, "2"])
def test_a_world_size_that_is_not_a_positive_int_is_refused(world_size):
    with pytest.raises(ValueError, match="world_size must be a positive int"):
        launch(ranks.rank, world_size, timeout=LIMIT)


def test_a_mismatched_world_size_is_a_clear_error():
    with pytest.raises(RankError, match="world size mismatch: this run expects 3 ranks, but the"):
        launch(sweep.expect_world_size, 2, (3,), timeout=LIMIT)
    assert no_children_left()


def test_a_run_past_its_timeout_is_killed():
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"ranks \[0, 1\] did not finish within 2.0 s"):
        launch(sweep.sleep, 2, (60.0,), timeout=2.0)
    assert time.monotonic() - start < 15.0
    assert no_children_left()


def check(comparisons: list[sweep.Comparison]) -> None:
    for c in comparisons:
        name = f"{c.config.optimizer} under {c.config.wrapper}"
        assert c.error is None, f"{name}: {c.error}"
        assert c.ranks_agree, f"{name}: the ranks end with different weights"
        assert c.gap <= TOLERANCE, f"{name}: {c.gap:.2e} from the one-process run"


def configs(wrapper: str, names: list[str], **changes) -> list[RunConfig]:
    return [
        RunConfig(
            optimizer=name,
            wrapper=wrapper,
            bias=name != "Muon",
            kwargs={"max_iter": 4} if name == "LBFGS" else {},
            **changes,
        )
        for name in names
    ]


def test_data_parallel_runs_match_one_process():
    check(sweep.compare(configs("ddp", ["SGD", "Adam", "LBFGS", "Muon"]), timeout=LIMIT))


def test_zero_shards_the_state_and_matches_one_process():
    comparisons = sweep.compare(configs("zero", ["Adam", "Adafactor", "Muon"]), timeout=LIMIT)
    check(comparisons)
    for c in comparisons:  # every rank holds a part, the parts add up to the whole
        assert 0 < min(c.state_numbers) and sum(c.state_numbers) == c.reference_state_numbers


def test_fsdp2_shards_parameters_and_the_optimizers_that_need_whole_tensors_communicate():
    names = ["Adam", "Rprop", "Adafactor", "Muon", "LBFGS"]
    comparisons = sweep.compare(configs("fsdp", names), timeout=LIMIT)
    check(comparisons)
    sent = {c.config.optimizer: c.bytes_per_step for c in comparisons}
    assert sent["Adam"] == sent["Rprop"] == [0.0, 0.0]  # element-wise: nothing to send
    for name in ("Adafactor", "Muon", "LBFGS"):
        assert min(sent[name]) > 0, name
    # Muon gathers its three weight matrices (16x12, 16x16, 4x16) in float64 every step:
    # each rank sends its half of them once.
    assert sent["Muon"] == [(16 * 12 + 16 * 16 + 4 * 16) * 8 / 2] * 2


def test_clipping_by_the_global_norm_matches_one_process():
    changes = {"clip_grad_norm": 0.05}
    check(sweep.compare(configs("fsdp", ["Adam"], **changes) + configs("ddp", ["Adam"], **changes)))


@pytest.mark.slow
def test_the_same_run_under_torchrun():
    """torchrun starts two fresh interpreters (no server to fork from): tens of seconds."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2"]
    command += ["-m", "optim_lessons.distributed", "--optimizer", "Muon", "--wrapper", "fsdp"]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # gloo on the CPU even beside a GPU
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["world_size"] == 2 and report["gap_to_one_process"] <= TOLERANCE
    assert report["state_numbers_per_rank"] == [256, 256]  # half of Muon's momentum each


def test_three_ranks_and_rows_that_do_not_split_evenly():
    """5 and 3 rows over 3 ranks: pieces of 2, 2 and 1 rows, and of 1 row each."""
    changes = {"sizes": (12, 5, 3)}
    runs = configs("fsdp", ["Adafactor", "Muon", "LBFGS"], **changes)
    runs += configs("fsdp", ["Adam"], clip_grad_norm=0.05, **changes)
    comparisons = sweep.compare(runs, world_size=3, timeout=LIMIT)
    check(comparisons)
    assert [c.state_numbers for c in comparisons][0] == [27, 27, 25]  # Adafactor: C is whole
