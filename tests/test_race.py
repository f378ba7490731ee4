"""The race and the recipe, on tiny subsets of Fashion-MNIST (a few seconds in all)."""

from __future__ import annotations

import math

import pytest
import torch

from optim_lessons.benchmarks.race import (
    SWEEPS,
    OptimizerSpec,
    default_specs,
    make_splits,
    plot_race,
    race,
)
from optim_lessons.benchmarks.recipe import Recipe, train_recipe
from optim_lessons.data import AugmentedLoader, standardize_pixels
from optim_lessons.exercises import attempt
from optim_lessons.exercises.ch09_the_race import check_state_bytes
from optim_lessons.models import Net
from optim_lessons.training import evaluate, set_seed


@pytest.fixture(scope="module")
def tiny_splits():
    return make_splits(train_size=512, val_size=256, batch_size=64, seed=0, device="cpu")


def test_the_sweep_table_has_a_grid_for_each_of_torchs_fifteen_optimizers():
    from optim_lessons.optimizers import TORCH_NAMES

    assert set(SWEEPS) == set(TORCH_NAMES)
    for spec in SWEEPS.values():
        assert len(spec.lrs) == 3 and list(spec.lrs) == sorted(spec.lrs)
        assert all(lr > 0 for lr in spec.lrs)


def test_training_and_validation_images_are_disjoint_and_fixed_by_the_seed():
    first = make_splits(train_size=1000, val_size=500, seed=3, device="cpu")
    again = make_splits(train_size=1000, val_size=500, seed=3, device="cpu")
    other = make_splits(train_size=1000, val_size=500, seed=4, device="cpu")
    train_set = set(first.train_index.tolist())
    assert len(train_set) == 1000 and len(set(first.validation_index.tolist())) == 500
    assert train_set.isdisjoint(first.validation_index.tolist())
    assert torch.equal(first.train_index, again.train_index)
    assert not torch.equal(first.train_index, other.train_index)
    assert first.test.dataset_size == 10_000


def test_every_run_starts_from_the_same_weights(tiny_splits):
    # At a learning rate of zero a run leaves the initial weights untouched, so two different
    # optimizers must then score exactly the same on the validation split.
    specs = [OptimizerSpec("SGD", (0.0,), {"momentum": 0.9}), OptimizerSpec("Adam", (0.0,))]
    result = race(specs, epochs=1, splits=tiny_splits, device="cpu")
    sgd, adam = result.sweep
    assert sgd.val_loss == adam.val_loss and sgd.val_accuracy == adam.val_accuracy
    assert result.row("SGD").test_loss == result.row("Adam").test_loss


def test_the_best_rate_is_the_one_with_the_best_validation_accuracy(tiny_splits):
    specs = [OptimizerSpec("SGD", (1e-4, 0.05, 50.0), {"momentum": 0.9})]
    result = race(specs, epochs=1, splits=tiny_splits, device="cpu")
    runs = [r for r in result.sweep if r.name == "SGD"]
    assert [r.lr for r in runs] == [1e-4, 0.05, 50.0]
    finite = [r for r in runs if not r.diverged]
    best = max(finite, key=lambda r: (r.val_accuracy, -r.val_loss))
    row = result.row("SGD")
    assert row.best_lr == best.lr == 0.05
    assert row.val_accuracy == best.val_accuracy
    assert len(row.loss) == len(tiny_splits.train)  # one loss per step of one epoch
    assert row.sweep_seconds >= row.seconds > 0


def test_the_three_special_racers_run_on_the_mlp(tiny_splits):
    # Muon gets the weight matrices only, SparseAdam sparse gradients, LBFGS a closure.
    specs = default_specs(["Muon", "SparseAdam", "LBFGS"])
    result = race(
        specs,
        epochs=1,
        lrs={n: (SWEEPS[n].lrs[1],) for n in ["Muon", "SparseAdam", "LBFGS"]},
        splits=tiny_splits,
        device="cpu",
    )
    for row in result.rows:
        assert 0.0 <= row.test_accuracy <= 1.0 and math.isfinite(row.test_loss)
        assert row.test_accuracy > 0.3, f"{row.name} learned nothing: {row.test_accuracy}"
    # Muon and SparseAdam keep momentum-like state: one and two buffers of float32 per parameter.
    assert result.row("Muon").state_bytes_per_param == pytest.approx(4.0, abs=0.01)
    assert result.row("SparseAdam").state_bytes_per_param == pytest.approx(8.0, abs=0.01)


def test_muon_leaves_the_biases_at_their_start():
    model = torch.nn.Linear(3, 2)
    optimizer = SWEEPS["Muon"].build(model, lr=0.1)
    assert [p.ndim for g in optimizer.param_groups for p in g["params"]] == [2]


