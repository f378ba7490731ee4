"""The training loop: what it records, that it is repeatable, and how it fails on bad input."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from optim_lessons.data import TensorLoader, get_loaders
from optim_lessons.models import Net
from optim_lessons.training import (
    Evaluation,
    History,
    NonFiniteLossError,
    count_parameters,
    cpu_threads,
    default_device,
    evaluate,
    flat_gradient,
    optimizer_state_bytes,
    set_seed,
    train,
)


@pytest.fixture(scope="module")
def small_loaders() -> tuple[TensorLoader, TensorLoader]:
    """2,000 training and 500 test images of Fashion-MNIST: fast, and still learnable."""
    return get_loaders(batch_size=64, device="cpu", seed=0, train_size=2000, test_size=500)


def fresh_net(seed: int = 0) -> Net:
    set_seed(seed)
    return Net()


def synthetic_loader(n: int = 64, batch_size: int = 16, seed: int = 0) -> TensorLoader:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return TensorLoader(images, labels, batch_size=batch_size, seed=seed)


# ----------------------------------------------------------------------------- small helpers


def test_default_device_is_cuda_only_when_cuda_is_available(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == torch.device("cuda")


def test_set_seed_makes_model_initialisation_repeatable() -> None:
    first, second, other = fresh_net(7), fresh_net(7), fresh_net(8)
    for a, b, c in zip(first.parameters(), second.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


def test_count_parameters_counts_trainable_numbers_only_by_default() -> None:
    net = Net()
    assert count_parameters(net) == 50_890
    net.fc1.requires_grad_(False)
    assert count_parameters(net) == 64 * 10 + 10
    assert count_parameters(net, trainable_only=False) == 50_890


def test_optimizer_state_bytes_is_zero_for_sgd_one_buffer_with_momentum_two_for_adam() -> None:
    inputs, labels = torch.randn(8, 784), torch.randint(0, 10, (8,))

    def state_after_one_step(make: type[torch.optim.Optimizer], **kwargs: float) -> int:
        net = fresh_net()
        optimizer = make(net.parameters(), **kwargs)
        nn.functional.cross_entropy(net(inputs), labels).backward()
        optimizer.step()
        return optimizer_state_bytes(optimizer)

    floats = 50_890 * 4
    assert state_after_one_step(torch.optim.SGD, lr=0.1) == 0
    assert state_after_one_step(torch.optim.SGD, lr=0.1, momentum=0.9) == floats
    # exp_avg and exp_avg_sq per parameter, plus one float32 step counter per parameter tensor
    assert state_after_one_step(torch.optim.Adam, lr=0.1) == 2 * floats + 4 * 4


def test_optimizer_state_bytes_reaches_tensors_inside_lists() -> None:
    parameter = nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    shared = torch.zeros(5, dtype=torch.float64)
    optimizer.state[parameter] = {"history": [torch.zeros(2), shared], "again": shared}
    assert optimizer_state_bytes(optimizer) == 2 * 4 + 5 * 8  # the shared tensor counts once


def test_cpu_threads_restores_the_previous_thread_count() -> None:
    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


# ----------------------------------------------------------------------------- evaluate


class FixedScores(nn.Module):
    """Always the same scores, so loss and accuracy can be worked out by hand."""

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = nn.Parameter(scores)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.scores.expand(inputs.shape[0], -1)


def test_evaluate_averages_loss_and_accuracy_over_samples_not_batches() -> None:
    scores = torch.tensor([2.0, 0.0, -1.0])
    labels = torch.tensor([0, 0, 0, 1, 2])  # three of five are class 0, the model's choice
    loader = TensorLoader(torch.zeros(5, 1), labels, batch_size=2, shuffle=False)  # 2 + 2 + 1
    result = evaluate(FixedScores(scores), loader)
    expected_loss = nn.functional.cross_entropy(scores.expand(5, -1), labels).item()
    assert isinstance(result, Evaluation)
    assert result.accuracy == pytest.approx(3 / 5)
    assert result.loss == pytest.approx(expected_loss, rel=1e-6)


def test_evaluate_restores_training_mode_and_computes_no_gradient(
    small_loaders: tuple[TensorLoader, TensorLoader],
) -> None:
    net = fresh_net()
    net.train()
    evaluate(net, small_loaders[1])
    assert net.training
    assert all(p.grad is None for p in net.parameters())


def test_evaluate_rejects_an_empty_loader() -> None:
    with pytest.raises(ValueError, match="no batches: it is empty"):
        evaluate(Net(), [])


# ----------------------------------------------------------------------------- train


def test_train_records_loss_and_lr_per_step_and_accuracies_per_epoch(
    small_loaders: tuple[TensorLoader, TensorLoader],
) -> None:
    train_loader, test_loader = small_loaders
    net = fresh_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    history = train(net, optimizer, train_loader, test_loader, epochs=3, seed=0, progress=False)
    assert isinstance(history, History)
    steps = 3 * len(train_loader)
    assert history.steps == len(history.loss) == len(history.lr) == steps == 96
    assert history.lr == [0.05] * steps
    for per_epoch in (
        history.train_loss,
        history.train_accuracy,
        history.test_loss,
        history.test_accuracy,
        history.epoch_seconds,
    ):
        assert len(per_epoch) == 3
    assert history.final_test_accuracy == history.test_accuracy[-1]
    assert history.test_accuracy[-1] > 0.7  # ten classes: chance is 0.1
    assert history.train_loss[-1] < history.train_loss[0]
    # the last test accuracy is what evaluate() says about the trained model
    assert evaluate(net, test_loader).accuracy == history.test_accuracy[-1]


def test_train_is_bit_for_bit_repeatable_on_the_cpu_with_the_same_seeds(
    small_loaders: tuple[TensorLoader, TensorLoader],
) -> None:
    train_loader, test_loader = small_loaders
    runs = []
    for _ in range(2):
        net = fresh_net(0)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        runs.append(
            train(net, optimizer, train_loader, test_loader, epochs=2, seed=0, progress=False)
        )
    assert runs[0].loss == runs[1].loss
    assert runs[0].test_accuracy == runs[1].test_accuracy
    net = fresh_net(0)
    different_batches = train(
        net,
        torch.optim.Adam(net.parameters(), lr=1e-3),
        train_loader,
        epochs=2,
        seed=1,
        progress=False,
    )
    assert (
        different_batches.loss[0] != runs[0].loss[0] or different_batches.loss[1] != runs[0].loss[1]
    )


def test_train_drives_lbfgs_through_the_closure(
    small_loaders: tuple[TensorLoader, TensorLoader],
) -> None:
    train_loader, _ = small_loaders
    net = fresh_net()
    optimizer = torch.optim.LBFGS(net.parameters(), lr=1, max_iter=5, history_size=5)
    history = train(net, optimizer, train_loader, epochs=1, max_steps=10, seed=0, progress=False)
    assert history.steps == 10
    assert all(math.isfinite(value) for value in history.loss)
    assert history.final_test_accuracy is None  # no test loader was given
    assert (
        optimizer.state[optimizer._params[0]]["func_evals"] > 10
    )  # it asked for more than one loss per step


def test_train_steps_a_scheduler_per_batch_or_per_epoch() -> None:
    loader = synthetic_loader(n=64, batch_size=16)  # 4 batches
    net = fresh_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    per_batch = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = train(
        net,
        optimizer,
        loader,
        epochs=1,
        scheduler=per_batch,
        scheduler_step="batch",
        progress=False,
    )
    assert history.lr == [1.0, 0.5, 0.25, 0.125]

    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    per_epoch = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = train(net, optimizer, loader, epochs=2, scheduler=per_epoch, progress=False)
    assert history.lr == [1.0] * 4 + [0.5] * 4


def test_reduce_lr_on_plateau_receives_the_epoch_test_loss() -> None:
    loader = synthetic_loader()
    net = fresh_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)  # random labels: no halving of the loss
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, patience=0, factor=0.1, threshold=0.5
    )
    train(net, optimizer, loader, loader, epochs=3, scheduler=plateau, progress=False)
    # epoch 1 sets the best loss; epochs 2 and 3 fail to halve it: two reductions
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)


def test_max_steps_stops_in_the_middle_of_an_epoch_and_still_evaluates() -> None:
    loader = synthetic_loader(n=64, batch_size=16)
    net = fresh_net()
    history = train(
        net,
        torch.optim.SGD(net.parameters(), lr=0.1),
        loader,
        loader,
        epochs=5,
        max_steps=6,
        progress=False,
    )
    assert history.steps == 6 and history.epochs == 2
    assert len(history.test_accuracy) == 2


def test_clip_grad_norm_bounds_the_gradient_the_optimizer_sees() -> None:
    loader = synthetic_loader()
    net = fresh_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=10.0)  # large steps make large gradients
    train(net, optimizer, loader, epochs=1, clip_grad_norm=0.01, progress=False)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in net.parameters()]))
    assert norm.item() <= 0.01 * (1 + 1e-5)


def test_train_accepts_a_standard_dataloader_and_a_plain_list_of_batches() -> None:
    loader = synthetic_loader(n=64, batch_size=16)
    dataset = torch.utils.data.TensorDataset(loader.images, loader.labels)
    standard = torch.utils.data.DataLoader(dataset, batch_size=16, shuffle=False)
    batches = list(TensorLoader(loader.images, loader.labels, batch_size=16, shuffle=False))
    runs = []
    for feed in (standard, batches):
        net = fresh_net()
        runs.append(
            train(net, torch.optim.SGD(net.parameters(), lr=0.1), feed, feed, progress=False)
        )
    assert runs[0].steps == 4
    assert runs[0].loss == runs[1].loss  # the same batches in the same order: the same run


def test_train_moves_the_model_to_the_requested_device() -> None:
    net = fresh_net()
    history = train(
        net,
        torch.optim.SGD(net.parameters(), lr=0.1),
        synthetic_loader(),
        device="cpu",
        progress=False,
    )
    assert next(net.parameters()).device == torch.device("cpu") and history.steps == 4


def test_train_shows_a_progress_bar_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    net = fresh_net()
    train(net, torch.optim.SGD(net.parameters(), lr=0.1), synthetic_loader(), progress=True)
    assert "4/4" in capsys.readouterr().err


@pytest.mark.slow
def test_one_real_epoch_of_fashion_mnist_beats_80_percent_with_sgd_momentum() -> None:
    train_loader, test_loader = get_loaders(device="cpu", seed=0)
    net = fresh_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    history = train(net, optimizer, train_loader, test_loader, epochs=1, seed=0, progress=False)
    assert history.steps == 938
    assert history.final_test_accuracy > 0.80


# ----------------------------------------------------------------------------- bad input


def test_train_rejects_an_empty_loader_by_name() -> None:
    net = fresh_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    empty = TensorLoader(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="train_loader yielded no batches"):
        train(net, optimizer, empty, progress=False)
    with pytest.raises(ValueError, match="test_loader yielded no batches"):
        train(net, optimizer, synthetic_loader(), empty, progress=False)
    with pytest.raises(ValueError, match="train_loader yielded no batches"):
        train(net, optimizer, iter([]), progress=False)  # no len(): found out while iterating


def test_train_reports_inputs_the_model_cannot_take() -> None:
    net = fresh_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    half_images = TensorLoader(torch.zeros(8, 392), torch.zeros(8, dtype=torch.long), batch_size=4)
    with pytest.raises(ValueError, match=r"784 input features per sample.*shape \(4, 392\)"):
        train(net, optimizer, half_images, progress=False)


def test_train_reports_shape_errors_from_any_model_with_the_batch_that_caused_them() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(100, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(
        ValueError,
        match=r"cannot take the inputs of batch 0 of epoch 1: inputs of shape \(16, 1, 28, 28\)",
    ):
        train(model, optimizer, synthetic_loader(), progress=False)


def test_train_reports_labels_that_do_not_match_the_outputs() -> None:
    net = fresh_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    one_hot = TensorLoader(torch.zeros(8, 1, 28, 28), torch.zeros(8, 3), batch_size=4)
    with pytest.raises(
        ValueError, match=r"outputs of shape \(4, 10\) with the labels of shape \(4, 3\)"
    ):
        train(net, optimizer, one_hot, progress=False)


def test_train_refuses_an_optimizer_that_ignores_the_closure() -> None:
    class StaleSGD(torch.optim.SGD):
        def step(self, closure=None):  # type: ignore[no-untyped-def]
            return super().step()  # forgets the closure: p.grad is never computed

    net = fresh_net()
    with pytest.raises(ValueError, match="StaleSGD.step\\(closure\\) never called the closure"):
        train(net, StaleSGD(net.parameters(), lr=0.1), synthetic_loader(), progress=False)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"scheduler_step": "step"}, "scheduler_step must be one of"),
        ({"max_steps": 0}, "max_steps must be a positive integer"),
        ({"clip_grad_norm": 0.0}, "clip_grad_norm must be positive"),
    ],
)
def test_train_rejects_bad_arguments(arguments: dict, message: str) -> None:
    net = fresh_net()
    with pytest.raises(ValueError, match=message):
        train(
            net,
            torch.optim.SGD(net.parameters(), lr=0.1),
            synthetic_loader(),
            progress=False,
            **arguments,
        )


def test_flat_gradient_is_every_parameter_gradient_in_order_and_fills_grad():
    torch.manual_seed(0)
    model = Net()
    inputs, targets = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    criterion = torch.nn.CrossEntropyLoss()
    flat = flat_gradient(model, criterion, inputs, targets)
    assert flat.shape == (sum(p.numel() for p in model.parameters()),)
    expected = torch.autograd.grad(criterion(model(inputs), targets), list(model.parameters()))
    torch.testing.assert_close(flat, torch.cat([g.reshape(-1) for g in expected]))
    torch.testing.assert_close(model.fc2.bias.grad, expected[-1])
    # Zeroed first: a second call gives the same vector, not twice it.
    torch.testing.assert_close(flat_gradient(model, criterion, inputs, targets), flat)


# ----------------------------------------------------------------------------- silent failures


def as_plain_batches(loader: TensorLoader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The same batches as a plain list: a loader the checks must take batch by batch."""
    return [(inputs.clone(), labels.clone()) for inputs, labels in loader]


