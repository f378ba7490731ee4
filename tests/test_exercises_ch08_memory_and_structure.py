"""The helpers and self-checks of the chapter on memory and structure."""

import math

import pytest
import torch
from _optim_checks import one_cpu_thread  # noqa: F401  (fixture: one CPU thread)

from optim_lessons import optimizers as ours
from optim_lessons.exercises.ch08_memory_and_structure import (
    BagOfWords,
    bag_of_words_loaders,
    check_factored_estimate,
    check_lazy_drift,
    check_muon_split,
    check_orthogonalizer,
    factored_second_moment,
    newton_schulz_singular_values,
    zipf_frequencies,
)
from optim_lessons.optimizers.multi import MultiOptimizer
from optim_lessons.optimizers.muon import NS_COEFFICIENTS, zeropower_via_newton_schulz
from optim_lessons.training import train


def two_layer_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def split_matrices(model):
    matrices = [p for p in model.parameters() if p.ndim == 2]
    others = [p for p in model.parameters() if p.ndim != 2]
    return matrices, others


# ---------------------------------------------------------------------------- the text problem


def test_bag_of_words_loaders_are_reproducible_and_follow_the_topics():
    first, _ = bag_of_words_loaders(vocab_size=500, train_size=300, test_size=50, device="cpu")
    second, test = bag_of_words_loaders(vocab_size=500, train_size=300, test_size=50, device="cpu")
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert first.images.shape == (300, 16) and first.images.dtype == torch.long
    assert int(first.images.max()) < 500 and test.dataset_size == 50
    # Word 0 is the most frequent word of the vocabulary.
    counts = torch.bincount(first.images.flatten(), minlength=500)
    assert int(counts.argmax()) == 0


def test_zipf_frequencies_sum_to_one_and_decrease():
    frequencies = zipf_frequencies(100)
    assert float(frequencies.sum()) == pytest.approx(1.0)
    assert bool((frequencies[1:] < frequencies[:-1]).all())


def test_sparse_adam_with_adam_for_the_head_learns_the_topics():
    train_loader, test_loader = bag_of_words_loaders(
        vocab_size=2_000, train_size=4_000, test_size=1_000, device="cpu"
    )
    torch.manual_seed(0)
    model = BagOfWords(2_000, sparse=True)
    optimizer = MultiOptimizer(
        ours.SparseAdam([model.embedding.weight], lr=0.01),
        torch.optim.Adam(model.classifier.parameters(), lr=0.01),
    )
    with torch.sparse.check_sparse_tensor_invariants(enable=False):
        history = train(model, optimizer, train_loader, test_loader, epochs=2, progress=False)
    assert history.final_test_accuracy > 0.5  # four topics: chance is 0.25


def test_bag_of_words_gives_the_table_a_sparse_gradient_only_when_asked():
    tokens = torch.tensor([[1, 2, 2], [5, 1, 0]])
    for sparse in (False, True):
        model = BagOfWords(10, embedding_dim=3, sparse=sparse)
        model(tokens).sum().backward()
        assert model.embedding.weight.grad.is_sparse is sparse


# ---------------------------------------------------------------------------- Adafactor, Muon


def test_factored_second_moment_is_exact_for_rank_one_and_keeps_the_means():
    rows, columns = torch.rand(5, dtype=torch.float64) + 0.1, torch.rand(7, dtype=torch.float64)
    rank_one = torch.outer(rows, columns)
    torch.testing.assert_close(factored_second_moment(rank_one), rank_one)
    squares = torch.randn(5, 7, dtype=torch.float64) ** 2
    estimate = factored_second_moment(squares)
    torch.testing.assert_close(estimate.mean(dim=0), squares.mean(dim=0))
    torch.testing.assert_close(estimate.mean(dim=1), squares.mean(dim=1))


