"""Run a from-scratch optimizer and its torch.optim twin side by side, and measure the gap.

The chapters call :func:`compare_trajectories` in a visible cell (it prints the largest
difference) and the tests call the same functions with tolerances, so the book and the test
suite check one and the same claim.

Every run uses a closure for every step: all optimizers accept one and LBFGS needs one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

#: The tolerances the project promises, by dtype: (rtol, atol). The small atol only matters for
#: entries that sit at or pass through zero, where a relative tolerance means nothing.
TOLERANCES = {torch.float64: (1e-6, 1e-9), torch.float32: (1e-4, 1e-6)}

#: The shapes of the problems :func:`make_problem` can build.
PROBLEM_KINDS = ("dense", "complex", "sparse", "matrix")


@dataclass
class Problem:
    """A small, smooth, non-convex loss over a few parameters, fully determined by a seed."""

    params: list[Tensor]
    loss_fn: Callable[[list[Tensor]], Tensor]
    #: A model that owns parameters, for problems whose gradient must come out sparse.
    module: torch.nn.Module | None = None

    def clone_params(self) -> list[Tensor]:
        """Independent leaf copies of the starting point, one per optimizer that will run."""
        return [p.detach().clone().requires_grad_(True) for p in self.params]


def make_problem(
    kind: str = "dense",
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> Problem:
    """Build one of the test problems.

    - ``dense``: a two-layer tanh regression; a weight matrix, a bias vector and a scalar gain,
      so that 2-D, 1-D and 0-D parameters are all exercised.
    - ``complex``: a complex weight and a complex bias fitting a complex linear map.
    - ``sparse``: an embedding table whose lookups give sparse gradients (for SparseAdam, and
      SGD/Adagrad with sparse gradients).
    - ``matrix``: 2-D parameters only (Muon accepts nothing else).
    """
    if kind not in PROBLEM_KINDS:
        raise ValueError(f"Unknown problem kind {kind!r}; choose one of {PROBLEM_KINDS}")
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int, complex_: bool = False) -> Tensor:
        real_dtype = dtype
        values = torch.randn(*shape, generator=generator, dtype=real_dtype)
        if complex_:
            values = torch.complex(
                values, torch.randn(*shape, generator=generator, dtype=real_dtype)
            )
        return values.to(device)

    if kind == "dense":
        inputs, targets = randn(16, 6), randn(16, 3)
        params = [
            randn(5, 6) * 0.5,
            randn(5) * 0.1,
            randn(3, 5) * 0.5,
            torch.tensor(1.0, dtype=dtype, device=device),
        ]

        def loss_fn(ps: list[Tensor]) -> Tensor:
            w1, b1, w2, gain = ps
            hidden = torch.tanh(inputs @ w1.T + b1)
            return ((gain * hidden @ w2.T - targets) ** 2).mean() + 0.01 * (w1**4).sum()

        return Problem([p.requires_grad_(True) for p in params], loss_fn)

    if kind == "complex":
        inputs, targets = randn(16, 4, complex_=True), randn(16, 3, complex_=True)
        params = [randn(3, 4, complex_=True) * 0.5, randn(3, complex_=True) * 0.1]

        def loss_fn(ps: list[Tensor]) -> Tensor:
            weight, bias = ps
            residual = inputs @ weight.T + bias - targets
            return (residual.abs() ** 2).mean() + 0.05 * (weight.abs() ** 4).sum()

        return Problem([p.requires_grad_(True) for p in params], loss_fn)

    if kind == "sparse":
        embedding = torch.nn.Embedding(20, 4, sparse=True).to(device=device, dtype=dtype)
        with torch.no_grad():
            embedding.weight.copy_(randn(20, 4))
        index = torch.randint(0, 20, (12,), generator=generator).to(device)
        targets = randn(12, 4)

        def loss_fn(ps: list[Tensor]) -> Tensor:
            rows = torch.nn.functional.embedding(index, ps[0], sparse=True)
            return ((torch.tanh(rows) - targets) ** 2).mean()

        return Problem([embedding.weight.detach().clone().requires_grad_(True)], loss_fn, embedding)

    inputs, targets = randn(16, 6), randn(16, 3)
    params = [randn(8, 6) * 0.5, randn(3, 8) * 0.5]

    def loss_fn(ps: list[Tensor]) -> Tensor:
        w1, w2 = ps
        return ((torch.tanh(inputs @ w1.T) @ w2.T - targets) ** 2).mean()

    return Problem([p.requires_grad_(True) for p in params], loss_fn)


def upside_down(problem: Problem) -> Problem:
    """The same problem with its loss negated, for runs with ``maximize=True``.

    Climbing the negated loss walks the same bounded landscape that descending the loss does,
    whereas climbing the loss itself runs off to infinity within a few steps on these problems.
    """
    loss_fn = problem.loss_fn
    return Problem(problem.params, lambda ps: -loss_fn(ps), problem.module)


def _closure_for(
    optimizer: torch.optim.Optimizer, params: list[Tensor], loss_fn: Callable
) -> Callable:
    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = loss_fn(params)
        loss.backward()
        return loss

    return closure


def _group_params(params: list[Tensor], groups: list[dict[str, Any]] | None) -> Any:
    """Split the parameters into param groups: ``groups[i]`` gets one parameter in turn."""
    if not groups:
        return params
    buckets: list[dict[str, Any]] = [dict(g, params=[]) for g in groups]
    for index, p in enumerate(params):
        buckets[index % len(buckets)]["params"].append(p)
    return [b for b in buckets if b["params"]]


def _loss_value(loss: Tensor | float) -> float:
    """The closure's loss as a float, detached first (float() warns on a tensor that needs grad)."""
    return float(loss.detach()) if isinstance(loss, Tensor) else float(loss)


