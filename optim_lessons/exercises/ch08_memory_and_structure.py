r"""Helpers and self-checks for the chapter on memory and structure: SparseAdam, Adafactor, Muon.

- :class:`optim_lessons.optimizers.multi.MultiOptimizer` (used here) steps several optimizers
  as one: an embedding table to SparseAdam and the rest to Adam, or the hidden weight matrices
  to Muon and the rest to AdamW.
- :func:`bag_of_words_loaders` and :class:`BagOfWords` make a small text-like problem whose
  embedding table has sparse gradients: each text looks up a few dozen rows of a large table.
- :func:`factored_second_moment` is Adafactor's rank-1 estimate of a matrix of mean squared
  gradients, written out on its own, and :func:`newton_schulz_singular_values` follows what
  Muon's Newton-Schulz polynomial does to each singular value.

The ``check_*`` functions are the self-checks of the chapter's exercises: each raises an
``AssertionError`` that says what is wrong, or prints what was verified.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from optim_lessons.data import TensorLoader

__all__ = [
    "BagOfWords",
    "bag_of_words_loaders",
    "check_adafactor_first_step",
    "check_factored_estimate",
    "check_lazy_drift",
    "check_muon_split",
    "check_orthogonalizer",
    "factored_second_moment",
    "newton_schulz_singular_values",
]


# --------------------------------------------------------------------------- a text-like problem


class BagOfWords(nn.Module):
    """Mean of the word vectors of a text (an ``nn.EmbeddingBag``), then a linear classifier.

    With ``sparse=True`` the table's gradient is a sparse tensor that holds only the rows the
    batch looked up, which SparseAdam needs and Adam refuses.
    """

    def __init__(
        self, vocab_size: int, embedding_dim: int = 32, classes: int = 4, sparse: bool = False
    ) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embedding_dim, mode="mean", sparse=sparse)
        self.classifier = nn.Linear(embedding_dim, classes)

    def forward(self, tokens: Tensor) -> Tensor:
        """``tokens``: word indices of shape ``[texts, words]``; returns one logit per class."""
        return self.classifier(self.embedding(tokens))


def zipf_frequencies(vocab_size: int, exponent: float = 1.1) -> Tensor:
    """How often each word occurs, word 0 the most frequent: proportional to
    $1/(\\text{rank}+1)^{\\text{exponent}}$, as word counts in real text roughly are."""
    ranks = torch.arange(1, vocab_size + 1, dtype=torch.float64)
    frequencies = ranks.pow(-exponent)
    return frequencies / frequencies.sum()


def bag_of_words_loaders(
    vocab_size: int = 50_000,
    classes: int = 4,
    words_per_text: int = 16,
    topical_fraction: float = 0.25,
    train_size: int = 20_000,
    test_size: int = 5_000,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> tuple[TensorLoader, TensorLoader]:
    """Random "texts" of word indices and their topic, as a shuffled training loader and an
    ordered test loader (batches of ``[texts, words_per_text]`` long tensors and labels).

    Every word of the vocabulary belongs to one of ``classes`` topics at random, and words are
    drawn with Zipf frequencies (:func:`zipf_frequencies`). A text about topic $c$ draws each
    word, with probability ``topical_fraction``, among the words of topic $c$, and otherwise
    from the whole vocabulary. So a few frequent words carry most of the signal, and most of
    the table's rows are rare words that a batch almost never looks up: the situation sparse
    gradients are made for. The same ``seed`` gives the same texts.
    """
    if not 0.0 <= topical_fraction <= 1.0:
        raise ValueError(f"topical_fraction must be in [0, 1], got {topical_fraction}")
    generator = torch.Generator().manual_seed(seed)
    frequencies = zipf_frequencies(vocab_size)
    topic_of_word = torch.randint(classes, (vocab_size,), generator=generator)

    def texts(count: int) -> tuple[Tensor, Tensor]:
        labels = torch.randint(classes, (count,), generator=generator)
        words = torch.multinomial(
            frequencies, count * words_per_text, replacement=True, generator=generator
        ).view(count, words_per_text)
        topical = torch.rand(count, words_per_text, generator=generator) < topical_fraction
        for topic in range(classes):
            where = topical & (labels == topic).unsqueeze(1)
            within_topic = frequencies * (topic_of_word == topic)
            words[where] = torch.multinomial(
                within_topic, int(where.sum()), replacement=True, generator=generator
            )
        return words, labels

    train_words, train_labels = texts(train_size)
    test_words, test_labels = texts(test_size)
    if device is None:
        from optim_lessons.training import default_device

        device = default_device()
    return (
        TensorLoader(
            train_words.to(device), train_labels.to(device), batch_size, shuffle=True, seed=seed
        ),
        TensorLoader(test_words.to(device), test_labels.to(device), 1000, shuffle=False, seed=seed),
    )


# --------------------------------------------------------------------------- Adafactor and Muon


def factored_second_moment(squares: Tensor) -> Tensor:
    r"""Adafactor's rank-1 estimate of a non-negative matrix $V$ (mean squared gradients):
    $\hat V = R\,C / \mathrm{mean}(R)$ with $R$ its row means and $C$ its column means.

    Only $R$ and $C$ need storing ($n + m$ numbers for an $n \times m$ matrix). The estimate
    keeps every row mean and every column mean of $V$, and is exact when $V$ has rank one.
    """
    if squares.dim() != 2:
        raise ValueError(f"expected a matrix, got a tensor of shape {tuple(squares.shape)}")
    row_means = squares.mean(dim=1, keepdim=True)  # R: one number per row
    column_means = squares.mean(dim=0, keepdim=True)  # C: one number per column
    return row_means @ column_means / row_means.mean()


def newton_schulz_singular_values(
    singular_values: Tensor,
    steps: int,
    coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315),
) -> Tensor:
    r"""What ``steps`` Newton-Schulz iterations do to each singular value $\sigma$ in $[0, 1]$.

    $X \leftarrow aX + (bA + cA^2)X$ with $A = XX^\top$ keeps the singular vectors of $X$ and
    maps each singular value through the odd polynomial $p(\sigma) = a\sigma + b\sigma^3 +
    c\sigma^5$; this returns $p$ applied ``steps`` times (in float64, without the bfloat16
    rounding of the real iteration).
    """
    a, b, c = coefficients
    sigma = singular_values.to(torch.float64)
    for _ in range(steps):
        sigma = a * sigma + b * sigma**3 + c * sigma**5
    return sigma


# --------------------------------------------------------------------------- exercise self-checks


def check_factored_estimate(estimate: Callable[[Tensor], Tensor], seed: int = 0) -> None:
    r"""Exercise: write Adafactor's factored estimate $\hat V = RC/\mathrm{mean}(R)$ of a
    matrix of mean squared gradients.

    Checks ``estimate(V)`` on random non-negative matrices: it must keep the row and column
    means of $V$, be exact for a rank-1 $V$, and match :func:`factored_second_moment`.
    """
    generator = torch.Generator().manual_seed(seed)
    for rows, columns in ((3, 5), (8, 2), (16, 16)):
        squares = torch.randn(rows, columns, generator=generator, dtype=torch.float64) ** 2
        result = estimate(squares)
        assert isinstance(result, Tensor) and result.shape == squares.shape, (
            f"for a {rows} x {columns} matrix the estimate must be a {rows} x {columns} tensor, "
            f"got {getattr(result, 'shape', type(result).__name__)}"
        )
        torch.testing.assert_close(
            result.mean(dim=1),
            squares.mean(dim=1),
            msg=lambda m: f"the row means of the estimate differ from V's: {m}",
        )
        torch.testing.assert_close(
            result.mean(dim=0),
            squares.mean(dim=0),
            msg=lambda m: f"the column means of the estimate differ from V's: {m}",
        )
        torch.testing.assert_close(result, factored_second_moment(squares))
        rank_one = torch.outer(squares[:, 0] + 0.1, squares[0] + 0.1)
        torch.testing.assert_close(
            estimate(rank_one),
            rank_one,
            msg=lambda m: f"a rank-1 matrix must be rebuilt exactly: {m}",
        )
    print("Right: same row and column means as V, exact for rank-1 matrices.")


def check_lazy_drift(drift: Callable[[int], float]) -> None:
    r"""Exercise: a row of an embedding table gets one gradient, $g = 1$ in every entry, at
    step 1, and none after. ``drift(k)`` must return how far dense ``torch.optim.Adam``
    (lr 0.001, default betas and eps) has moved that row's entries after ``k`` steps in all
    (SparseAdam moves it only at step 1, by 0.001).

    Compared with a real run of ``torch.optim.Adam`` for several ``k``.
    """
    for steps in (1, 2, 10, 100, 1000):
        weight = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.Adam([weight], lr=0.001)
        for step in range(steps):
            weight.grad = torch.full_like(weight, 1.0 if step == 0 else 0.0)
            optimizer.step()
        moved = -float(weight.detach())
        answer = float(drift(steps))
        assert math.isclose(answer, moved, rel_tol=1e-6, abs_tol=1e-12), (
            f"after {steps} steps Adam has moved the row by {moved:.6g}, not {answer:.6g}"
        )
    print(f"Right: after 1000 steps dense Adam has moved the row by {moved:.4f}, "
          f"{moved / 0.001:.1f} times SparseAdam's single step.")  # fmt: skip


def check_orthogonalizer(orthogonalize: Callable[[Tensor], Tensor], seed: int = 0) -> None:
    r"""Exercise: write an orthogonalizer, a function that maps a matrix $G = U\Sigma V^\top$
    to (about) $UV^\top$.

    Checks it on random matrices (wide, tall and square, singular values spread over two
    orders of magnitude): the result must have the singular vectors of $G$ and every singular
    value between 0.5 and 1.5.
    """
    generator = torch.Generator().manual_seed(seed)
    for rows, columns in ((8, 20), (30, 6), (12, 12)):
        rank = min(rows, columns)
        left, _ = torch.linalg.qr(torch.randn(rows, rank, generator=generator, dtype=torch.float64))
        right, _ = torch.linalg.qr(
            torch.randn(columns, rank, generator=generator, dtype=torch.float64)
        )
        sigma = torch.logspace(0, -2, rank, dtype=torch.float64)
        matrix = left @ torch.diag(sigma) @ right.T
        result = orthogonalize(matrix.clone()).to(torch.float64)
        assert result.shape == matrix.shape, (
            f"a {rows} x {columns} input must give a {rows} x {columns} output, "
            f"got {tuple(result.shape)}"
        )
        # In the singular basis of G, the result must be diagonal with entries near 1.
        inner = left.T @ result @ right
        diagonal = torch.diagonal(inner)
        off_diagonal = (inner - torch.diag(diagonal)).abs().max().item()
        assert off_diagonal < 0.05, (
            f"{rows} x {columns}: the result mixes G's singular directions (largest "
            f"off-diagonal entry {off_diagonal:.3f} in G's singular basis)"
        )
        assert diagonal.min() > 0.5 and diagonal.max() < 1.5, (
            f"{rows} x {columns}: singular values of the result range from "
            f"{diagonal.min():.3f} to {diagonal.max():.3f}, not within [0.5, 1.5]"
        )
    print("Right: same singular vectors as G, singular values within [0.5, 1.5].")


class _ToyLanguageModel(nn.Module):
    """Embedding, two hidden layers with a norm, and an output head: a miniature transformer
    block's kinds of parameters, for :func:`check_muon_split`."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(100, 16)
        self.hidden = nn.Sequential(
            nn.Linear(16, 32), nn.ReLU(), nn.LayerNorm(32), nn.Linear(32, 16), nn.ReLU()
        )
        self.head = nn.Linear(16, 100)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.head(self.hidden(self.embedding(tokens)))