def test_factored_second_moment_matches_adafactors_state_after_one_step():
    weight = torch.randn(6, 9, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(6, 9, dtype=torch.float64)
    optimizer = torch.optim.Adafactor([weight])
    weight.grad = grad
    optimizer.step()
    state = optimizer.state[weight]  # step 1: beta2 is 0, so R and C are this gradient's means
    from_state = state["row_var"] @ state["col_var"] / state["row_var"].mean()
    torch.testing.assert_close(factored_second_moment(grad**2), from_state)


def test_newton_schulz_singular_values_follow_the_matrix_iteration():
    torch.manual_seed(0)
    matrix = torch.randn(8, 20, dtype=torch.float64)
    sigma = torch.linalg.svdvals(matrix / matrix.norm())
    for steps in (1, 3, 5):
        result = zeropower_via_newton_schulz(matrix, NS_COEFFICIENTS, steps, 1e-7).double()
        predicted = newton_schulz_singular_values(sigma, steps)
        actual = torch.linalg.svdvals(result)
        # bfloat16 keeps about three significant digits
        torch.testing.assert_close(
            actual, predicted.sort(descending=True).values, atol=0.03, rtol=0
        )


# ---------------------------------------------------------------------------- self-checks


def test_check_factored_estimate_accepts_the_formula_and_rejects_the_plain_square():
    check_factored_estimate(factored_second_moment)
    with pytest.raises(AssertionError):
        check_factored_estimate(lambda v: v.mean() * torch.ones_like(v))


def test_check_lazy_drift_accepts_the_closed_form_and_rejects_sparse_adams_answer():
    def drift(steps, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        total = 0.0
        for t in range(1, steps + 1):
            m_hat = beta1 ** (t - 1) * (1 - beta1) / (1 - beta1**t)
            v_hat = beta2 ** (t - 1) * (1 - beta2) / (1 - beta2**t)
            total += lr * m_hat / (math.sqrt(v_hat) + eps)
        return total

    check_lazy_drift(drift)
    with pytest.raises(AssertionError, match="after 2 steps"):
        check_lazy_drift(lambda steps: 1e-3)


def test_check_orthogonalizer_accepts_svd_and_newton_schulz_and_rejects_normalizing():
    def by_svd(matrix):
        u, _, vh = torch.linalg.svd(matrix, full_matrices=False)
        return u @ vh

    check_orthogonalizer(by_svd)
    check_orthogonalizer(lambda g: zeropower_via_newton_schulz(g, NS_COEFFICIENTS, 5, 1e-7))
    with pytest.raises(AssertionError, match="singular values"):
        check_orthogonalizer(lambda g: g / g.norm())
    with pytest.raises(AssertionError, match="mixes"):
        check_orthogonalizer(lambda g: by_svd(g).flip(0))


def test_check_muon_split_accepts_hidden_matrices_and_rejects_every_matrix():
    def hidden_only(model, head):
        chosen = [
            m.weight for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head
        ]
        ids = {id(p) for p in chosen}
        return chosen, [p for p in model.parameters() if id(p) not in ids]

    check_muon_split(hidden_only)
    with pytest.raises(AssertionError, match="Muon should get"):
        check_muon_split(lambda model, head: split_matrices(model))
    with pytest.raises(AssertionError, match="exactly once"):
        check_muon_split(lambda model, head: (hidden_only(model, head)[0], []))


def test_the_first_step_check_wants_the_floor_eps2():
    from optim_lessons.exercises import attempt
    from optim_lessons.exercises.ch08_memory_and_structure import check_adafactor_first_step

    assert attempt(check_adafactor_first_step, ...) is False
    with pytest.raises(AssertionError, match="you said"):  # forgets max(eps2, .)
        check_adafactor_first_step(lambda theta: 0.01 * theta.square().mean().sqrt().item())
    with pytest.raises(AssertionError):  # a step proportional to the gradient
        check_adafactor_first_step(lambda theta: 0.01)
    check_adafactor_first_step(lambda theta: 0.01 * max(1e-3, theta.square().mean().sqrt().item()))
