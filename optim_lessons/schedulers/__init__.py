"""Every learning-rate scheduler of torch.optim.lr_scheduler, written from scratch under
torch's own names, plus SWALR (torch.optim.swa_utils) and warmup-stable-decay.

>>> import torch
>>> from optim_lessons.schedulers import OneCycleLR
>>> optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
>>> scheduler = OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
>>> round(scheduler.get_last_lr()[0], 6)
0.004

They drive torch's optimizers and this library's alike, hand their ``state_dict`` to torch's
classes and back, and combine with torch's schedulers in ``SequentialLR`` and
``ChainedScheduler`` (either side's).
"""

from optim_lessons.schedulers.base import LRScheduler
from optim_lessons.schedulers.combined import ChainedScheduler, SequentialLR
from optim_lessons.schedulers.cosine import CosineAnnealingLR, CosineAnnealingWarmRestarts
from optim_lessons.schedulers.cyclic_lr import CyclicLR
from optim_lessons.schedulers.lambda_lr import LambdaLR, MultiplicativeLR
from optim_lessons.schedulers.linear_lr import ConstantLR, LinearLR
from optim_lessons.schedulers.one_cycle_lr import OneCycleLR
from optim_lessons.schedulers.plateau import ReduceLROnPlateau
from optim_lessons.schedulers.polynomial_lr import PolynomialLR
from optim_lessons.schedulers.step_lr import ExponentialLR, MultiStepLR, StepLR
from optim_lessons.schedulers.swalr import SWALR
from optim_lessons.schedulers.wsd import WarmupStableDecayLR

#: The public scheduler classes of torch.optim.lr_scheduler, each rebuilt here under its name.
TORCH_NAMES = (
    "LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR",
    "LinearLR", "ExponentialLR", "SequentialLR", "PolynomialLR", "CosineAnnealingLR",
    "ChainedScheduler", "ReduceLROnPlateau", "CyclicLR", "OneCycleLR",
    "CosineAnnealingWarmRestarts",
)

__all__ = [
    "LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR",
    "LinearLR", "ExponentialLR", "SequentialLR", "PolynomialLR", "CosineAnnealingLR",
    "ChainedScheduler", "ReduceLROnPlateau", "CyclicLR", "OneCycleLR",
    "CosineAnnealingWarmRestarts", "SWALR", "WarmupStableDecayLR", "TORCH_NAMES",
]