def test_train_gives_the_same_numbers_as_the_five_line_loop() -> None:
    """The checks look, and change nothing: every loss equals a plain torch loop's, bit for bit."""
    loader = synthetic_loader(n=96, batch_size=16)
    net = fresh_net()
    history = train(
        net, torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), loader,
        epochs=2, seed=3, progress=False,
    )  # fmt: skip
    plain = fresh_net()
    optimizer = torch.optim.SGD(plain.parameters(), lr=0.05, momentum=0.9)
    loader.manual_seed(3)
    losses = []
    for _ in range(2):
        for inputs, labels in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(plain(inputs), labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert history.loss == losses
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), plain.parameters()))


@pytest.mark.parametrize("copy_of_the_model", [False, True], ids=["another-model", "a-copy"])
def test_train_refuses_an_optimizer_over_parameters_the_model_does_not_have(
    copy_of_the_model: bool,
) -> None:
    net = fresh_net()
    other = copy.deepcopy(net) if copy_of_the_model else fresh_net(seed=1)
    optimizer = torch.optim.SGD(other.parameters(), lr=0.1)
    with pytest.raises(ValueError) as error:
        train(net, optimizer, synthetic_loader(), progress=False)
    assert str(error.value) == (
        "The optimizer holds none of the model's parameters (4 tensors, none of them the "
        "model's 4), so training would never change the model. It was built over another "
        "model, or over a copy of this one: build it from this model, e.g. "
        "SGD(model.parameters(), ...)."
    )