def check_muon_split(
    split: Callable[[nn.Module, nn.Module], tuple[Iterable[Tensor], Iterable[Tensor]]],
) -> None:
    """Exercise: ``split(model, head)`` returns ``(for_muon, for_adamw)``, two iterables of the
    model's parameters: the weight matrices of the hidden layers for Muon, everything else
    (embeddings, biases, norm gains, and the output layer ``head``) for AdamW.

    Checked on a model with an embedding, two hidden linear layers, a LayerNorm and a head;
    the split must also build a working Muon.
    """
    model = _ToyLanguageModel()
    for_muon, for_adamw = (list(part) for part in split(model, model.head))
    expected = [model.hidden[0].weight, model.hidden[3].weight]
    names = {id(p): name for name, p in model.named_parameters()}

    def named(params: Iterable[Tensor]) -> list[str]:
        return sorted(names.get(id(p), "<not a parameter of the model>") for p in params)

    assert named(for_muon) == named(expected), (
        f"Muon should get {named(expected)}, got {named(for_muon)}"
    )
    every = named(model.parameters())
    assert sorted(named(for_muon) + named(for_adamw)) == every, (
        "together the two parts must hold every parameter exactly once; AdamW got "
        f"{named(for_adamw)}"
    )
    torch.optim.Muon(for_muon)
    torch.optim.AdamW(for_adamw)
    print(f"Right: Muon gets {named(for_muon)}; AdamW the {len(for_adamw)} others.")