def test_sparse_mode_hands_the_optimizer_sparse_gradients():
    model = torch.nn.Linear(3, 2)
    SWEEPS["SparseAdam"].build(model, lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    assert model.weight.grad.is_sparse and model.bias.grad.is_sparse


def test_race_table_and_figure_list_every_optimizer(tiny_splits):
    specs = [OptimizerSpec("SGD", (0.05,), {"momentum": 0.9}), OptimizerSpec("Adam", (3e-3,))]
    result = race(specs, epochs=1, splits=tiny_splits, device="cpu")
    lines = result.table().splitlines()
    assert lines[0].split()[:3] == ["optimizer", "best", "lr"]
    assert len(lines) == 2 + 2
    assert {line.split()[0] for line in lines[2:]} == {"SGD", "Adam"}
    figure = plot_race(result)
    titles = [ax.get_title() for ax in figure.axes]
    assert all(titles) and figure._suptitle.get_text()
    assert all(ax.get_xlabel() for ax in figure.axes)
    assert figure.axes[0].get_legend() is not None


def test_augmentation_shifts_each_image_by_at_most_max_shift_pixels(tiny_splits):
    loader = AugmentedLoader(tiny_splits.train, max_shift=1, seed=0)
    images = tiny_splits.train.images[:16]
    shifted = loader.augment(images)
    assert shifted.shape == images.shape
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1), value=loader.background)
    for original, moved in zip(padded, shifted, strict=True):
        candidates = [original[:, dy : dy + 28, dx : dx + 28] for dy in range(3) for dx in range(3)]
        assert any(torch.equal(moved, c) for c in candidates)


def test_augmentation_mirrors_or_keeps_each_image_and_repeats_after_manual_seed(tiny_splits):
    loader = AugmentedLoader(tiny_splits.train, flip=True, seed=0)
    images = tiny_splits.train.images[:64]
    first = loader.augment(images)
    mirrored = [torch.equal(a, b.flip(-1)) for a, b in zip(first, images, strict=True)]
    kept = [torch.equal(a, b) for a, b in zip(first, images, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True)) and any(mirrored) and any(kept)
    batches = [b for b, _ in loader.manual_seed(5)]
    again = [b for b, _ in loader.manual_seed(5)]
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))


def test_a_recipe_is_judged_on_validation_when_a_split_is_held_out(tiny_splits):
    recipe = Recipe(
        lr=0.05, epochs=2, label_smoothing=0.1, weight_decay=5e-4, max_shift=1, flip=True
    )
    result = train_recipe(recipe, splits=tiny_splits, device="cpu")
    assert result.judged_on == "validation"
    assert 0.5 < result.accuracy <= 1.0
    assert result.history.epochs == 2
    # one-cycle: the rate climbs to the peak, then falls far below it
    assert max(result.history.lr) == pytest.approx(0.05, rel=0.02)
    assert result.history.lr[-1] < 0.05 / 1000
    assert "label smoothing 0.1" in recipe.describe()


def test_an_average_that_barely_moves_scores_like_the_untrained_network(tiny_splits):
    # With a decay of almost one, the moving average stays at the initial weights, so the
    # evaluated network is the untrained one, whatever the training did.
    recipe = Recipe(lr=0.05, epochs=1, weight_decay=5e-4)
    trained = train_recipe(recipe, splits=tiny_splits, device="cpu")
    frozen = train_recipe(recipe.with_(ema_decay=1 - 1e-12), splits=tiny_splits, device="cpu")
    set_seed(recipe.seed)
    untrained = evaluate(Net(), tiny_splits.validation)
    assert frozen.accuracy == pytest.approx(untrained.accuracy)
    assert frozen.loss == pytest.approx(untrained.loss, rel=1e-5)
    assert trained.accuracy > untrained.accuracy + 0.2


def test_the_state_bytes_self_check_accepts_adams_count_and_rejects_others(capsys):
    # Two float32 buffers per parameter and one float32 step count per parameter tensor.
    adam_bytes = 2 * 4 * 50_890 + 4 * 4
    check_state_bytes("Adam", adam_bytes)
    assert "Right: Adam keeps 407,136 bytes" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="too few"):
        check_state_bytes("Adam", adam_bytes - 16)
    assert not attempt(check_state_bytes, "Adam", ...)
    assert capsys.readouterr().out.startswith("Not done")
    # Adafactor: a row and a column statistic per matrix, a full buffer per bias, a step each.
    check_state_bytes("Adafactor", ((64 + 784) + (10 + 64) + 64 + 10) * 4 + 4 * 4)
    with pytest.raises(AssertionError, match="too many"):
        check_state_bytes("Adafactor", adam_bytes)


