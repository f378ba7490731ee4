r"""update_bn: re-estimate BatchNorm's running statistics for averaged weights.

BatchNorm normalizes with running estimates of each channel's mean and variance, measured while
training on the weights of that moment. Averaged weights (SWA, EMA) produce different
activations, so those estimates no longer fit them. ``update_bn`` resets every BatchNorm layer's
statistics and makes one pass over the data with ``momentum=None``, which turns the running
average into the plain cumulative mean over the pass:

$$
\hat\mu = \frac1B \sum_{b=1}^{B} \mu_b, \qquad \hat\sigma^2 = \frac1B \sum_{b=1}^{B} \sigma_b^2
$$

over the $B$ batches of the loader (Izmailov et al. 2018, section 3.2). The model is left in the
train/eval mode it was in, and each layer gets its momentum back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.nn import Module
from torch.nn.modules.batchnorm import _BatchNorm  # the base of every BatchNorm variant

__all__ = ["update_bn"]


@torch.no_grad()
def update_bn(
    loader: Iterable[Any],
    model: Module,
    device: int | torch.device | None = None,
) -> None:
    """torch.optim.swa_utils.update_bn: one pass over ``loader`` to recompute the statistics.

    A batch is a tensor, or a list or tuple whose first item is the input.
    """
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return  # no BatchNorm: nothing to estimate, and no pass over the data

    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None  # a cumulative mean over the pass, not an exponential one
    for batch in loader:
        inputs = batch[0] if isinstance(batch, list | tuple) else batch
        if device is not None:
            inputs = inputs.to(device)
        model(inputs)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)