def _largest_gap(first: Tensor, second: Tensor) -> float:
    """The largest absolute difference between two parameters, where entries that are equal,
    including the same infinity, or both NaN count as no difference."""
    first, second = first.detach(), second.detach()
    same = (first == second) | (first.isnan() & second.isnan())
    gap = (first - second).abs().masked_fill(same, 0)
    return gap.max().item() if gap.numel() else 0.0


@dataclass
class ParityReport:
    """What a side-by-side run measured."""

    steps: int
    #: Largest absolute parameter difference after each step.
    max_abs_diff_per_step: list[float] = field(default_factory=list)
    #: The two optimizers after the run, for state comparisons.
    ours: torch.optim.Optimizer | None = None
    reference: torch.optim.Optimizer | None = None
    ours_params: list[Tensor] = field(default_factory=list)
    reference_params: list[Tensor] = field(default_factory=list)
    #: The losses each closure returned, step by step.
    ours_losses: list[float] = field(default_factory=list)
    reference_losses: list[float] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        """The largest of :attr:`max_abs_diff_per_step`; NaN if a step's gap was NaN (one run
        had a NaN where the other had a number)."""
        if any(math.isnan(gap) for gap in self.max_abs_diff_per_step):
            return math.nan
        return max(self.max_abs_diff_per_step, default=0.0)

    def __str__(self) -> str:
        return (
            f"{self.steps} steps, largest parameter difference from the reference: "
            f"{self.max_abs_diff:.3g}"
        )


def compare_trajectories(
    ours_cls: type[torch.optim.Optimizer],
    reference_cls: type[torch.optim.Optimizer],
    kwargs: dict[str, Any] | None = None,
    *,
    steps: int = 25,
    kind: str = "dense",
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    seed: int = 0,
    groups: list[dict[str, Any]] | None = None,
    problem: Problem | None = None,
    check: bool = False,
) -> ParityReport:
    """Run ``ours_cls`` and ``reference_cls`` from the same start on the same loss.

    ``kwargs`` go to both constructors; ``groups`` (optional) splits the parameters into param
    groups with per-group overrides. With ``check=True`` every step is asserted to agree within
    :data:`TOLERANCES` for the dtype, and the first disagreement raises ``AssertionError``
    naming the step.
    """
    kwargs = dict(kwargs or {})
    problem = problem or make_problem(kind, dtype, device, seed)
    ours_params, reference_params = problem.clone_params(), problem.clone_params()
    ours = ours_cls(_group_params(ours_params, copy.deepcopy(groups)), **copy.deepcopy(kwargs))
    reference = reference_cls(
        _group_params(reference_params, copy.deepcopy(groups)), **copy.deepcopy(kwargs)
    )
    report = ParityReport(
        steps,
        ours=ours,
        reference=reference,
        ours_params=ours_params,
        reference_params=reference_params,
    )
    rtol, atol = TOLERANCES.get(dtype, (1e-4, 1e-6))
    for step in range(1, steps + 1):
        ours_loss = ours.step(_closure_for(ours, ours_params, problem.loss_fn))
        reference_loss = reference.step(_closure_for(reference, reference_params, problem.loss_fn))
        report.ours_losses.append(_loss_value(ours_loss))
        report.reference_losses.append(_loss_value(reference_loss))
        diff = max(_largest_gap(a, b) for a, b in zip(ours_params, reference_params))
        report.max_abs_diff_per_step.append(diff)
        if check:
            for index, (a, b) in enumerate(zip(ours_params, reference_params)):
                a, b = a.detach(), b.detach()
                # Same test as assert_close (|a - b| <= atol + rtol |b|), about 30 times faster;
                # assert_close runs only to word the failure.
                # Two runs that diverge alike (the same NaN and inf entries) agree too.
                if (
                    a.shape == b.shape
                    and a.dtype == b.dtype
                    and torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
                ):
                    continue
                torch.testing.assert_close(
                    a,
                    b,
                    rtol=rtol,
                    atol=atol,
                    equal_nan=True,
                    msg=lambda m, s=step, i=index: f"step {s}, parameter {i}: {m}",
                )
    return report


