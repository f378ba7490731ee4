"""Weight averaging, torch.optim.swa_utils written from scratch under torch's names.

``AveragedModel`` keeps a running average of a model's weights (SWA, or EMA through
``get_ema_multi_avg_fn``), ``update_bn`` re-estimates BatchNorm statistics for the averaged
weights, and ``SWALR`` (a scheduler, so it lives in ``optim_lessons.schedulers``) takes the rate
to the constant SWA rate. Schedule-Free's averaging is part of its optimizer:
``optim_lessons.optimizers.schedule_free``.
"""

from optim_lessons.averaging.averaged_model import (
    AveragedModel,
    get_ema_avg_fn,
    get_ema_multi_avg_fn,
    get_swa_avg_fn,
    get_swa_multi_avg_fn,
)
from optim_lessons.averaging.batch_norm import update_bn
from optim_lessons.schedulers.swalr import SWALR

__all__ = [
    "AveragedModel",
    "update_bn",
    "SWALR",
    "get_ema_multi_avg_fn",
    "get_swa_multi_avg_fn",
    "get_ema_avg_fn",
    "get_swa_avg_fn",
]
