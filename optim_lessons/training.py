"""One training loop for every chapter: any optimizer, any device, seeded.

The loop is the classic five lines, once per batch::

    optimizer.zero_grad()              # forget the previous batch's gradients
    outputs = model(inputs)            # forward pass
    loss = criterion(outputs, labels)  # one number: how wrong the model is on this batch
    loss.backward()                    # fill p.grad for every parameter p
    optimizer.step()                   # move every parameter, using p.grad (and its state)

:func:`train` runs exactly these lines, but packs the first four into a *closure* and calls
``optimizer.step(closure)``. Every ``torch.optim`` optimizer (and every optimizer of this
book) accepts a closure; most call it once and then update, while ``LBFGS`` calls it several
times per step to re-measure the loss along its search line. Passing a closure always therefore
runs the same loop for all of them.

Identical runs: call ``set_seed(seed)`` (or ``torch.manual_seed``) *before* building the model,
so that its initial weights are the same, build the loaders with a fixed ``seed``, and pass
``seed=`` to :func:`train`, which also rewinds the loader's shuffling. On the CPU two such runs
give bit-identical losses.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from optim_lessons._loop import (
    BatchClosure,
    LabelCheck,
    check_train_arguments,
    empty_loader_error,
    forward_and_loss,
    loader_length,
    sum_loss,
)

SCHEDULER_STEPS = ("epoch", "batch")

#: CPU threads that :func:`train` and :func:`evaluate` use. The book's model is so small that a
#: second thread barely helps, and on a busy machine the extra threads wait for a core by
#: spinning, which can make an epoch many times slower. ``None`` leaves torch's setting alone.
CPU_THREADS: int | None = 1


def default_device() -> torch.device:
    """CUDA when it is available (on Colab with a GPU runtime, say), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's (if installed) and torch's random generators (CPU and CUDA)."""
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy ships with torch's usual installs
        return
    numpy.random.seed(seed % 2**32)


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(threads)``, then restore the previous count."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads is not None:
            torch.set_num_threads(previous)


def _thread_limit(device: torch.device) -> contextlib.AbstractContextManager:
    return cpu_threads(CPU_THREADS) if device.type == "cpu" else contextlib.nullcontext()


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """How many numbers the optimizer adjusts (all parameters if ``trainable_only`` is False)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _tensors_in(value: Any) -> Iterable[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors_in(item)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by the tensors in ``optimizer.state`` (momentum buffers, moments, step counts).

    This is the memory an optimizer costs on top of the parameters and their gradients: zero
    for plain SGD, one parameter-sized buffer for SGD with momentum, two for Adam. A tensor that
    appears twice is counted once.
    """
    seen: set[int] = set()
    total = 0
    for state in optimizer.state.values():
        for tensor in _tensors_in(state):
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


def flat_gradient(model: nn.Module, criterion: Any, inputs: Tensor, targets: Tensor) -> Tensor:
    """The gradient of ``criterion(model(inputs), targets)`` for every parameter, as one vector.

    It leaves the gradients in ``.grad`` too (they are zeroed first), so it is the same gradient
    an optimizer would read on this batch.
    """
    model.zero_grad()
    criterion(model(inputs), targets).backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


@dataclass
class Evaluation:
    """Mean loss and accuracy (fraction correct, 0 to 1) over every sample of a loader."""

    loss: float
    accuracy: float


@dataclass
class History:
    """What one call of :func:`train` measured.

    Per optimizer step: ``loss`` (the mini-batch loss before the step) and ``lr`` (the first
    parameter group's learning rate used by the step). Per epoch: ``train_loss`` and
    ``train_accuracy`` (averaged over the epoch's batches, measured while the weights were
    changing), ``test_loss`` and ``test_accuracy`` (on the test loader after the epoch, empty
    when none was given) and ``epoch_seconds`` (training time, evaluation excluded).
    """

    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)

    @property
    def steps(self) -> int:
        """How many optimizer steps were taken."""
        return len(self.loss)

    @property
    def epochs(self) -> int:
        """How many epochs were run (the last one may have been cut short by ``max_steps``)."""
        return len(self.epoch_seconds)

    @property
    def final_test_accuracy(self) -> float | None:
        """Test accuracy after the last epoch, or ``None`` when no test loader was given."""
        return self.test_accuracy[-1] if self.test_accuracy else None

    @property
    def final_train_loss(self) -> float | None:
        return self.train_loss[-1] if self.train_loss else None


def _model_device(model: nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return default_device()


class NonFiniteLossError(FloatingPointError):
    """The loss of a training step was NaN or infinite.

    ``step`` (counted from 1 over the whole run), ``epoch`` (from 1) and ``batch`` (the batch's
    index in the loader, from 0, as in every message of the loop) say where; ``history`` holds
    what was measured up to the last finished epoch.
    """

    def __init__(self, message: str, *, step: int, epoch: int, batch: int, history: History):
        super().__init__(message)
        self.step, self.epoch, self.batch, self.history = step, epoch, batch, history


def _nonfinite_message(loss: float, step: int, where: str, weights: str) -> str:
    return (
        f"The loss is {loss} at step {step} ({where}): {weights}. Usual causes: a learning rate "
        "too large for this model, exploding gradients (try clip_grad_norm=1.0), or NaN or inf "
        "in the inputs. Pass stop_on_nonfinite=False to carry on regardless, as a plain torch "
        "loop would."
    )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    device: str | torch.device | None = None,
    criterion: Callable[[Tensor, Tensor], Tensor] | None = None,
    *,
    allow_ignore_index: bool = False,
) -> Evaluation:
    """Mean loss and accuracy of ``model`` over every sample of ``loader``, without gradients.

    The model is put in evaluation mode for the pass and returned to its previous mode after.
    Class labels outside ``0..C-1`` raise ``ValueError``, as in :func:`train`.
    """
    criterion = nn.CrossEntropyLoss() if criterion is None else criterion
    label_check = LabelCheck(criterion, allow_ignore_index, loader)
    device = _model_device(model) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    samples = 0
    try:
        with _thread_limit(device):
            for batch_index, (inputs, given_labels) in enumerate(loader):
                inputs, labels = inputs.to(device), given_labels.to(device)
                outputs, loss = forward_and_loss(
                    model,
                    criterion,
                    inputs,
                    labels,
                    f"batch {batch_index} of the loader",
                    lambda outputs, where, given=given_labels: label_check(outputs, given, where),
                )
                total_loss += sum_loss(criterion, loss, labels.shape[0])
                correct += (outputs.argmax(dim=1) == labels).sum()
                samples += labels.shape[0]
    finally:
        model.train(was_training)
    if samples == 0:
        raise empty_loader_error("the evaluation loader")
    return Evaluation(loss=float(total_loss) / samples, accuracy=int(correct) / samples)


def _scheduler_metric_needed(scheduler: Any) -> bool:
    """torch's ReduceLROnPlateau and the book's both step on a measured loss."""
    from optim_lessons.schedulers import ReduceLROnPlateau

    return isinstance(scheduler, (torch.optim.lr_scheduler.ReduceLROnPlateau, ReduceLROnPlateau))


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader: Iterable[tuple[Tensor, Tensor]],
    test_loader: Iterable[tuple[Tensor, Tensor]] | None = None,
    *,
    epochs: int = 1,
    device: str | torch.device | None = None,
    seed: int | None = None,
    criterion: Callable[[Tensor, Tensor], Tensor] | None = None,
    scheduler: Any = None,
    scheduler_step: str = "epoch",
    progress: bool = True,
    max_steps: int | None = None,
    clip_grad_norm: float | None = None,
    stop_on_nonfinite: bool = True,
    allow_ignore_index: bool = False,
) -> History:
    """Train ``model`` with ``optimizer`` for ``epochs`` passes over ``train_loader``.

    Each step calls ``optimizer.step(closure)``, where the closure runs ``zero_grad``, the
    forward pass, the loss and ``backward`` (and gradient clipping when ``clip_grad_norm`` is
    set) and returns the loss. An optimizer that evaluates the loss several times per step
    (``LBFGS``) gets what it needs; the others call the closure once. An optimizer whose ``step``
    ignores the closure would update with stale gradients, so that raises a ``ValueError``.

    Args:
        model: moved to ``device`` first (in place, so the optimizer keeps its parameters).
        optimizer: any ``torch.optim.Optimizer`` over ``model``'s parameters.
        train_loader, test_loader: iterables of ``(inputs, labels)`` batches, e.g.
            :class:`optim_lessons.data.TensorLoader` or ``torch.utils.data.DataLoader``.
        epochs: passes over the training data.
        device: where to compute; ``None`` keeps the model where it is.
        seed: when given, seeds torch's global generator and rewinds a loader that has a
            ``manual_seed`` method, so the batch order is the same from run to run.
            The model's initial weights are fixed *before* this call (``set_seed`` then build).
        criterion: the loss, ``nn.CrossEntropyLoss()`` by default.
        scheduler: a learning-rate scheduler, stepped once per epoch or once per batch
            (``scheduler_step``); ``ReduceLROnPlateau`` (torch's or the book's) receives the
            loss on ``test_loader`` after each epoch (the training loss when there is none), so
            give it a validation loader there: a schedule tuned on the test set makes the test
            accuracy an optimistic guess.
        progress: show a ``tqdm`` progress bar.
        max_steps: stop after this many optimizer steps in total (the last epoch is then
            partial, and is still evaluated).
        clip_grad_norm: if set, rescale the gradients so their global norm is at most this.
        stop_on_nonfinite: stop with :class:`NonFiniteLossError`, naming the step and the
            batch, when a step's loss is NaN or infinite. On the CPU the check runs before
            ``backward``, so the weights stay those of the last good step; on a GPU it runs at
            the end of the epoch, where the loop waits for the device anyway, so that no step
            waits for it. ``False`` carries on regardless, as a plain torch loop does.
        allow_ignore_index: class labels must lie in ``0..C-1`` (``C`` scores per sample), or
            a ``ValueError`` names the batch. ``True`` also lets through the criterion's
            ``ignore_index`` (-100 for ``CrossEntropyLoss``), whose samples the loss skips.

    The optimizer must hold at least one of the model's parameters; one built over another
    model (or over a copy of this one) would train nothing, and is refused with a
    ``ValueError``. None of these checks changes a number that a run computes.

    Returns:
        A :class:`History`.
    """
    from tqdm.auto import tqdm

    if scheduler_step not in SCHEDULER_STEPS:
        raise ValueError(f"scheduler_step must be one of {SCHEDULER_STEPS}, got {scheduler_step!r}")
    check_train_arguments(
        model, optimizer, train_loader, test_loader, epochs, max_steps, clip_grad_norm
    )

    criterion = nn.CrossEntropyLoss() if criterion is None else criterion
    if device is None:
        device = _model_device(model)
    else:
        device = torch.device(device)
        model.to(device)
    if seed is not None:
        torch.manual_seed(seed)
        for loader in (train_loader, test_loader):
            if hasattr(loader, "manual_seed"):
                loader.manual_seed(seed)

    history = History()
    batches_per_epoch = loader_length(train_loader)
    total = None if batches_per_epoch is None else epochs * batches_per_epoch
    if max_steps is not None:
        total = max_steps if total is None else min(total, max_steps)
    bar = tqdm(total=total, disable=not progress, desc="training", unit="step", leave=True)
    run = _EpochRunner(model, optimizer, criterion, device, clip_grad_norm, bar)
    run.label_check = LabelCheck(criterion, allow_ignore_index, train_loader)
    run.stop_on_nonfinite = stop_on_nonfinite
    if scheduler is not None and scheduler_step == "batch":
        run.after_step = scheduler.step

    try:
        with _thread_limit(device):
            for epoch in range(epochs):
                steps_left = None if max_steps is None else max_steps - history.steps
                run.epoch(train_loader, epoch, history, steps_left)
                metric = history.train_loss[-1]
                if test_loader is not None:
                    result = evaluate(
                        model,
                        test_loader,
                        device=device,
                        criterion=criterion,
                        allow_ignore_index=allow_ignore_index,
                    )
                    history.test_loss.append(result.loss)
                    history.test_accuracy.append(result.accuracy)
                    metric = result.loss
                    bar.set_postfix(loss=f"{metric:.4f}", test_acc=f"{result.accuracy:.4f}")
                else:
                    bar.set_postfix(loss=f"{metric:.4f}")
                if scheduler is not None and scheduler_step == "epoch":
                    if _scheduler_metric_needed(scheduler):
                        scheduler.step(metric)
                    else:
                        scheduler.step()
                if max_steps is not None and history.steps >= max_steps:
                    break
    finally:
        bar.close()
    return history


class _EpochRunner:
    """One pass over the training loader: the loop body of :func:`train`."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion: Callable[[Tensor, Tensor], Tensor],
        device: torch.device,
        clip_grad_norm: float | None,
        bar: Any,
    ) -> None:
        self.model, self.optimizer, self.criterion = model, optimizer, criterion
        self.device, self.clip_grad_norm, self.bar = device, clip_grad_norm, bar
        self.parameters = [p for group in optimizer.param_groups for p in group["params"]]
        self.after_step: Callable[[], Any] | None = None
        self.label_check: LabelCheck | None = None
        self.stop_on_nonfinite = True

    def _loss_check(
        self, step: int, epoch: int, batch: int, where: str, history: History
    ) -> Callable[[Tensor], None]:
        def check(loss: Tensor) -> None:
            value = loss.item() if loss.numel() == 1 else float(loss.detach().sum())
            if math.isfinite(value):
                return
            weights = "the weights were left as they were before this step"
            raise NonFiniteLossError(
                _nonfinite_message(value, step, where, weights),
                step=step,
                epoch=epoch,
                batch=batch,
                history=history,
            )

        return check

    def epoch(
        self,
        loader: Iterable[tuple[Tensor, Tensor]],
        epoch: int,
        history: History,
        steps_left: int | None,
    ) -> None:
        self.model.train()
        device = self.device
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        samples = 0
        step_losses: list[Tensor] = []
        started = time.perf_counter()
        label_check = self.label_check
        # On the CPU the loss is looked at step by step; elsewhere, at the end of the epoch.
        check_each_loss = self.stop_on_nonfinite and device.type == "cpu"
        for batch_index, (inputs, given_labels) in enumerate(loader):
            inputs = inputs.to(device, non_blocking=True)
            labels = given_labels.to(device, non_blocking=True)
            where = f"batch {batch_index} of epoch {epoch + 1}"
            step = history.steps + len(step_losses) + 1
            closure = BatchClosure(
                self.model, self.optimizer, self.criterion, inputs, labels,
                self.clip_grad_norm, self.parameters, where,
                check_first=None if label_check is None else (
                    lambda outputs, where, given=given_labels: label_check(outputs, given, where)
                ),
                check_loss=(
                    self._loss_check(step, epoch + 1, batch_index, where, history)
                    if check_each_loss else None
                ),
            )  # fmt: skip
            history.lr.append(float(self.optimizer.param_groups[0]["lr"]))
            self.optimizer.step(closure)
            if closure.calls == 0:
                raise ValueError(
                    f"{type(self.optimizer).__name__}.step(closure) never called the closure, "
                    "so it updated with stale gradients. An optimizer's step must evaluate "
                    "`loss = closure()` (under torch.enable_grad()) when a closure is given."
                )
            if self.after_step is not None:
                self.after_step()
            batch = labels.shape[0]
            step_losses.append(closure.first_loss)
            loss_sum += sum_loss(self.criterion, closure.first_loss, batch)
            correct += (closure.first_outputs.argmax(dim=1) == labels).sum()
            samples += batch
            self.bar.update(1)
            if steps_left is not None and len(step_losses) >= steps_left:
                break
        if samples == 0:
            raise empty_loader_error("train_loader")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        history.epoch_seconds.append(time.perf_counter() - started)
        losses = torch.stack(step_losses).float().cpu().tolist()
        if self.stop_on_nonfinite and device.type != "cpu":
            self._stop_at_first_nonfinite(losses, epoch, history)
        history.loss.extend(losses)
        history.train_loss.append(float(loss_sum) / samples)
        history.train_accuracy.append(int(correct) / samples)

    def _stop_at_first_nonfinite(self, losses: list[float], epoch: int, history: History) -> None:
        """The check of a GPU run: the epoch's losses, which the loop has just copied anyway."""
        for index, value in enumerate(losses):
            if not math.isfinite(value):
                step = history.steps + index + 1
                where = f"batch {index} of epoch {epoch + 1}"
                weights = (
                    "on a GPU the loss is looked at when the epoch ends, so the steps up to the "
                    "end of this epoch have been taken with it"
                )
                raise NonFiniteLossError(
                    _nonfinite_message(value, step, where, weights),
                    step=step,
                    epoch=epoch + 1,
                    batch=index,
                    history=history,
                )
