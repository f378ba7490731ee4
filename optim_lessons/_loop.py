"""The parts of the training loop that :mod:`optim_lessons.training` puts together.

- :class:`BatchClosure`: the first four lines of the loop (``zero_grad``, forward, loss,
  ``backward``), packed for ``optimizer.step(closure)``;
- :func:`forward_and_loss`: the forward pass and the loss, with torch's shape errors turned
  into one plain sentence;
- the checks of what a caller passes in: labels inside ``0..C-1`` (:class:`LabelCheck`), an
  optimizer that holds the model's parameters, loaders that are not empty.

None of these checks changes a number that a run computes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn


def loader_length(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


class LabelCheck:
    """Refuses class labels outside ``0..C-1`` before the criterion sees them.

    ``CrossEntropyLoss`` and ``NLLLoss`` skip every sample whose label equals their
    ``ignore_index`` (-100 by default) without a word, and a label of ``C`` or more fails deep
    inside torch (on a GPU, as a device-side assert that stops the process). With
    ``allow_ignore_index=True`` the ignored value is let through, for data that marks samples
    to skip on purpose.

    A loader that holds all its labels as one tensor (``TensorLoader.labels``) is checked once,
    as a whole, at its first batch: a pass then costs one check, whatever the device. Other
    loaders' labels are checked batch by batch, which costs a few microseconds for labels on
    the CPU (a ``DataLoader``'s, before they move to the GPU) and a wait for the device for
    labels that arrive already on a GPU.
    """

    def __init__(self, criterion: Any, allow_ignore_index: bool, loader: Any = None) -> None:
        self.ignore_index = getattr(criterion, "ignore_index", -100)
        self.allow_ignore_index = allow_ignore_index
        self.loader = loader
        self.whole_loader_checked = False

    def __call__(self, outputs: Tensor, labels: Tensor, where: str) -> None:
        is_class_index = (
            not labels.is_floating_point()
            and not labels.is_complex()
            and labels.dtype != torch.bool
            and outputs.dim() >= 2
            and labels.dim() == outputs.dim() - 1
        )
        if not is_class_index or labels.numel() == 0:
            return  # probabilities, regression targets...: not class labels
        whole = getattr(self.loader, "labels", None)
        if isinstance(whole, Tensor) and whole.device == labels.device and whole.dim() == 1:
            if self.whole_loader_checked:
                return
            labels, where = whole, "the loader's labels (loader.labels)"
            self.whole_loader_checked = True
        classes = outputs.shape[1]
        low, high = (int(value) for value in torch.aminmax(labels))
        if 0 <= low and high < classes:
            return
        ignored = self.ignore_index
        if self.allow_ignore_index:
            valid = (labels == ignored) | ((labels >= 0) & (labels < classes))
            if bool(valid.all()):
                return
        outside = labels[(labels < 0) | (labels >= classes)]
        if self.allow_ignore_index:
            outside = outside[outside != ignored]
        found = sorted({int(value) for value in outside.unique()[:5]})
        message = (
            f"Labels outside 0..{classes - 1} in {where}: {found}. The model gives {classes} "
            f"scores per sample, so a label must be a class index from 0 to {classes - 1}."
        )
        if ignored in found and not self.allow_ignore_index:
            message += (
                f" {ignored} is the criterion's ignore_index: the loss would silently skip those "
                "samples. Pass allow_ignore_index=True if they are to be skipped on purpose."
            )
        raise ValueError(message)


def forward_and_loss(
    model: nn.Module,
    criterion: Callable[[Tensor, Tensor], Tensor],
    inputs: Tensor,
    labels: Tensor,
    where: str,
    check_labels: Callable[[Tensor, str], None] | None = None,
) -> tuple[Tensor, Tensor]:
    """Run the model and the criterion; turn torch's shape errors into one plain sentence."""
    try:
        outputs = model(inputs)
    except (ValueError, torch.OutOfMemoryError):
        raise  # our models already say what is wrong; out of memory is no shape error
    except RuntimeError as error:
        raise ValueError(
            f"The model cannot take the inputs of {where}: inputs of shape {tuple(inputs.shape)} "
            f"(dtype {inputs.dtype}). torch said: {error}"
        ) from error
    if check_labels is not None:
        check_labels(outputs, where)
    try:
        loss = criterion(outputs, labels)
    except (RuntimeError, ValueError, IndexError) as error:
        raise ValueError(
            f"The criterion cannot compare the model's outputs of shape {tuple(outputs.shape)} "
            f"with the labels of shape {tuple(labels.shape)} (dtype {labels.dtype}) in {where}. "
            f"torch said: {error}"
        ) from error
    return outputs, loss


def sum_loss(criterion: Any, loss: Tensor, batch: int) -> Tensor:
    # criteria average over the batch by default; weight by the batch size to average over samples
    return (
        loss.detach() if getattr(criterion, "reduction", "mean") == "sum" else loss.detach() * batch
    )


def empty_loader_error(name: str) -> ValueError:
    return ValueError(
        f"{name} yielded no batches: it is empty. Check the data set size (train_size/test_size) "
        "and that the loader is not an exhausted iterator."
    )


class BatchClosure:
    """The first four lines of the loop, packed for ``optimizer.step(closure)``.

    It remembers the outputs and loss of its *first* call: they were computed before the step
    moved the weights, like the loss the seed's loop prints. ``LBFGS`` calls it again during its
    line search; the later calls only serve the optimizer.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion: Callable[[Tensor, Tensor], Tensor],
        inputs: Tensor,
        labels: Tensor,
        clip_grad_norm: float | None,
        parameters: list[Tensor],
        where: str,
        check_first: Callable[[Tensor, str], None] | None = None,
        check_loss: Callable[[Tensor], None] | None = None,
    ) -> None:
        self.model, self.optimizer, self.criterion = model, optimizer, criterion
        self.inputs, self.labels = inputs, labels
        self.clip_grad_norm, self.parameters, self.where = clip_grad_norm, parameters, where
        # checks of the first call only: the labels, and the loss before backward
        self.check_first, self.check_loss = check_first, check_loss
        self.calls = 0
        self.first_outputs: Tensor | None = None
        self.first_loss: Tensor | None = None

    def __call__(self) -> Tensor:
        first = self.calls == 0
        self.optimizer.zero_grad()  # 1. forget the previous gradients
        outputs, loss = forward_and_loss(  # 2-3. forward pass and loss
            self.model,
            self.criterion,
            self.inputs,
            self.labels,
            self.where,
            self.check_first if first else None,
        )
        if first and self.check_loss is not None:
            self.check_loss(loss)  # before backward: a bad loss never reaches the weights
        loss.backward()  # 4. fill p.grad
        if self.clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.parameters, self.clip_grad_norm)
        if self.calls == 0:
            self.first_outputs, self.first_loss = outputs.detach(), loss.detach()
        self.calls += 1
        return loss


def check_optimizer_holds_the_model(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    model_parameters = {id(parameter) for parameter in model.parameters()}
    held = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    if model_parameters and not any(id(parameter) in model_parameters for parameter in held):
        raise ValueError(
            f"The optimizer holds none of the model's parameters ({len(held)} tensors, none of "
            f"them the model's {len(model_parameters)}), so training would never change the "
            "model. It was built over another model, or over a copy of this one: build it from "
            f"this model, e.g. {type(optimizer).__name__}(model.parameters(), ...)."
        )


def check_train_arguments(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader: Any,
    test_loader: Any,
    epochs: Any,
    max_steps: Any,
    clip_grad_norm: Any,
) -> None:
    """The checks of :func:`optim_lessons.training.train`'s arguments, before any step."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if max_steps is not None and (
        isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1
    ):
        raise ValueError(f"max_steps must be a positive integer or None, got {max_steps!r}")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(f"clip_grad_norm must be positive, got {clip_grad_norm!r}")
    if loader_length(train_loader) == 0:
        raise empty_loader_error("train_loader")
    if test_loader is not None and loader_length(test_loader) == 0:
        raise empty_loader_error("test_loader")
    check_optimizer_holds_the_model(model, optimizer)
