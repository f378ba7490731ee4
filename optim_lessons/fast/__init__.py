"""Fast paths for the book's optimizers, each written from scratch beside the readable class.

- :mod:`~optim_lessons.fast.flat`: a param group's parameters, gradients and states in flat
  buffers, one vectorized update per group (``FlatSGD``, ``FlatAdam``, ``FlatAdamW``,
  ``FlatAdagrad``).
- :mod:`~optim_lessons.fast.compiled`: the same flat buffers, updated by the pure update
  function compiled with ``torch.compile`` (one fused loop or kernel per group).
- :mod:`~optim_lessons.fast.triton_adam`: an Adam kernel written in Triton, for CUDA (and for
  Triton's interpreter on a CPU, in the tests).

Each keeps the readable class's arguments, state keys and ``state_dict``, and is checked for
parity with it and with torch.optim in ``tests/test_fast_*.py``. The limit they race against is
in :mod:`optim_lessons.benchmarks.roofline`.
"""

from optim_lessons.fast.flat import FlatAdagrad, FlatAdam, FlatAdamW, FlatSGD

__all__ = ["FlatAdagrad", "FlatAdam", "FlatAdamW", "FlatSGD"]
