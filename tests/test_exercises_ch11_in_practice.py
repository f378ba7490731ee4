"""The clipping exercise's check fails on unclipped gradients and passes on clipped ones."""

import pytest
import torch
from torch import nn

from optim_lessons.exercises.ch11_in_practice import check_clipped_by_hand


def gradients(model):
    model.zero_grad()
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(16, 5, generator=generator)
    nn.functional.cross_entropy(model(inputs), torch.arange(16) % 3).backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def test_clipping_by_hand_matches_clip_grad_norm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    raw = gradients(model)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.1)
    reference = {name: p.grad.clone() for name, p in model.named_parameters()}
    with pytest.raises(AssertionError):
        check_clipped_by_hand(raw, reference)
    total = torch.linalg.vector_norm(torch.stack([g.norm() for g in raw.values()]))
    scale = torch.clamp(0.1 / (total + 1e-6), max=1.0)
    check_clipped_by_hand({name: g * scale for name, g in raw.items()}, reference)
    with pytest.raises(AssertionError, match="you have gradients for"):
        check_clipped_by_hand({"0.weight": raw["0.weight"]}, reference)