def check_adafactor_first_step(first_move: Callable[[Tensor], float], seed: int = 0) -> None:
    r"""Exercise: how far does the first step of ``torch.optim.Adafactor`` (default settings) move
    each entry of a vector parameter $\theta$? ``first_move(theta)`` returns that distance.

    The check takes one step from vectors of very different sizes (some with an RMS below
    ``eps[1]``), with gradients from $10^{-6}$ to $10^3$, and asserts that every entry moves by
    ``first_move(theta)`` against the sign of its gradient.
    """
    generator = torch.Generator().manual_seed(seed)
    for size in (1e-5, 1.0, 30.0):
        theta = size * torch.randn(6, generator=generator, dtype=torch.float64)
        expected = float(first_move(theta.clone()))
        for gradient_size in (1e-6, 1.0, 1e3):
            weight = theta.clone().requires_grad_(True)
            weight.grad = gradient_size * torch.randn(6, generator=generator, dtype=torch.float64)
            torch.optim.Adafactor([weight]).step()
            move = weight.detach() - theta
            assert torch.all(move * weight.grad.sign() < 0), "an entry moved along its gradient"
            assert torch.allclose(move.abs(), torch.full_like(move, expected), rtol=1e-9), (
                f"for RMS(theta) = {theta.square().mean().sqrt().item():.3g}, gradients of size "
                f"{gradient_size:g}: the entries moved by {move.abs().min().item():.6g} to "
                f"{move.abs().max().item():.6g}, you said {expected:.6g}"
            )
    print("Right: one step moves every entry by your amount, whatever the size of its gradient")
