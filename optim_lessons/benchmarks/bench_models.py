"""The models whose parameters the step-time benchmark times: the seed's MLP ("small"), a wide
MLP of about 5.1M parameters in four tensors ("large") and a deep one of 5.2M in 68 tensors
("deep"), where per-tensor overhead shows; SparseAdam gets an embedding table instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

#: The model sizes the benchmark knows.
SIZES = ("small", "large", "deep")

#: The hidden width of the large MLP (784-6400-10, about 5.1M parameters).
LARGE_HIDDEN = 6400

#: The deep MLP: this many hidden layers of this width (5.2M parameters in 68 tensors).
DEEP_LAYERS, DEEP_WIDTH = 32, 392

#: Rows x columns of the embedding table SparseAdam gets, by size.
EMBEDDING_SHAPES = {"small": (800, 64), "large": (40_000, 128), "deep": (40_000, 128)}


def large_mlp(hidden: int = LARGE_HIDDEN) -> nn.Module:
    """The seed's MLP shape, 784-hidden-10, made wide enough to have about 5M parameters."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def deep_mlp(layers: int = DEEP_LAYERS, width: int = DEEP_WIDTH) -> nn.Module:
    """About 5M parameters in many tensors: 784-width, then ``layers`` width-width, then 10."""
    blocks: list[nn.Module] = [nn.Flatten(), nn.Linear(784, width), nn.ReLU()]
    for _ in range(layers):
        blocks += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*blocks, nn.Linear(width, 10))


def small_mlp() -> nn.Module:
    """The seed's 784-64-10 MLP."""
    from optim_lessons.models import Net

    return Net()


def make_params(name: str, size: str, device: str | torch.device, seed: int = 0) -> list[Tensor]:
    """The parameters ``name`` is timed on, with ``.grad`` already filled (fixed random values)."""
    if size not in SIZES:
        raise ValueError(f"Unknown size {size!r}; choose from {SIZES}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed + 1)
    if name == "SparseAdam":
        rows, columns = EMBEDDING_SHAPES[size]
        embedding = nn.Embedding(rows, columns, sparse=True).to(device)
        # One backward pass over a fixed batch touching about a tenth of the rows gives the
        # (uncoalesced) sparse gradient an embedding layer produces in training.
        index = torch.randint(0, rows, (rows // 10,), generator=generator).to(device)
        weights = torch.randn(rows // 10, columns, generator=generator).to(device)
        (embedding(index) * weights).sum().backward()
        return [embedding.weight]
    model = {"small": small_mlp, "large": large_mlp, "deep": deep_mlp}[size]().to(device)
    params = [p for p in model.parameters() if p.ndim == 2 or name != "Muon"]
    for p in params:
        p.grad = (0.01 * torch.randn(p.shape, generator=generator)).to(device)
    return params


def clone_params(params: Sequence[Tensor]) -> list[Tensor]:
    """Independent copies of the parameters and their gradients, one set per implementation."""
    copies = []
    for p in params:
        copy = p.detach().clone().requires_grad_(True)
        copy.grad = p.grad.clone()
        copies.append(copy)
    return copies
