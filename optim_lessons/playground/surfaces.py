"""Two-dimensional test surfaces, and a runner that lets any optimizer walk on them.

A surface is a loss over a single point :math:`(x, y)`. It is small enough to draw as a contour
map, so you can *see* what an optimizer does: zig-zag across a ravine, stall at a saddle, pick
one of several minima. Every chapter uses the same surfaces, from the same starting points, so
the algorithms can be compared on equal terms.

>>> import torch
>>> from optim_lessons.playground.surfaces import SURFACES, run_on_surface
>>> bowl = SURFACES["bowl"]
>>> bowl(torch.tensor([0.0, 0.0])).item()
0.0
>>> trajectory = run_on_surface(bowl, torch.optim.SGD, steps=200, lr=0.09)
>>> trajectory.points.shape
torch.Size([201, 2])
>>> bool(trajectory.final_gap < 1e-6)
True

Each :class:`Surface` is a plain callable on tensors: ``surface(xy)`` takes ``xy`` of shape
``(2,)`` or ``(..., 2)`` on any device and dtype and returns the loss with the leading shape
(a 0-d tensor for a single point). It is differentiable, so ``loss.backward()`` works.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "SURFACES",
    "Surface",
    "Trajectory",
    "accepted_hyperparameters",
    "get_surface",
    "run_on_surface",
]


@dataclass(frozen=True)
class Surface:
    """A loss :math:`f(x, y)` with everything needed to run on it and to draw it.

    Attributes:
        name: the key in :data:`SURFACES` (``"bowl"``, ``"rosenbrock"``, ...).
        title: a human name for figure titles.
        function: ``function(x, y) -> loss``, written with torch operations only.
        formula: the definition in LaTeX (no surrounding ``$``) that both MathJax and
            matplotlib's mathtext understand, for figure titles and markdown.
        start: the recommended starting point, the same in every chapter.
        minima: every known minimizer; the first is *the* minimum (the global one).
        min_value: the value of ``f`` at the minima.
        xlim, ylim: the plot window, chosen to show the start and the minima.
        log_scale: draw contours of ``f - min_value`` on a log scale (for surfaces whose
            values span many orders of magnitude, such as Rosenbrock's valley).
        description: one or two sentences on what the surface teaches.
    """

    name: str
    title: str
    function: Callable[[Tensor, Tensor], Tensor] = field(repr=False)
    formula: str
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    min_value: float
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    log_scale: bool = True
    description: str = ""

    def __call__(self, xy: Tensor) -> Tensor:
        """The loss at ``xy`` (shape ``(2,)`` or ``(..., 2)``), keeping autograd and device."""
        if xy.shape[-1] != 2:
            raise ValueError(
                f"expected points with a last dimension of 2, got shape {tuple(xy.shape)}"
            )
        return self.function(xy[..., 0], xy[..., 1])

    @property
    def minimum(self) -> tuple[float, float]:
        """The global minimizer (the first of :attr:`minima`)."""
        return self.minima[0]

    def start_tensor(
        self, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
    ) -> Tensor:
        """The recommended start as a tensor of shape ``(2,)``."""
        return torch.tensor(self.start, dtype=dtype, device=device)

    def grid(self, resolution: int = 200) -> tuple[Tensor, Tensor, Tensor]:
        """``(X, Y, Z)`` on a square grid over the plot window (CPU, float64)."""
        xs = torch.linspace(*self.xlim, resolution, dtype=torch.float64)
        ys = torch.linspace(*self.ylim, resolution, dtype=torch.float64)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        with torch.no_grad():
            values = self(torch.stack([grid_x, grid_y], dim=-1))
        return grid_x, grid_y, values

    def gradient(self, xy: Tensor) -> Tensor:
        """:math:`\\nabla f` at the point(s) ``xy``, computed by autograd (no graph is kept)."""
        with torch.enable_grad():
            point = xy.detach().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self(point).sum(), point)
        return grad


# --- The surfaces --------------------------------------------------------------------------
#
# Each is written once, as a function of x and y, with torch operations only, so it runs on any
# device and dtype and autograd differentiates it.

#: The bowl's curvatures: f = (x^2 + CONDITION_NUMBER * y^2) / 2 has Hessian diag(1, 20).
BOWL_CONDITION_NUMBER = 20.0


def _bowl(x: Tensor, y: Tensor) -> Tensor:
    return 0.5 * (x**2 + BOWL_CONDITION_NUMBER * y**2)


_COS, _SIN = math.cos(math.pi / 4), math.sin(math.pi / 4)


def _rotated_bowl(x: Tensor, y: Tensor) -> Tensor:
    # The same bowl turned by 45 degrees: its axes no longer line up with the coordinates.
    along = _COS * x + _SIN * y
    across = -_SIN * x + _COS * y
    return 0.5 * (along**2 + BOWL_CONDITION_NUMBER * across**2)


def _rosenbrock(x: Tensor, y: Tensor) -> Tensor:
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def _saddle(x: Tensor, y: Tensor) -> Tensor:
    # x^2 - y^2 is a pure saddle; the quartic y^4 / 2 bends it back up so that it has minima.
    return x**2 - y**2 + 0.5 * y**4


def _himmelblau(x: Tensor, y: Tensor) -> Tensor:
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


SURFACES: dict[str, Surface] = {
    "bowl": Surface(
        name="bowl",
        title="Ill-conditioned bowl",
        function=_bowl,
        formula=r"f(x, y) = \frac{1}{2}\left(x^2 + 20\,y^2\right)",
        start=(-4.5, 1.5),
        minima=((0.0, 0.0),),
        min_value=0.0,
        xlim=(-5.0, 5.0),
        ylim=(-2.0, 2.0),
        description=(
            "An elongated quadratic. Its Hessian is diag(1, 20): the curvature across the ravine "
            "is 20 times the curvature along it (condition number 20), so plain gradient descent "
            "must keep its learning rate below 2/20 = 0.1 and then crawls along the flat direction."
        ),
    ),
    "rotated_bowl": Surface(
        name="rotated_bowl",
        title="Rotated ill-conditioned bowl",
        function=_rotated_bowl,
        formula=(
            r"f(x, y) = \frac{1}{2}\left(u^2 + 20\,v^2\right),\ "
            r"u = \frac{x + y}{\sqrt{2}},\ v = \frac{y - x}{\sqrt{2}}"
        ),
        start=(-4.0, -2.0),
        minima=((0.0, 0.0),),
        min_value=0.0,
        xlim=(-5.0, 5.0),
        ylim=(-5.0, 5.0),
        description=(
            "The bowl turned by 45 degrees (same eigenvalues 1 and 20, condition number 20). "
            "Per-coordinate step sizes (Adagrad, RMSprop, Adam) cannot undo a rotation, so this "
            "surface separates them from methods that use curvature along directions."
        ),
    ),
    "rosenbrock": Surface(
        name="rosenbrock",
        title="Rosenbrock's banana valley",
        function=_rosenbrock,
        formula=r"f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2",
        start=(-1.5, 2.0),
        minima=((1.0, 1.0),),
        min_value=0.0,
        xlim=(-2.0, 2.0),
        ylim=(-1.0, 3.0),
        description=(
            "A narrow curved valley. Finding the valley is easy; following its gentle, bending "
            "floor to the minimum at (1, 1) is hard. Near the minimum the condition number is "
            "about 2500."
        ),
    ),
    "saddle": Surface(
        name="saddle",
        title="Saddle with two minima",
        function=_saddle,
        formula=r"f(x, y) = x^2 - y^2 + \frac{1}{2}\,y^4",
        start=(-1.5, 1e-3),
        minima=((0.0, 1.0), (0.0, -1.0)),
        min_value=-0.5,
        xlim=(-2.0, 2.0),
        ylim=(-1.6, 1.6),
        log_scale=False,
        description=(
            "The origin is a saddle point (curvature +2 along x, -2 along y). Starting almost "
            "on the ridge y = 0, gradient descent first slides towards the saddle, lingers there "
            "while "
            "the tiny y-component grows, and only then escapes to a minimum at (0, +1) or (0, -1). "
            "Gradient noise speeds up the escape."
        ),
    ),
    "himmelblau": Surface(
        name="himmelblau",
        title="Himmelblau's function (four minima)",
        function=_himmelblau,
        formula=r"f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2",
        start=(-0.5, -0.5),
        minima=(
            (3.0, 2.0),
            (-2.805118086952745, 3.131312518250573),
            (-3.779310253377747, -3.283185991286169),
            (3.5844283403304917, -1.8481265269644034),
        ),
        min_value=0.0,
        xlim=(-5.0, 5.0),
        ylim=(-5.0, 5.0),
        description=(
            "Four minima of equal depth (value 0) and a local maximum between them. Which minimum "
            "an optimizer reaches depends on its start, its learning rate and its momentum."
        ),
    ),
}


def get_surface(surface: Surface | str) -> Surface:
    """Accept a :class:`Surface` or its name in :data:`SURFACES`."""
    if isinstance(surface, Surface):
        return surface
    try:
        return SURFACES[surface]
    except KeyError:
        raise ValueError(f"Unknown surface {surface!r}; choose one of {sorted(SURFACES)}") from None


# --- Running an optimizer on a surface -----------------------------------------------------


@dataclass
class Trajectory:
    """The path an optimizer took on a surface.

    Attributes:
        points: shape ``(steps + 1, 2)``, the start followed by the point after every step
            (float64 on the CPU, detached). A diverging run holds ``inf``/``nan`` from the step
            where it blew up.
        losses: shape ``(steps + 1,)``, the exact loss at each point (without any noise).
        lrs: the learning rate used by each step (``len == steps``), handy with schedulers.
        surface: the surface's name.
        optimizer: the optimizer's name (its class name unless a ``label`` was given).
        hyperparameters: the keyword arguments the optimizer was built with.
        min_value: the surface's minimum value, so that :attr:`gaps` needs nothing else.
    """

    points: Tensor
    losses: Tensor
    lrs: list[float]
    surface: str
    optimizer: str
    hyperparameters: dict[str, Any]
    min_value: float = 0.0

    @property
    def steps(self) -> int:
        return self.points.shape[0] - 1

    @property
    def gaps(self) -> Tensor:
        """``f(point) - f*`` at every point: the distance to the best value, >= 0."""
        return self.losses - self.min_value

    @property
    def final_point(self) -> Tensor:
        return self.points[-1]

    @property
    def final_gap(self) -> float:
        return float(self.gaps[-1])

    @property
    def diverged(self) -> bool:
        """True when the run left the real numbers (an ``inf`` or ``nan`` appeared)."""
        return not bool(torch.isfinite(self.points).all())

    def __len__(self) -> int:
        return self.points.shape[0]


def _optimizer_name(optimizer_cls: Callable[..., torch.optim.Optimizer]) -> str:
    return getattr(optimizer_cls, "__name__", type(optimizer_cls).__name__)


def run_on_surface(
    surface: Surface | str,
    optimizer_cls: Callable[..., torch.optim.Optimizer],
    steps: int = 100,
    start: tuple[float, float] | Tensor | None = None,
    *,
    noise: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    param_shape: tuple[int, ...] = (2,),
    sparse_grad: bool = False,
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
    label: str | None = None,
    **hyperparameters: Any,
) -> Trajectory:
    """Put a point in a parameter and let ``optimizer_cls`` move it for ``steps`` steps.

    Works with any optimizer that follows torch's contract, built-in or from scratch: every step
    is ``optimizer.step(closure)``, so LBFGS (which calls the closure several times per step)
    works like the rest.

    Args:
        surface: a :class:`Surface` or its name.
        optimizer_cls: the class (or any callable ``f(params, **hyperparameters)``).
        steps: number of ``optimizer.step`` calls.
        start: the starting point; the surface's recommended :attr:`Surface.start` by default.
        noise: standard deviation of Gaussian noise added to every gradient the closure
            computes, to mimic the noise of minibatch gradients. ``0.0`` gives exact gradients.
        seed: seeds that noise (the same seed gives the same noisy run on every device).
        dtype, device: where the point lives.
        param_shape: the shape of the parameter holding the point: ``(2,)`` by default, ``(1, 2)``
            or ``(2, 1)`` for optimizers that only accept matrices (Muon).
        sparse_grad: hand the optimizer a sparse gradient (for SparseAdam).
        scheduler: optional ``scheduler(optimizer) -> LRScheduler``; stepped after every step.
        label: the name stored in :attr:`Trajectory.optimizer` (default: the class name).
        **hyperparameters: passed to the optimizer (``lr=0.1, momentum=0.9, ...``).

    Returns:
        A :class:`Trajectory` with ``points`` of shape ``(steps + 1, 2)`` and the loss at each.

    >>> path = run_on_surface("rosenbrock", torch.optim.Adam, steps=50, lr=0.1)
    >>> path.points.shape, path.losses.shape, len(path.lrs)
    (torch.Size([51, 2]), torch.Size([51]), 50)
    """
    surface = get_surface(surface)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if param_shape not in ((2,), (1, 2), (2, 1)):
        raise ValueError(f"param_shape must be (2,), (1, 2) or (2, 1), got {param_shape}")
    start_point = surface.start if start is None else start
    point = torch.as_tensor(start_point, dtype=dtype).to(device).detach().clone()
    param = point.reshape(param_shape).requires_grad_(True)
    optimizer = optimizer_cls([param], **hyperparameters)
    schedule = scheduler(optimizer) if scheduler is not None else None
    # Noise is drawn on the CPU from its own generator, so a seed means the same run anywhere.
    generator = torch.Generator().manual_seed(seed)

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = surface(param.reshape(2))
        loss.backward()
        if noise:
            kick = torch.randn(param_shape, generator=generator, dtype=torch.float64)
            param.grad.add_(noise * kick.to(device=param.device, dtype=param.dtype))
        if sparse_grad:
            param.grad = param.grad.to_sparse()
        return loss

    points = [param.detach().reshape(2).to("cpu", torch.float64).clone()]
    lrs: list[float] = []
    for _ in range(steps):
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        optimizer.step(closure)
        if schedule is not None:
            schedule.step()
        points.append(param.detach().reshape(2).to("cpu", torch.float64).clone())
    stacked = torch.stack(points)
    with torch.no_grad():
        losses = surface(stacked)
    return Trajectory(
        points=stacked,
        losses=losses,
        lrs=lrs,
        surface=surface.name,
        optimizer=label or _optimizer_name(optimizer_cls),
        hyperparameters=dict(hyperparameters),
        min_value=surface.min_value,
    )


def accepted_hyperparameters(
    optimizer_cls: Callable[..., torch.optim.Optimizer],
) -> Mapping[str, Any]:
    """The constructor's keyword arguments and their defaults (``params`` left out).

    >>> accepted_hyperparameters(torch.optim.SGD)["momentum"]
    0
    """
    target = optimizer_cls.__init__ if inspect.isclass(optimizer_cls) else optimizer_cls
    signature = inspect.signature(target)
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if name not in ("self", "params")
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }
