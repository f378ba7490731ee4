"""Self-checks for the exercises of the chapter on optimizers in practice.

(The param-group exercise uses :func:`optim_lessons.param_groups.check_decay_groups`.)
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_clipped_by_hand"]


def check_clipped_by_hand(
    mine: dict[str, Tensor], reference: dict[str, Tensor], tolerance: float = 1e-7
) -> None:
    """Exercise: clip gradients by their total norm by hand, the way
    ``torch.nn.utils.clip_grad_norm_`` does. ``mine`` and ``reference`` map parameter names to
    gradients (yours, and the ones ``clip_grad_norm_`` left); they must agree to ``tolerance``.
    """
    assert mine.keys() == reference.keys(), (
        f"you have gradients for {sorted(mine)}, clip_grad_norm_ for {sorted(reference)}"
    )
    gap = max((mine[name] - reference[name]).abs().max().item() for name in reference)
    total = torch.linalg.vector_norm(torch.stack([g.norm() for g in mine.values()])).item()
    assert gap <= tolerance, (
        f"your gradients differ from clip_grad_norm_'s by up to {gap:.1e}; their total norm is "
        f"{total:.4f}"
    )
    print(
        f"Right: the same gradients as clip_grad_norm_ (largest difference {gap:.1e}), "
        f"total norm {total:.4f}"
    )