def test_each_run_of_the_race_takes_batches_times_epochs_steps(tiny_splits):
    specs = [OptimizerSpec("SGD", (0.05,), {"momentum": 0.9})]
    result = race(specs, epochs=2, splits=tiny_splits, device="cpu")
    assert len(result.rows[0].loss) == 2 * 8  # 512 images in batches of 64, twice


def test_the_cosine_schedule_warms_up_linearly_then_decays_to_zero(tiny_splits):
    recipe = Recipe(lr=0.05, epochs=2, schedule="cosine", pct_start=0.25)
    result = train_recipe(recipe, splits=tiny_splits, device="cpu")
    rates = result.history.lr
    warmup = round(0.25 * len(rates))  # 4 of the 16 steps
    assert rates[:warmup] == pytest.approx([0.05 * (i + 1) / warmup for i in range(warmup)])
    decay = len(rates) - warmup  # then half a cosine period, from the peak towards zero
    expected = [0.05 * 0.5 * (1 + math.cos(math.pi * k / decay)) for k in range(decay)]
    assert rates[warmup:] == pytest.approx(expected)
    assert rates[-1] < 0.05 * 0.02
    assert "warm-up + cosine" in recipe.describe()


def test_per_layer_rate_factors_of_zero_leave_the_network_untrained(tiny_splits):
    recipe = Recipe(lr=0.05, epochs=1, lr_scales={"fc1": 0.0, "fc2": 0.0})
    frozen = train_recipe(recipe, splits=tiny_splits, device="cpu")
    moving = train_recipe(
        recipe.with_(lr_scales={"fc1": 0.0}, epochs=3), splits=tiny_splits, device="cpu"
    )
    set_seed(recipe.seed)
    untrained = evaluate(Net(), tiny_splits.validation)
    assert frozen.loss == pytest.approx(untrained.loss, rel=1e-6)
    assert moving.accuracy > untrained.accuracy + 0.3  # the output layer alone still learns
    assert frozen.history.lr[0] == 0.0  # the first group's rate: fc1's, scaled by zero


def test_a_vanishing_gradient_clip_keeps_the_weights_where_they_started(tiny_splits):
    recipe = Recipe(lr=0.05, epochs=1, clip_grad_norm=1e-12)
    clipped = train_recipe(recipe, splits=tiny_splits, device="cpu")
    set_seed(recipe.seed)
    untrained = evaluate(Net(), tiny_splits.validation)
    assert clipped.loss == pytest.approx(untrained.loss, rel=1e-5)


def test_averaging_the_last_epochs_differs_from_the_last_weights_but_learns(tiny_splits):
    recipe = Recipe(lr=0.05, epochs=3, weight_decay=5e-4)
    last = train_recipe(recipe, splits=tiny_splits, device="cpu")
    averaged = train_recipe(recipe.with_(average_epochs=2), splits=tiny_splits, device="cpu")
    assert averaged.loss != last.loss
    assert averaged.accuracy > 0.5
    # averaging every epoch of a run at rate zero keeps the initial weights
    frozen = train_recipe(recipe.with_(lr=0.0, average_epochs=3), splits=tiny_splits, device="cpu")
    set_seed(recipe.seed)
    assert frozen.loss == pytest.approx(evaluate(Net(), tiny_splits.validation).loss, rel=1e-5)
    with pytest.raises(ValueError, match="average_epochs"):
        train_recipe(recipe.with_(average_epochs=4), splits=tiny_splits, device="cpu")


def test_per_pixel_standardization_uses_training_statistics_only(tiny_splits):
    train_loader, judge = standardize_pixels(tiny_splits.train, tiny_splits.validation, seed=0)
    flat = train_loader.images.reshape(train_loader.dataset_size, -1)
    varying = tiny_splits.train.images.reshape(512, -1).std(dim=0) > 1e-2
    assert flat.mean(dim=0).abs().max() < 1e-4
    assert flat.std(dim=0)[varying] == pytest.approx(torch.ones(int(varying.sum())), rel=1e-4)
    # the held-out images get the same affine map, not statistics of their own
    mean = tiny_splits.train.images.mean(dim=0)
    std = tiny_splits.train.images.std(dim=0).clamp_min(1e-2)
    expected = (tiny_splits.validation.images - mean) / std
    assert torch.allclose(judge.images, expected, atol=1e-5)
    result = train_recipe(
        Recipe(lr=0.05, epochs=1, standardize="pixel"), splits=tiny_splits, device="cpu"
    )
    assert result.accuracy > 0.5
    with pytest.raises(ValueError, match="shifts"):
        train_recipe(
            Recipe(epochs=1, standardize="pixel", max_shift=1), splits=tiny_splits, device="cpu"
        )
