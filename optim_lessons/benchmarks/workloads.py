"""The three workloads of the benchmark: small, offline and sized for a CPU.

A workload is a model, its data (training, validation and test splits), a loss, a score, a
*validation target* and a *step budget*. As in AlgoPerf {cite}`dahl2023benchmarking`, the target
and the budget are fixed before any optimizer is tuned: a submission is judged by how fast it
reaches the target and by where it ends, never by a target chosen after seeing its results.

- ``mlp``: the seed's 784-64-10 :class:`~optim_lessons.models.Net` on Fashion-MNIST;
- ``cnn``: a two-layer convolutional network on Fashion-MNIST;
- ``transformer``: a one-block transformer on modular addition, :math:`(a + b) \\bmod p`.

The targets and budgets were set before the search, from one pilot run per workload with
torch's AdamW at a constant rate: the seed MLP and the CNN with AdamW's defaults, run for twice
the budget; the transformer at rate 0.003 with weight decay 1.0 (at the defaults it memorized
the training pairs and stayed at 0.5 on the validation pairs). Each target is a round score the
pilot passed at or before the budget's end (the MLP's 0.84 at step 480 of 1200, the CNN's 0.80
at step 360 of 800, the transformer's 0.80 at step 560 of 1200), so it is reachable, but not by
every setting. The budgets are small because the whole benchmark must run in well under an hour
of one CPU core.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from optim_lessons.data import load_tensors
from optim_lessons.models import Net


@dataclass(frozen=True)
class Workload:
    """One workload: how to build its model and data, its target and its budget."""

    name: str
    description: str
    #: Validation accuracy the run must reach (fixed before tuning).
    target: float
    #: Optimizer steps per run.
    steps: int
    batch_size: int
    #: The validation score is measured every ``eval_every`` steps (and after the last step).
    eval_every: int
    build_model: Callable[[], nn.Module]
    build_data: Callable[[torch.device, float], Data]

    def model(self, seed: int, device: torch.device | str = "cpu") -> nn.Module:
        """The model, initialized from ``seed``."""
        torch.manual_seed(seed)
        return self.build_model().to(device)

    def data(self, device: torch.device | str = "cpu", scale: float = 1.0) -> Data:
        """The splits; ``scale`` < 1 shrinks them (the quick mode)."""
        return self.build_data(torch.device(device), scale)

    def head_parameters(self, model: nn.Module) -> set[int]:
        """The ids of the parameters that a Muon pair hands to AdamW although they are
        matrices: the input embedding and the classifier head."""
        return {id(p) for name, p in model.named_parameters() if name.split(".")[0] in _HEADS}


#: Module names whose matrices are an embedding or a classifier head (not hidden layers).
_HEADS = ("fc2", "head", "embed", "position")


@dataclass
class Data:
    """Training, validation and test tensors of one workload (already on the device)."""

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor

    def batches(self, batch_size: int, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
        """An endless stream of shuffled training batches, the order fixed by ``seed``; each
        pass over the data drops its last, incomplete batch (a batch is never larger than the
        training set)."""
        generator = torch.Generator().manual_seed(seed)
        n = self.train_y.shape[0]
        batch_size = min(batch_size, n)
        while True:
            order = torch.randperm(n, generator=generator).to(self.train_y.device)
            for start in range(0, n - batch_size + 1, batch_size):
                index = order[start : start + batch_size]
                yield self.train_x[index], self.train_y[index]


# --------------------------------------------------------------------------- Fashion-MNIST

#: Fashion-MNIST sizes: training and validation images are disjoint parts of the 60,000
#: training images (the same parts for every run); the test images are the first of the
#: official 10,000.
FASHION_TRAIN, FASHION_VAL, FASHION_TEST = 10_000, 2_000, 10_000


def fashion_data(device: torch.device, scale: float = 1.0) -> Data:
    images, labels = load_tensors("fashion_mnist", train=True, device=device)
    order = torch.randperm(labels.shape[0], generator=torch.Generator().manual_seed(0))
    order = order.to(device)
    n_train, n_val = int(FASHION_TRAIN * scale), int(FASHION_VAL * scale)
    train, val = order[:n_train], order[n_train : n_train + n_val]
    test_x, test_y = load_tensors("fashion_mnist", train=False, device=device)
    n_test = int(FASHION_TEST * scale)
    return Data(
        images[train], labels[train], images[val], labels[val], test_x[:n_test], test_y[:n_test]
    )


class SmallCNN(nn.Module):
    """Two strided 3x3 convolutions (8 and 16 channels), a hidden layer of 32 units, 10 scores.

    28x28 -> 14x14x8 -> 7x7x16 -> 32 -> 10: 27,690 parameters. The hidden layer is a matrix, so
    a Muon pair has a hidden matrix to orthogonalize; the convolutions' 4-D kernels go to AdamW.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(16 * 7 * 7, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.conv1(x.view(-1, 1, 28, 28)))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