def test_train_accepts_an_optimizer_over_some_of_the_models_parameters() -> None:
    net = fresh_net()
    train(net, torch.optim.SGD(net.fc2.parameters(), lr=0.1), synthetic_loader(), progress=False)


def test_a_nan_in_the_inputs_stops_the_run_at_that_step_with_the_weights_unharmed() -> None:
    loader = synthetic_loader(n=64, batch_size=16)
    loader.images[40, 0, 3, 3] = float("nan")  # sample 40, in whichever batch the order puts it
    net = fresh_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    with pytest.raises(NonFiniteLossError) as error:
        train(net, optimizer, loader, epochs=3, seed=0, progress=False)
    where = error.value
    loader.manual_seed(0)  # which batch of the first epoch holds sample 40?
    order = torch.randperm(64, generator=loader.generator)
    batch = int((order == 40).nonzero()) // 16
    assert (where.step, where.epoch, where.batch) == (batch + 1, 1, batch)
    assert str(where).startswith(
        f"The loss is nan at step {batch + 1} (batch {batch} of epoch 1): the weights were left "
        "as they were before this step. Usual causes:"
    )
    assert "Pass stop_on_nonfinite=False to carry on regardless" in str(where)
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_a_learning_rate_far_too_large_stops_the_run_where_the_loss_overflows() -> None:
    net = fresh_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=1e12)
    with pytest.raises(NonFiniteLossError, match=r"The loss is (nan|inf) at step \d+") as error:
        train(net, optimizer, synthetic_loader(n=256), epochs=4, progress=False)
    assert error.value.step > 1
    assert len(error.value.history.loss) == error.value.history.steps  # the finished epochs
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_stop_on_nonfinite_false_carries_on_as_torch_does() -> None:
    loader = synthetic_loader(n=64, batch_size=16)
    loader.images[0, 0, 0, 0] = float("nan")
    net = fresh_net()
    history = train(
        net, torch.optim.SGD(net.parameters(), lr=0.01), loader,
        epochs=2, progress=False, stop_on_nonfinite=False,
    )  # fmt: skip
    assert history.steps == 8
    assert any(math.isnan(loss) for loss in history.loss)
    assert not torch.isfinite(net.fc1.weight).all()  # what the check is there to prevent