def assert_same_state(
    ours: torch.optim.Optimizer, reference: torch.optim.Optimizer, dtype: torch.dtype | None = None
) -> None:
    """The two optimizers hold the same state: same keys, and per key the same shape, dtype,
    device and (within tolerance) values; and the same param-group hyperparameters."""
    ours_dict, reference_dict = ours.state_dict(), reference.state_dict()
    assert set(ours_dict["state"]) == set(reference_dict["state"]), (
        "different parameters carry state"
    )
    rtol, atol = TOLERANCES.get(dtype, (1e-4, 1e-6)) if dtype else (1e-4, 1e-6)
    for index, reference_state in reference_dict["state"].items():
        ours_state = ours_dict["state"][index]
        assert set(ours_state) == set(reference_state), (
            f"parameter {index}: state keys {sorted(ours_state)} "
            f"!= torch's {sorted(reference_state)}"
        )
        for key, expected in reference_state.items():
            actual = ours_state[key]
            if isinstance(expected, Tensor):
                assert isinstance(actual, Tensor), f"state[{index}][{key!r}] should be a tensor"
                for attribute in ("shape", "dtype", "device", "layout"):
                    assert getattr(actual, attribute) == getattr(expected, attribute), (
                        f"state[{index}][{key!r}].{attribute}: {getattr(actual, attribute)} "
                        f"!= torch's {getattr(expected, attribute)}"
                    )
                if expected.is_sparse:
                    actual, expected = actual.to_dense(), expected.to_dense()
                torch.testing.assert_close(
                    actual,
                    expected,
                    rtol=rtol,
                    atol=atol,
                    msg=lambda m, i=index, k=key: f"state[{i}][{k!r}]: {m}",
                )
            elif (
                isinstance(expected, (list, tuple)) and expected and isinstance(expected[0], Tensor)
            ):
                assert len(actual) == len(expected), (
                    f"state[{index}][{key!r}] has a different length"
                )
                for a, e in zip(actual, expected):
                    torch.testing.assert_close(a, e, rtol=rtol, atol=atol)
            else:
                assert type(actual) is type(expected), (
                    f"state[{index}][{key!r}]: {type(actual)} != {type(expected)}"
                )
                if isinstance(expected, float):
                    assert abs(actual - expected) <= atol + rtol * abs(expected), (
                        f"state[{index}][{key!r}]"
                    )
                else:
                    assert actual == expected, (
                        f"state[{index}][{key!r}]: {actual!r} != {expected!r}"
                    )
    ours_groups = [{k: v for k, v in g.items() if k != "params"} for g in ours_dict["param_groups"]]
    reference_groups = [
        {k: v for k, v in g.items() if k != "params"} for g in reference_dict["param_groups"]
    ]
    for ours_group, reference_group in zip(ours_groups, reference_groups):
        for key in ours_group:
            if key in reference_group and not isinstance(reference_group[key], Tensor):
                assert ours_group[key] == reference_group[key], (
                    f"param group {key!r}: {ours_group[key]!r} != {reference_group[key]!r}"
                )


def handover_trajectory(
    first_cls: type[torch.optim.Optimizer],
    second_cls: type[torch.optim.Optimizer],
    kwargs: dict[str, Any] | None = None,
    *,
    steps_before: int = 10,
    steps_after: int = 15,
    kind: str = "dense",
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> tuple[list[Tensor], list[Tensor]]:
    """Train with ``first_cls``, hand its ``state_dict`` to a fresh ``second_cls`` mid-run, and
    continue; also train with ``second_cls`` alone for the same number of steps.

    Returns the final parameters of (handed-over run, uninterrupted run); they should agree.
    """
    kwargs = dict(kwargs or {})
    problem = make_problem(kind, dtype, device, seed)

    params = problem.clone_params()
    first = first_cls(params, **copy.deepcopy(kwargs))
    for _ in range(steps_before):
        first.step(_closure_for(first, params, problem.loss_fn))
    second = second_cls(params, **copy.deepcopy(kwargs))
    second.load_state_dict(copy.deepcopy(first.state_dict()))
    for _ in range(steps_after):
        second.step(_closure_for(second, params, problem.loss_fn))

    straight_params = problem.clone_params()
    straight = second_cls(straight_params, **copy.deepcopy(kwargs))
    for _ in range(steps_before + steps_after):
        straight.step(_closure_for(straight, straight_params, problem.loss_fn))
    return [p.detach() for p in params], [p.detach() for p in straight_params]
