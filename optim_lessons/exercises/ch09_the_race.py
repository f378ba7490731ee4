"""Self-checks for the exercises of chapter 9, the race."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from optim_lessons.benchmarks.race import SWEEPS, OptimizerSpec
from optim_lessons.models import Net
from optim_lessons.training import (
    optimizer_state_bytes,
    set_seed,
)

__all__ = ["check_state_bytes", "measured_state_bytes"]


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


def check_state_bytes(name: str, answer: int, **kwargs: Any) -> None:
    """Self-check: is ``answer`` the number of bytes of state ``name`` keeps for the seed MLP?

    Raises AssertionError with a hint when it is not (run it through ``attempt``).
    """
    actual = measured_state_bytes(name, **kwargs)
    hint = "too many" if int(answer) > actual else "too few"
    assert int(answer) == actual, (
        f"{int(answer):,} bytes is {hint}. List the state tensors {name} creates for each of "
        "the four parameter tensors (weights 64x784 and 10x64, biases 64 and 10), their shapes "
        "and dtypes (float32: 4 bytes per number)."
    )
    print(f"Right: {name} keeps {actual:,} bytes of state ({actual / 50_890:.2f} per parameter).")
