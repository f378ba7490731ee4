"""Self-checks for the exercises of the training-loop chapter.

Each ``check_*`` function raises an ``AssertionError`` that says what is wrong, or prints what
it verified. The gradient checks run on a small classifier with random data, so that they
test the rule, not one batch of images.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

__all__ = ["check_half_batch_scale", "check_learning_rate_edge", "check_predicted_step"]


def check_learning_rate_edge(
    edge: float, accuracies: Mapping[float, float], drop: float = 0.03
) -> None:
    """Exercise: the smallest learning rate whose final test accuracy is more than ``drop``
    below the best of your runs. ``accuracies`` maps each rate you tried to its accuracy."""
    assert len(accuracies) >= 3, f"run at least three rates; you have {sorted(accuracies)}"
    assert all(0.0 <= a <= 1.0 for a in accuracies.values()), "accuracies lie between 0 and 1"
    best = max(accuracies.values())
    dropped = [lr for lr in sorted(accuracies) if accuracies[lr] < best - drop]
    assert dropped, f"no rate loses more than {drop} of accuracy in your runs: try larger rates"
    assert edge == dropped[0], (
        f"at lr {edge} your accuracy is {accuracies.get(edge, float('nan')):.2f}; the first rate "
        f"more than {drop} below the best ({best:.2f}) is another one"
    )
    print(
        f"Right: lr {edge} is the first rate that loses accuracy "
        f"({accuracies[edge]:.2f} against the best {best:.2f})"
    )


def _classifier(seed: int) -> tuple[nn.Module, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4)).double()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    inputs = torch.randn(64, 12, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 4, (64,), generator=generator)
    return model, inputs, labels


def check_half_batch_scale(scale: float, seed: int = 0) -> None:
    """Exercise: by what must each half's mean loss be multiplied so that two ``backward`` calls
    (32 examples each, no ``zero_grad`` between) add up to the gradient of the whole batch of 64?
    The check runs both on a small classifier."""
    model, inputs, labels = _classifier(seed)
    criterion = nn.CrossEntropyLoss()
    criterion(model(inputs), labels).backward()
    whole = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    for half in (slice(0, 32), slice(32, 64)):
        (criterion(model(inputs[half]), labels[half]) * scale).backward()
    gap = max(
        (p.grad - w).abs().max().item() for p, w in zip(model.parameters(), whole, strict=True)
    )
    assert gap < 1e-12, f"with the scale {scale} the summed gradient is off by up to {gap:.3g}"
    print(
        f"Right: the two halves add up to the whole batch's gradient (largest difference {gap:.1e})"
    )


def check_predicted_step(
    predict: Callable[[Tensor, Tensor, Tensor], Tensor],
    lr: float = 0.001,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> None:
    """Exercise: ``predict(p, grad, buffer)`` returns the value ``torch.optim.SGD(lr=0.001,
    momentum=0.9, weight_decay=1e-4)`` will give ``p`` in its next step, from ``p``, ``p.grad``
    and the momentum buffer *before* that step. The check predicts the third step of every
    parameter of a small classifier and runs it."""
    model, inputs, labels = _classifier(seed)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    criterion = nn.CrossEntropyLoss()
    predicted = []
    for step in range(3):
        optimizer.zero_grad()
        criterion(model(inputs), labels).backward()
        if step == 2:
            predicted = [
                predict(
                    p.detach().clone(),
                    p.grad.clone(),
                    optimizer.state[p]["momentum_buffer"].clone(),
                )
                for p in model.parameters()
            ]
        optimizer.step()
    gap = max(
        (p.detach() - q).abs().max().item()
        for p, q in zip(model.parameters(), predicted, strict=True)
    )
    assert gap < 1e-12, f"your prediction misses torch's step by up to {gap:.3g}"
    print(f"Right: your prediction is torch's step (largest difference {gap:.1e})")
