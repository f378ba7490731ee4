"""Self-checks for the exercises of chapter 9, the race."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from optim_lessons.benchmarks.race import SWEEPS, OptimizerSpec, RaceResult
from optim_lessons.models import Net
from optim_lessons.training import (
    optimizer_state_bytes,
    set_seed,
)

__all__ = ["check_state_bytes", "check_steps", "measured_state_bytes"]


def measured_state_bytes(name: str, **kwargs: Any) -> int:
    """Bytes of state the from-scratch optimizer ``name`` holds for the seed MLP after one step."""
    spec = SWEEPS.get(name, OptimizerSpec(name, (1e-3,)))
    set_seed(0)
    model = Net()
    optimizer = replace(spec, kwargs={**spec.kwargs, **kwargs}).build(model, spec.lrs[0])
    inputs, labels = torch.randn(8, 784), torch.randint(0, 10, (8,))

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), labels)
        loss.backward()
        return loss

    with spec.sparse_context():
        optimizer.step(closure)
    return optimizer_state_bytes(optimizer)


def check_state_bytes(name: str, answer: int | None, **kwargs: Any) -> bool:
    """Self-check: is ``answer`` the number of bytes of state ``name`` keeps for the seed MLP?"""
    if answer is None:
        print(f"Replace None with your count of the bytes {name} keeps for the 50,890 parameters.")
        return False
    actual = measured_state_bytes(name, **kwargs)
    if int(answer) == actual:
        per_parameter = actual / 50_890
        print(
            f"Correct: {name} keeps {actual:,} bytes of state ({per_parameter:.2f} per parameter)."
        )
        return True
    hint = "too many" if answer > actual else "too few"
    print(
        f"Not quite: {answer:,} is {hint}. List the state tensors {name} creates for each of "
        "the four parameter tensors (weights 64x784 and 10x64, biases 64 and 10), their shapes "
        "and dtypes (float32: 4 bytes per number)."
    )
    return False


def check_steps(result: RaceResult, answer: int | None) -> bool:
    """Self-check: how many optimizer steps did each run of the race take?"""
    if answer is None:
        print("Replace None with the number of steps of one run.")
        return False
    actual = len(result.rows[0].loss)
    if int(answer) == actual:
        print(
            f"Correct: {result.epochs} epoch(s) x ceil({result.train_size} / "
            f"{result.batch_size}) = {actual} steps."
        )
        return True
    print(
        f"Not quite ({answer} is {'too many' if answer > actual else 'too few'}): count the "
        "batches in one pass over the training subset (the last batch may be smaller) and "
        "multiply by the number of epochs."
    )
    return False
