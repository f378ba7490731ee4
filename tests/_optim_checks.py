"""Checks that the per-optimizer parity tests share (pytest puts this folder on sys.path).

Each one compares a from-scratch optimizer with its reference implementation on the same
input, so that a test reads as the claim it checks: same error, same state after a handover,
same trajectory under a learning-rate scheduler.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import re
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import torch

from optim_lessons.parity import (
    TOLERANCES,
    ParityReport,
    Problem,
    assert_same_state,
    compare_trajectories,
    handover_trajectory,
    make_problem,
    upside_down,
)

#: float64 and float32, the two dtypes every parity claim is checked in.
DTYPES = [pytest.param(torch.float64, id="float64"), pytest.param(torch.float32, id="float32")]


@pytest.fixture(autouse=True, scope="module")
def one_cpu_thread() -> Any:
    """Run a test module on one CPU thread.

    The test problems are tiny: threads gain nothing on them, and on a busy machine handing
    each small bfloat16 matmul to a thread pool costs a hundred times the arithmetic. Import
    this fixture into a test module to switch it on there.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def flag_product(**choices: Iterable[Any]) -> list[Any]:
    """Every combination of the given option values, as pytest params with readable ids."""
    names = list(choices)
    cases = []
    for values in itertools.product(*(list(choices[name]) for name in names)):
        kwargs = dict(zip(names, values, strict=True))
        case_id = ",".join(f"{name}={value}" for name, value in kwargs.items())
        cases.append(pytest.param(kwargs, id=case_id))
    return cases


#: The numeric hyperparameters of the Adam family, each at its default and at a far-off value.
BETAS_AND_EPS = flag_product(betas=[(0.9, 0.999), (0.5, 0.9)], eps=[1e-8, 1e-2])


