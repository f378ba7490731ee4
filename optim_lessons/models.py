"""The model every chapter trains: a 784-64-10 multilayer perceptron.

It is deliberately small. Its 50,890 parameters train in well under a second per epoch of
Fashion-MNIST on a laptop CPU, so a chapter can race ten optimizers in the time it takes to
read a paragraph, and yet the loss surface is real: non-convex, noisy, high-dimensional.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

INPUT_FEATURES = 784  # one 28 x 28 grey image, flattened
HIDDEN_FEATURES = 64
CLASSES = 10


class Net(nn.Module):
    """Flatten, ``Linear(784, 64)``, ReLU, ``Linear(64, 10)``: one score (logit) per class.

    Accepts a batch ``[N, 1, 28, 28]``, ``[N, 28, 28]`` or ``[N, 784]``, or one image ``[784]``
    or ``[28, 28]``. The scores are raw logits: ``nn.CrossEntropyLoss`` applies the softmax.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(INPUT_FEATURES, HIDDEN_FEATURES)
        self.fc2 = nn.Linear(HIDDEN_FEATURES, CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x)
        x = x.view(-1, INPUT_FEATURES)  # flatten each image into a row of 784 pixels
        x = torch.relu(self.fc1(x))
        x = self.fc2(x)
        return x


def check_input(x: Tensor) -> None:
    """Raise a ``ValueError`` that says what is wrong when ``x`` is not a batch of 784-pixel images.

    ``x.view(-1, 784)`` alone would accept a ``[2, 392]`` tensor and silently glue two half rows
    into one image; this check refuses it.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"Net expects a torch.Tensor of images, got {type(x).__name__}")
    shape = tuple(x.shape)
    expected = f"a batch of shape [N, 1, 28, 28], [N, 28, 28] or [N, {INPUT_FEATURES}]"
    if not (x.is_floating_point()):
        raise ValueError(
            f"Net expects floating-point pixels, got dtype {x.dtype} (shape {shape}); "
            "convert with .float() and normalize, as optim_lessons.data.load_tensors does"
        )
    per_sample = math.prod(shape[1:]) if x.dim() >= 2 else None
    single_image = shape in ((INPUT_FEATURES,), (28, 28))
    if single_image or per_sample == INPUT_FEATURES:
        if not x.is_contiguous():
            raise ValueError(
                f"Net flattens its input with .view(), which needs a contiguous tensor; got a "
                f"non-contiguous tensor of shape {shape}: pass x.contiguous()"
            )
        return
    if per_sample is None:
        detail = f"a 1-D tensor of {x.numel()} values"
    else:
        detail = f"{shape[0]} samples of {per_sample} values each"
    raise ValueError(
        f"Net expects {INPUT_FEATURES} input features per sample ({expected}); got a tensor of "
        f"shape {shape}, that is {detail}"
    )