@pytest.mark.parametrize("plain", [False, True], ids=["TensorLoader", "list-of-batches"])
@pytest.mark.parametrize("bad_label", [10, -1, -100])
def test_labels_outside_the_classes_are_refused(plain: bool, bad_label: int) -> None:
    loader = synthetic_loader(n=32, batch_size=8)
    if plain:  # checked batch by batch: the second batch holds the bad label
        batches = as_plain_batches(loader)
        batches[1][1][5] = bad_label
        where = "batch 1 of epoch 1"
    else:  # checked once, as a whole, before the first step
        loader.labels[29] = bad_label
        batches, where = loader, "the loader's labels (loader.labels)"
    net = fresh_net()
    before = copy.deepcopy(net.state_dict())
    with pytest.raises(ValueError) as error:
        train(net, torch.optim.SGD(net.parameters(), lr=0.1), batches, progress=False)
    message = str(error.value)
    assert message.startswith(f"Labels outside 0..9 in {where}")
    assert f": [{bad_label}]. The model gives 10 scores per sample" in message
    ignore_hint = "-100 is the criterion's ignore_index: the loss would silently skip those"
    assert (ignore_hint in message) == (bad_label == -100)
    if not plain:
        assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_the_ignore_index_passes_only_when_asked_for_and_is_then_skipped_by_the_loss() -> None:
    loader = synthetic_loader(n=32, batch_size=8)
    loader.labels[::2] = -100
    net = fresh_net()
    history = train(
        net, torch.optim.SGD(net.parameters(), lr=0.1), loader,
        progress=False, allow_ignore_index=True,
    )  # fmt: skip
    assert history.steps == 4 and all(math.isfinite(loss) for loss in history.loss)
    loader.labels[1] = -1  # still not a class, nor the ignored value
    with pytest.raises(ValueError, match=r"Labels outside 0..9 in the loader's labels .*: \[-1\]"):
        train(
            net, torch.optim.SGD(net.parameters(), lr=0.1), loader,
            progress=False, allow_ignore_index=True,
        )  # fmt: skip