#: The constructor errors that Adamax, NAdam and RAdam share, one bad value per row, with
#: torch's message word for word. A class that checks more (NAdam's momentum_decay) adds rows.
ADAM_FAMILY_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"lr": -1.0}, "Invalid learning rate: -1.0"),
    ({"lr": torch.tensor([0.1, 0.2])}, "Tensor lr must be 1-element"),
    ({"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
    ({"betas": (1.0, 0.0)}, "Invalid beta parameter at index 0: 1.0"),
    ({"betas": (0.0, 1.0)}, "Invalid beta parameter at index 1: 1.0"),
    ({"weight_decay": -1}, "Invalid weight_decay value: -1"),
]


def problem_for(
    kwargs: dict[str, Any], kind: str = "dense", dtype: torch.dtype = torch.float64
) -> Problem:
    """The test problem for these options: negated when ``maximize=True``, so that climbing it
    stays as bounded as descending the original does."""
    problem = make_problem(kind, dtype)
    return upside_down(problem) if kwargs.get("maximize") else problem


def side_by_side(
    ours_cls: type[torch.optim.Optimizer],
    reference_cls: type[torch.optim.Optimizer],
    kwargs: dict[str, Any],
    *,
    dtype: torch.dtype,
    kind: str = "dense",
    groups: list[dict[str, Any]] | None = None,
) -> ParityReport:
    """25 steps of ours and the reference from the same start, every step checked; with
    ``maximize=True`` both climb the negated loss (:func:`problem_for`)."""
    return compare_trajectories(
        ours_cls,
        reference_cls,
        kwargs,
        steps=25,
        problem=problem_for(kwargs, kind, dtype),
        dtype=dtype,
        groups=groups,
        check=True,
    )


def raised(action: Callable[[], Any]) -> tuple[type[BaseException], str]:
    """The type and message of the exception ``action`` raises (it must raise)."""
    with pytest.raises(Exception) as info:
        action()
    return type(info.value), str(info.value)


def assert_same_error(ours: Callable[[], Any], reference: Callable[[], Any]) -> str:
    """Both actions raise, with the same exception type and the same message word for word."""
    expected = raised(reference)
    actual = raised(ours)
    assert actual == expected, f"ours raised {actual}, the reference raised {expected}"
    return expected[1]


def assert_same_signature(
    ours_cls: type[torch.optim.Optimizer], reference_cls: type[torch.optim.Optimizer]
) -> None:
    """Same parameter names, kinds and defaults, in the same order (switches included)."""
    expected = [
        (p.name, p.kind, p.default) for p in inspect.signature(reference_cls).parameters.values()
    ]
    actual = [(p.name, p.kind, p.default) for p in inspect.signature(ours_cls).parameters.values()]
    assert actual == expected


def assert_state_like_reference(report: ParityReport, keys: list[str]) -> None:
    """Every parameter's state holds ``keys`` in that order, each tensor with the reference's
    shape, dtype and device."""
    pairs = zip(report.ours.state.values(), report.reference.state.values(), strict=True)
    for ours, reference in pairs:
        assert list(ours) == list(reference) == keys
        for key in keys:
            assert (ours[key].shape, ours[key].dtype, ours[key].device) == (
                reference[key].shape,
                reference[key].dtype,
                reference[key].device,
            )


def assert_rejects_like_reference(
    ours_cls: type[torch.optim.Optimizer],
    reference_cls: type[torch.optim.Optimizer],
    kwargs: dict[str, Any],
    message: str | None = None,
    error: type[Exception] = ValueError,
) -> None:
    """Building either class with ``kwargs`` raises the same error, word for word; with
    ``message``, ours raises ``error`` with that message too (so the table says what it is)."""
    params = [torch.zeros(2, requires_grad=True)]
    if message is not None:
        with pytest.raises(error, match=re.escape(message)):
            ours_cls(params, **kwargs)
    assert_same_error(lambda: ours_cls(params, **kwargs), lambda: reference_cls(params, **kwargs))


def step_with_sparse_gradient(cls: type[torch.optim.Optimizer]) -> None:
    """One step of ``cls`` (default options) on a parameter whose gradient is sparse."""
    param = torch.zeros(3, requires_grad=True)
    param.grad = torch.zeros(3).to_sparse()
    cls([param]).step()


def assert_sparse_gradients_rejected_like_reference(
    ours_cls: type[torch.optim.Optimizer], reference_cls: type[torch.optim.Optimizer]
) -> str:
    """A step on a sparse gradient fails alike in both; return the message."""
    return assert_same_error(
        lambda: step_with_sparse_gradient(ours_cls),
        lambda: step_with_sparse_gradient(reference_cls),
    )


def load_old_style_state_dict(
    report: ParityReport,
    missing: tuple[str, ...],
    numbers: dict[str, type] | None = None,
) -> None:
    """Load into both optimizers the reference's state_dict as an older release saved it: the
    group options ``missing`` absent, and the state entries ``numbers`` (``{"step": int}`` by
    default) as Python numbers; then both must hold the same state."""
    numbers = {"step": int} if numbers is None else numbers
    old_style = report.reference.state_dict()
    for group in old_style["param_groups"]:
        for key in missing:
            del group[key]
    for param_state in old_style["state"].values():
        for key, kind in numbers.items():
            param_state[key] = kind(param_state[key])
    for optimizer in (report.ours, report.reference):
        optimizer.load_state_dict(copy.deepcopy(old_style))
    assert_same_state(report.ours, report.reference)


def one_cycle(max_lr: float = 0.05, total_steps: int = 25) -> Callable[[Any], Any]:
    """A scheduler factory for :func:`compare_with_scheduler`: one-cycle over the whole run."""

    def make_scheduler(optimizer: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=total_steps
        )

    return make_scheduler


def step_lr(optimizer: torch.optim.Optimizer) -> Any:
    """A scheduler factory for :func:`compare_with_scheduler`: halve the rate every 5 steps."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)


#: A step schedule and a one-cycle schedule, for the optimizers checked under both.
STEP_AND_ONE_CYCLE = [
    pytest.param(step_lr, id="StepLR"),
    pytest.param(one_cycle(), id="OneCycleLR"),
]


def assert_handover_both_ways(
    ours_cls: type[torch.optim.Optimizer],
    reference_cls: type[torch.optim.Optimizer],
    kwargs: dict[str, Any],
    *,
    kind: str = "dense",
    dtype: torch.dtype = torch.float64,
) -> None:
    """A state_dict saved by either class, loaded into the other mid-run, continues on the
    trajectory that the loading class would have followed alone."""
    rtol, atol = TOLERANCES[dtype]
    for first, second in ((ours_cls, reference_cls), (reference_cls, ours_cls)):
        handed_over, straight = handover_trajectory(first, second, kwargs, kind=kind, dtype=dtype)
        for a, b in zip(handed_over, straight, strict=True):
            torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


def compare_with_scheduler(
    ours_cls: type[torch.optim.Optimizer],
    reference_cls: type[torch.optim.Optimizer],
    kwargs: dict[str, Any],
    make_scheduler: Callable[[torch.optim.Optimizer], Any],
    *,
    steps: int = 25,
    kind: str = "dense",
    dtype: torch.dtype = torch.float64,
) -> float:
    """Run both optimizers, each driven by its own copy of the same lr scheduler, and assert
    that every step agrees; return the largest parameter difference seen."""
    problem = problem_for(kwargs, kind, dtype)
    runs = []
    for cls in (ours_cls, reference_cls):
        params = problem.clone_params()
        optimizer = cls(params, **copy.deepcopy(kwargs))
        runs.append((params, optimizer, make_scheduler(optimizer)))
    rtol, atol = TOLERANCES[dtype]
    largest = 0.0
    for step in range(steps):
        for params, optimizer, scheduler in runs:

            def closure(
                params: list[torch.Tensor] = params, optimizer: Any = optimizer
            ) -> torch.Tensor:
                optimizer.zero_grad()
                loss = problem.loss_fn(params)
                loss.backward()
                return loss

            optimizer.step(closure)
            scheduler.step()
        (ours_params, ours, _), (reference_params, reference, _) = runs
        assert [g["lr"] for g in ours.param_groups] == [g["lr"] for g in reference.param_groups]
        for a, b in zip(ours_params, reference_params, strict=True):
            torch.testing.assert_close(
                a.detach(), b.detach(), rtol=rtol, atol=atol, msg=f"step {step + 1}"
            )
            largest = max(largest, (a - b).abs().max().item())
    return largest


# ----------------------------------------------------------------------------------- switches

#: torch.optim's implementation switches and the values each can take.
SWITCH_VALUES: dict[str, list[Any]] = {
    "foreach": [None, False, True],
    "fused": [None, False, True],
    "capturable": [False, True],
    "differentiable": [False, True],
}

#: The parameters a switch case runs on: dtypes, a tensor lr, sparse gradients, non-leaf params.
SWITCH_SETTINGS = ("float32", "float64", "complex64", "float16", "lr_tensor", "sparse", "nonleaf")


def switches_of(cls: type[torch.optim.Optimizer]) -> list[str]:
    """The implementation switches that ``cls.__init__`` takes, in the order of its signature."""
    names = inspect.signature(cls.__init__).parameters
    return [name for name in names if name in SWITCH_VALUES]


def switch_cases(cls: type[torch.optim.Optimizer]) -> list[tuple[str, dict[str, Any]]]:
    """Every (setting, switches) pair for a torch.optim class."""
    names = switches_of(cls)
    combos = itertools.product(*(SWITCH_VALUES[name] for name in names))
    return [
        (setting, dict(zip(names, values, strict=True)))
        for values in combos
        for setting in SWITCH_SETTINGS
    ]


def _switch_params(setting: str, matrices_only: bool) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    dtype = {"float64": torch.float64, "complex64": torch.complex64, "float16": torch.float16}
    shapes = [(3, 2)] if matrices_only else [(3, 2), (2,)]
    params = [
        torch.randn(*shape, generator=generator).to(dtype.get(setting, torch.float32))
        for shape in shapes
    ]
    if setting == "nonleaf":  # what differentiable=True is for: parameters inside a graph
        leaves = [p.requires_grad_(True) for p in params]
        return [leaf * 1.0 for leaf in leaves]
    return [p.requires_grad_(True) for p in params]


def run_switch_case(
    cls: type[torch.optim.Optimizer], setting: str, switches: dict[str, Any], steps: int = 2
) -> tuple[Any, ...]:
    """Build ``cls`` with ``switches`` on the setting's parameters and take ``steps`` steps.

    Returns ``("init", type, message)`` or ``("step", type, message)`` when that raised, else
    ``("ok", params after the steps, {state key: (dtype, device, shape)}, group keys)``.
    """
    params = _switch_params(setting, matrices_only=cls.__name__ == "Muon")
    kwargs = dict(switches)
    if setting == "lr_tensor":
        kwargs["lr"] = torch.tensor(0.01)
    try:
        optimizer = cls(params, **kwargs)
    except Exception as error:
        return ("init", type(error), str(error))
    try:
        for step in range(steps):
            for index, param in enumerate(params):
                grad = torch.full_like(param.detach(), 0.5) + 0.1 * (step + index)
                param.grad = grad.to_sparse() if setting == "sparse" else grad
            optimizer.step()
    except Exception as error:
        return ("step", type(error), str(error).split("\n")[0])
    state = {
        (index, key): (value.dtype, value.device, tuple(value.shape))
        for index, param in enumerate(params)
        for key, value in optimizer.state[param].items()
        if isinstance(value, torch.Tensor)
    }
    return ("ok", [p.detach().clone() for p in params], state, sorted(optimizer.param_groups[0]))


def assert_same_switch_outcome(ours: tuple[Any, ...], reference: tuple[Any, ...]) -> None:
    assert ours[0] == reference[0], f"ours: {ours[:3]}, torch: {reference[:3]}"
    if ours[0] != "ok":
        assert ours == reference
        return
    _, ours_params, ours_state, ours_keys = ours
    _, reference_params, reference_state, reference_keys = reference
    assert ours_keys == reference_keys
    assert ours_state == reference_state
    for a, b in zip(ours_params, reference_params, strict=True):
        tolerance = 2e-3 if a.dtype == torch.float16 else 1e-5
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance)