# --------------------------------------------------------------------------- modular addition

#: The modulus: the task is to answer (a + b) mod P for the prompt "a b =".
P = 47
#: The share of the P * P pairs trained on; the rest are split between validation and test.
TRAIN_FRACTION = 0.7


def modular_data(device: torch.device, scale: float = 1.0) -> Data:
    a, b = torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij")
    a, b = a.flatten(), b.flatten()
    prompts = torch.stack([a, b, torch.full_like(a, P)], dim=1)  # token P is "="
    answers = (a + b) % P
    order = torch.randperm(P * P, generator=torch.Generator().manual_seed(0))
    n_train = int(TRAIN_FRACTION * P * P)
    n_val = (P * P - n_train) // 2
    parts = order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]
    if scale < 1.0:
        parts = tuple(part[: max(1, int(len(part) * scale))] for part in parts)
    tensors = [t.to(device) for part in parts for t in (prompts[part], answers[part])]
    return Data(*tensors)


class TinyTransformer(nn.Module):
    """One pre-norm transformer block (4 heads, width 64, feed-forward 256) over the 3 tokens
    "a b ="; the answer is read from the last position. 63,355 parameters for P = 47."""

    def __init__(self, vocab: int = P + 1, width: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.randn(3, width) * 0.02)
        self.block = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab - 1)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(tokens) + self.position
        x = self.norm(self.block(x))
        return self.head(x[:, -1])


# --------------------------------------------------------------------------- the three

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "mlp",
            "seed MLP 784-64-10, Fashion-MNIST (10,000 training images)",
            target=0.84,
            steps=600,
            batch_size=128,
            eval_every=30,
            build_model=Net,
            build_data=fashion_data,
        ),
        Workload(
            "transformer",
            f"1-block transformer, (a + b) mod {P}, 70% of pairs trained on",
            target=0.80,
            steps=600,
            batch_size=128,
            eval_every=30,
            build_model=TinyTransformer,
            build_data=modular_data,
        ),
        Workload(
            "cnn",
            "2-conv CNN, Fashion-MNIST (10,000 training images)",
            target=0.80,
            steps=400,
            batch_size=64,
            eval_every=20,
            build_model=SmallCNN,
            build_data=fashion_data,
        ),
    )
}


@torch.no_grad()
def accuracy_and_loss(
    model: nn.Module, x: Tensor, y: Tensor, batch: int = 2000
) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``(x, y)``."""
    was_training = model.training
    model.eval()
    correct, total_loss = 0, 0.0
    for start in range(0, y.shape[0], batch):
        logits = model(x[start : start + batch])
        target = y[start : start + batch]
        correct += int((logits.argmax(1) == target).sum())
        total_loss += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
    model.train(was_training)
    return correct / y.shape[0], total_loss / y.shape[0]


def describe(workload: Workload) -> dict[str, Any]:
    """The facts of a workload, for the results file's header and the chapter's table."""
    return {
        "name": workload.name,
        "description": workload.description,
        "target": workload.target,
        "steps": workload.steps,
        "batch_size": workload.batch_size,
        "eval_every": workload.eval_every,
        "parameters": sum(p.numel() for p in workload.build_model().parameters()),
    }