def test_evaluate_refuses_labels_outside_the_classes() -> None:
    loader = synthetic_loader(n=16, batch_size=8)
    loader.labels[3] = -100
    with pytest.raises(ValueError, match="-100 is the criterion's ignore_index"):
        evaluate(fresh_net(), as_plain_batches(loader))


def test_the_end_of_epoch_check_of_a_gpu_run_names_the_first_bad_step() -> None:
    """On a GPU the losses are looked at when the epoch ends; here that check runs alone."""
    from optim_lessons.training import _EpochRunner

    net = fresh_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    runner = _EpochRunner(net, optimizer, nn.CrossEntropyLoss(), torch.device("cpu"), None, None)
    history = History(loss=[0.5] * 10)  # ten steps in earlier epochs
    with pytest.raises(NonFiniteLossError) as error:
        runner._stop_at_first_nonfinite([2.0, 1.5, math.inf, math.nan], 1, history)
    assert (error.value.step, error.value.epoch, error.value.batch) == (13, 2, 2)
    assert str(error.value).startswith(
        "The loss is inf at step 13 (batch 2 of epoch 2): on a GPU the loss is looked at when "
        "the epoch ends, so the steps up to the end of this epoch have been taken with it."
    )


def test_the_books_reduce_lr_on_plateau_steps_on_the_epochs_loss_like_torchs():
    from optim_lessons.schedulers import ReduceLROnPlateau

    losses = {}
    for name, plateau in (("torch", torch.optim.lr_scheduler.ReduceLROnPlateau),
                          ("ours", ReduceLROnPlateau)):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        scheduler = plateau(optimizer, patience=0, factor=0.5)
        batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,))) for _ in range(4)]
        history = train(model, optimizer, batches, batches[:1], epochs=4, scheduler=scheduler,
                        progress=False)
        losses[name] = (history.test_loss, history.lr)
    assert losses["ours"] == losses["torch"]
    assert len(set(losses["ours"][1])) > 1  # the rate was cut at least once
