r"""Self-checks for the chapter "Making step() fast".

- :func:`check_minimal_bytes`: the bytes per parameter that one element-wise step must move,
  read from an optimizer's state (the rule of :mod:`optim_lessons.benchmarks.roofline`).
- :func:`check_flat_sgd_step`: SGD with momentum written on flat buffers, against
  ``torch.optim.SGD`` on parameters that are views into them.
- :func:`check_tokens_for_share` and :func:`optimizer_share`: how many tokens a training step
  must process before a fused AdamW step is a given share of it.

Each check raises an ``AssertionError`` that says what is wrong, or prints what it verified;
the reader's cells call them through :func:`optim_lessons.exercises.attempt`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "check_flat_sgd_step",
    "check_minimal_bytes",
    "check_tokens_for_share",
    "optimizer_share",
]


def _reference_bytes(optimizer: torch.optim.Optimizer) -> float:
    """Read param, grad and every parameter-sized state; write param and every such state."""
    total, n_params = 0, 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            states = [
                s for s in optimizer.state[p].values() if isinstance(s, Tensor) and s.dim() > 0
            ]
            tensors = 2 + len(states) + 1 + len(states)
            total += tensors * p.numel() * p.element_size()
            n_params += p.numel()
    return total / n_params


#: The optimizers the byte count is checked on: (label, class, keyword arguments).
BYTE_CASES = [
    ("SGD, momentum 0.9", torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    ("SGD, no momentum", torch.optim.SGD, {"lr": 0.1}),
    ("Adam", torch.optim.Adam, {}),
    ("Adam, amsgrad", torch.optim.Adam, {"amsgrad": True}),
    ("RMSprop, centered, momentum", torch.optim.RMSprop, {"centered": True, "momentum": 0.9}),
    ("Adagrad", torch.optim.Adagrad, {}),
]


def check_minimal_bytes(minimal_bytes: Callable[[torch.optim.Optimizer], float]) -> None:
    """``minimal_bytes(optimizer)`` must return the bytes per parameter one step of the
    (already stepped) ``optimizer`` reads and writes at least, in float32 and in float64."""
    for dtype in (torch.float32, torch.float64):
        for label, cls, kwargs in BYTE_CASES:
            generator = torch.Generator().manual_seed(0)
            params = [torch.randn(6, 5, generator=generator, dtype=dtype).requires_grad_()]
            params.append(torch.randn(5, generator=generator, dtype=dtype).requires_grad_())
            optimizer = cls(params, **kwargs)
            for p in params:
                p.grad = torch.ones_like(p)
            optimizer.step()
            expected = _reference_bytes(optimizer)
            answer = minimal_bytes(optimizer)
            assert isinstance(answer, (int, float)) and math.isclose(answer, expected), (
                f"{label} in {dtype}: you said {answer!r}, it is {expected:g}"
            )
    print(f"Right: the bytes of all {len(BYTE_CASES)} optimizers, in float32 and float64")


def check_flat_sgd_step(
    flat_sgd_step: Callable[[Tensor, Tensor, Tensor, float, float], None], steps: int = 10
) -> None:
    """``flat_sgd_step(param, grad, momentum_buffer, lr, momentum)`` must update the flat
    buffers in place as ``torch.optim.SGD(lr=lr, momentum=momentum)`` updates the parameters
    that are views into them (after the first step, which sets the buffer to the gradient)."""
    generator = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    sizes = [math.prod(shape) for shape in shapes]
    flat_param = torch.randn(sum(sizes), generator=generator)
    reference = [t.clone().view(shape) for t, shape in zip(flat_param.split(sizes), shapes)]
    reference = [p.requires_grad_() for p in reference]
    optimizer = torch.optim.SGD(reference, lr=0.1, momentum=0.9, foreach=False)
    flat_buffer = torch.zeros_like(flat_param)
    for step in range(steps):
        flat_grad = torch.randn(sum(sizes), generator=generator)
        for p, g in zip(reference, flat_grad.split(sizes), strict=True):
            p.grad = g.view(p.shape).clone()
        optimizer.step()
        if step == 0:
            flat_buffer.copy_(flat_grad)  # the first step: b_1 = g_1
            flat_param.sub_(0.1 * flat_grad)
        else:
            returned = flat_sgd_step(flat_param, flat_grad, flat_buffer, 0.1, 0.9)
            assert returned is None, "update the buffers in place and return None"
        expected = torch.cat([p.detach().flatten() for p in reference])
        gap = (flat_param - expected).abs().max().item()
        assert gap <= 1e-6, f"after step {step + 1} the parameters differ by {gap:.2g}"
    print(f"Right: {steps} steps match torch.optim.SGD (largest difference {gap:.1g})")


def optimizer_share(
    tokens: float, flops_per_second: float, bandwidth: float, bytes_per_param: float
) -> float:
    r"""The optimizer's share of a training step: its time over forward plus backward.

    A step over ``tokens`` tokens costs $6NT$ FLOPs for forward and backward (two for the
    forward pass, four for the backward, per parameter and token), and the optimizer moves
    $B$ bytes per parameter: $(NB/\text{bandwidth}) / (6NT/\text{FLOP/s})$. The parameter
    count $N$ cancels out.
    """
    return (bytes_per_param / bandwidth) / (6 * tokens / flops_per_second)


def check_tokens_for_share(
    tokens: float,
    share: float = 0.01,
    flops_per_second: float = 0.4 * 989e12,
    bandwidth: float = 3.35e12,
    bytes_per_param: float = 28.0,
) -> None:
    """``tokens``: the tokens per step (per GPU) at which the optimizer's share of the step is
    ``share``; within 1%."""
    expected = bytes_per_param * flops_per_second / (6 * share * bandwidth)
    assert isinstance(tokens, (int, float)) and tokens > 0, f"{tokens!r} is not a token count"
    got = optimizer_share(tokens, flops_per_second, bandwidth, bytes_per_param)
    assert math.isclose(tokens, expected, rel_tol=0.01), (
        f"{tokens:,.0f} tokens give the optimizer a share of {got:.3g}, not {share:g}"
    )
    print(
        f"Right: about {expected:,.0f} tokens per step; with fewer, the optimizer costs more "
        f"than {share:.0%} of the step"
    )
