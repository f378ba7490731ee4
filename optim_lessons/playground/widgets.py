"""An interactive explorer: pick an optimizer and a surface, move the sliders, watch the path.

In a live kernel (Jupyter, Colab) the explorer redraws on every change. On the published
site no Python runs, so each chapter pairs the explorer with a kernel-free animation of the
same settings (:meth:`SurfaceExplorer.animate`, or
:func:`optim_lessons.playground.animations.animate_trajectories`).

>>> import torch
>>> from optim_lessons.playground.widgets import surface_explorer
>>> explorer = surface_explorer({"SGD": torch.optim.SGD}, surfaces=["bowl"], lr=0.05)
>>> before = explorer.trajectory.final_gap
>>> after = explorer.update(lr=0.09).final_gap  # what moving the lr slider does
>>> after < before
True

In a notebook, make ``explorer`` the last expression of a cell to show it, and call
``explorer.animate()`` in the next cell for the version that plays on the website.

Which sliders appear depends on the optimizer: the explorer reads the constructor's signature
and shows a control only for the hyperparameters that constructor accepts (``momentum`` for SGD,
``betas`` for Adam, ...). ``steps``, ``noise`` (gradient noise, see
:func:`~.surfaces.run_on_surface`) and ``start`` are not hyperparameters and are
shown whenever they are listed in ``controls``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from optim_lessons.playground.animations import animate_trajectories
from optim_lessons.playground.plots import plot_losses, plot_trajectories
from optim_lessons.playground.surfaces import (
    SURFACES,
    Surface,
    Trajectory,
    accepted_hyperparameters,
    get_surface,
    run_on_surface,
)

__all__ = [
    "CONTROLS",
    "DEFAULT_CONTROLS",
    "DEFAULT_OPTIMIZERS",
    "SurfaceExplorer",
    "explore",
    "surface_explorer",
]


@dataclass(frozen=True)
class Control:
    """How one knob is drawn: the widget class, its keyword arguments, and its fallback value."""

    make: Callable[..., widgets.ValueWidget]
    options: dict[str, Any] = field(default_factory=dict)
    fallback: Any = None


def _slider(low: float, high: float, step: float, fmt: str = ".2f") -> dict[str, Any]:
    return {
        "min": low,
        "max": high,
        "step": step,
        "readout_format": fmt,
        "continuous_update": False,
    }


#: Every knob the explorer knows. ``beta1``/``beta2`` together make the ``betas`` hyperparameter.
CONTROLS: dict[str, Control] = {
    "lr": Control(
        widgets.FloatLogSlider,
        {
            "base": 10,
            "min": -4,
            "max": 1,
            "step": 0.05,
            "readout_format": ".3g",
            "continuous_update": False,
        },
        0.05,
    ),
    "momentum": Control(widgets.FloatSlider, _slider(0.0, 0.99, 0.01), 0.0),
    "dampening": Control(widgets.FloatSlider, _slider(0.0, 0.99, 0.01), 0.0),
    "nesterov": Control(widgets.Checkbox, {}, False),
    "beta1": Control(widgets.FloatSlider, _slider(0.0, 0.99, 0.01), 0.9),
    "beta2": Control(widgets.FloatSlider, _slider(0.5, 0.9999, 0.0001, ".4f"), 0.999),
    "alpha": Control(widgets.FloatSlider, _slider(0.0, 0.999, 0.001, ".3f"), 0.99),
    "rho": Control(widgets.FloatSlider, _slider(0.0, 0.999, 0.001, ".3f"), 0.9),
    "weight_decay": Control(widgets.FloatSlider, _slider(0.0, 1.0, 0.01), 0.0),
    "amsgrad": Control(widgets.Checkbox, {}, False),
    "centered": Control(widgets.Checkbox, {}, False),
    "steps": Control(
        widgets.IntSlider, {"min": 1, "max": 300, "step": 1, "continuous_update": False}, 60
    ),
    "noise": Control(widgets.FloatSlider, _slider(0.0, 5.0, 0.1, ".1f"), 0.0),
    "start_x": Control(widgets.FloatSlider, _slider(-5.0, 5.0, 0.05), None),
    "start_y": Control(widgets.FloatSlider, _slider(-5.0, 5.0, 0.05), None),
}

#: What the explorer shows when ``controls`` is not given.
DEFAULT_CONTROLS = ("lr", "momentum", "nesterov", "betas", "steps", "noise")

#: torch.optim's optimizers that move a single dense point (SparseAdam needs sparse gradients,
#: Muon matrices, and LBFGS runs many evaluations per step: pass them explicitly if wanted).
DEFAULT_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    name: getattr(torch.optim, name)
    for name in (
        "SGD",
        "Adagrad",
        "RMSprop",
        "Adadelta",
        "Adam",
        "AdamW",
        "Adamax",
        "NAdam",
        "RAdam",
        "Rprop",
        "ASGD",
    )
}

#: Controls that are not optimizer hyperparameters.
_RUN_CONTROLS = ("steps", "noise", "start_x", "start_y")


def _expand(controls: Iterable[str]) -> list[str]:
    names = []
    for name in controls:
        if name == "betas":
            names += ["beta1", "beta2"]
        elif name == "start":
            names += ["start_x", "start_y"]
        elif name in CONTROLS:
            names.append(name)
        else:
            raise ValueError(
                f"Unknown control {name!r}; choose from {sorted(CONTROLS)}, 'betas', 'start'"
            )
    return names


class SurfaceExplorer:
    """The explorer's widgets, its current run, and the function that redraws it.

    Attributes:
        widget: the whole explorer (an ``ipywidgets.VBox``); displaying the explorer shows it.
        controls: ``{name: widget}`` for every knob, visible or not.
        image: the ``ipywidgets.Image`` holding the current figure (PNG).
        figure: the matplotlib Figure behind that image (trajectory and loss panels).
        trajectory: the :class:`~optim_lessons.playground.surfaces.Trajectory` currently drawn.
        message: a line under the figure (the final gap, or the optimizer's error message).
    """

    def __init__(
        self,
        optimizers: Mapping[str, Callable[..., torch.optim.Optimizer]] | None = None,
        surfaces: Sequence[str | Surface] | None = None,
        controls: Iterable[str] = DEFAULT_CONTROLS,
        *,
        optimizer: str | None = None,
        surface: str | None = None,
        figsize: tuple[float, float] = (10.0, 3.8),
        **initial: Any,
    ) -> None:
        self.optimizers = dict(optimizers or DEFAULT_OPTIMIZERS)
        if not self.optimizers:
            raise ValueError("the explorer needs at least one optimizer")
        chosen = [get_surface(s) for s in (surfaces or list(SURFACES))]
        self.surfaces = {s.name: s for s in chosen}
        self.figsize = figsize
        names = _expand(controls)
        if "betas" in initial:
            initial["beta1"], initial["beta2"] = initial.pop("betas")
        if "start" in initial:
            initial["start_x"], initial["start_y"] = initial.pop("start")
        unknown = set(initial) - set(CONTROLS)
        if unknown:
            raise ValueError(f"no control for {sorted(unknown)}; known: {sorted(CONTROLS)}")

        self.optimizer_menu = widgets.Dropdown(
            options=list(self.optimizers),
            description="optimizer",
            value=optimizer or next(iter(self.optimizers)),
        )
        self.surface_menu = widgets.Dropdown(
            options=list(self.surfaces),
            description="surface",
            value=surface or next(iter(self.surfaces)),
        )
        self.controls: dict[str, widgets.ValueWidget] = {}
        for name in names:
            spec = CONTROLS[name]
            value = initial.get(name, spec.fallback)
            widget = spec.make(
                description=name, style={"description_width": "initial"}, **spec.options
            )
            if value is not None:
                widget.value = value
            self.controls[name] = widget
        self._explicit = set(initial)
        self.image = widgets.Image(format="png")
        self.message = widgets.HTML()
        self.control_box = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.optimizer_menu, self.surface_menu]),
                self.control_box,
                self.image,
                self.message,
            ]
        )
        self.figure: Figure | None = None
        self.trajectory: Trajectory | None = None
        self._quiet = False
        self._place_start(self.current_surface, keep=True)
        self._show_relevant_controls()
        for control in (self.optimizer_menu, self.surface_menu, *self.controls.values()):
            control.observe(self._on_change, names="value")
        self.redraw()

    # -- what the controls say ---------------------------------------------------------------

    @property
    def current_surface(self) -> Surface:
        return self.surfaces[self.surface_menu.value]

    @property
    def current_optimizer(self) -> Callable[..., torch.optim.Optimizer]:
        return self.optimizers[self.optimizer_menu.value]

    def _accepted(self) -> Mapping[str, Any]:
        return accepted_hyperparameters(self.current_optimizer)

    def hyperparameters(self) -> dict[str, Any]:
        """The keyword arguments the current optimizer gets from the visible controls."""
        accepted = self._accepted()
        chosen: dict[str, Any] = {}
        for name, widget in self.controls.items():
            if name in _RUN_CONTROLS or name in ("beta1", "beta2"):
                continue
            if name in accepted:
                chosen[name] = widget.value
        if "betas" in accepted and "beta1" in self.controls and "beta2" in self.controls:
            chosen["betas"] = (self.controls["beta1"].value, self.controls["beta2"].value)
        return chosen

    def run_settings(self) -> dict[str, Any]:
        """The arguments of :func:`~.surfaces.run_on_surface` other than the
        hyperparameters: steps, noise, start, and the parameter layout an optimizer needs
        (Muon takes the point as a 1 x 2 matrix, SparseAdam takes a sparse gradient)."""
        settings: dict[str, Any] = {
            "steps": self.controls["steps"].value if "steps" in self.controls else 60
        }
        settings.update(parameter_layout(self.current_optimizer))
        if "noise" in self.controls:
            settings["noise"] = self.controls["noise"].value
        if "start_x" in self.controls and "start_y" in self.controls:
            settings["start"] = (self.controls["start_x"].value, self.controls["start_y"].value)
        return settings

    def _show_relevant_controls(self) -> None:
        accepted = self._accepted()
        visible = []
        for name, widget in self.controls.items():
            hyperparameter = "betas" if name in ("beta1", "beta2") else name
            if name in _RUN_CONTROLS or hyperparameter in accepted:
                visible.append(widget)
                default = accepted.get(name)
                # A hyperparameter the caller did not set starts at the optimizer's own default.
                if (
                    name not in self._explicit
                    and name != "lr"
                    and isinstance(default, (int, float))
                ):
                    widget.value = default
        if "betas" in accepted and "beta1" not in self._explicit:
            default_betas = accepted["betas"]
            if isinstance(default_betas, tuple):
                for name, value in zip(("beta1", "beta2"), default_betas, strict=True):
                    if name in self.controls:
                        self.controls[name].value = value
        self.control_box.children = visible

    def _place_start(self, surface: Surface, keep: bool = False) -> None:
        for name, limits, coordinate in (
            ("start_x", surface.xlim, 0),
            ("start_y", surface.ylim, 1),
        ):
            if name in self.controls:
                slider = self.controls[name]
                low, high = limits
                if low > slider.max:  # keep min <= max at every moment, as ipywidgets insists
                    slider.max, slider.min = high, low
                else:
                    slider.min, slider.max = low, high
                if not (keep and name in self._explicit):
                    slider.value = surface.start[coordinate]

    # -- reacting to changes ------------------------------------------------------------------

    def _on_change(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        self._quiet = True
        try:
            if change["owner"] is self.optimizer_menu:
                self._show_relevant_controls()
            elif change["owner"] is self.surface_menu:
                self._place_start(self.current_surface)
        finally:
            self._quiet = False
        self.redraw()

    def update(self, **changes: Any) -> Trajectory | None:
        """Set controls by name (``optimizer=``, ``surface=``, ``lr=``, ``betas=``, ...), as a
        reader moving them would, then redraw once. Returns the trajectory now drawn.

        This is the function the widgets call; calling it directly needs no display, which is
        how the tests check that the picture follows the sliders.
        """
        if "betas" in changes:
            changes["beta1"], changes["beta2"] = changes.pop("betas")
        if "start" in changes:
            changes["start_x"], changes["start_y"] = changes.pop("start")
        self._quiet = True
        try:
            if "optimizer" in changes:
                self.optimizer_menu.value = changes.pop("optimizer")
                self._show_relevant_controls()
            if "surface" in changes:
                self.surface_menu.value = changes.pop("surface")
                self._place_start(self.current_surface)
            for name, value in changes.items():
                if name not in self.controls:
                    raise ValueError(
                        f"this explorer has no control {name!r}; it has {sorted(self.controls)}"
                    )
                self.controls[name].value = value
                self._explicit.add(name)
        finally:
            self._quiet = False
        return self.redraw()

    def describe(self) -> str:
        """The current settings in one line, e.g. ``SGD(lr=0.05, momentum=0.9) on bowl``."""
        arguments = ", ".join(f"{k}={_short(v)}" for k, v in self.hyperparameters().items())
        return f"{self.optimizer_menu.value}({arguments}) on {self.current_surface.name}"

    def redraw(self) -> Trajectory | None:
        """Run the current settings and redraw the figure. Returns the new trajectory, or
        ``None`` when the optimizer refused the settings (its message is shown instead)."""
        surface = self.current_surface
        try:
            trajectory = run_on_surface(
                surface,
                self.current_optimizer,
                label=self.optimizer_menu.value,
                **self.run_settings(),
                **self.hyperparameters(),
            )
        except (ValueError, RuntimeError) as error:
            self.message.value = f"<b>{type(error).__name__}</b>: {error}"
            return None
        figure = Figure(figsize=self.figsize)
        trajectory_ax, loss_ax = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.4, 1]})
        plot_trajectories(
            surface, {trajectory.optimizer: trajectory}, ax=trajectory_ax, title=f"{surface.title}"
        )
        plot_losses(
            {trajectory.optimizer: trajectory}, ax=loss_ax, title="Distance to the minimum value"
        )
        figure.suptitle(self.describe(), fontsize="medium")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        self.image.value = buffer.getvalue()
        self.figure, self.trajectory = figure, trajectory
        status = "diverged" if trajectory.diverged else f"final f - f* = {trajectory.final_gap:.3g}"
        self.message.value = f"{trajectory.steps} steps: {status}"
        return trajectory

    def animate(self, frames: int = 60, interval: int = 100) -> Any:
        """The current run as a kernel-free animation (see
        :func:`~.animations.animate_trajectories`), for the published site."""
        if self.trajectory is None:
            raise RuntimeError("the current settings produced no trajectory")
        return animate_trajectories(
            self.current_surface,
            {self.describe(): self.trajectory},
            frames=frames,
            interval=interval,
        )

    # -- display -------------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # the widget's own text is long: show what is explored instead
        return widget_mimebundle(self.widget, f"SurfaceExplorer: {self.describe()}")

    def __repr__(self) -> str:
        return f"SurfaceExplorer: {self.describe()}"


def widget_mimebundle(widget: widgets.Widget, text: str) -> dict[str, Any]:
    """What a notebook shows for ``widget``: its live view, and ``text`` where no view can be
    drawn (a text console, a stored output).

    Both ipywidgets 7 (which Colab ships) and 8 render the view from this bundle: the view's
    mime type, version 2.0 of the widget message format, names the widget's model by its id.
    ipywidgets 8 builds the same bundle in its own ``_repr_mimebundle_``; ipywidgets 7 has no
    such method (it displays widgets through ``_ipython_display_``), so the explorers build it
    themselves rather than ask the widget for it.
    """
    return {
        "text/plain": text,
        "application/vnd.jupyter.widget-view+json": {
            "version_major": 2,
            "version_minor": 0,
            "model_id": widget.model_id,
        },
    }


#: How the 2-D point must be presented to optimizers that accept only some parameters.
PARAMETER_LAYOUTS: dict[str, dict[str, Any]] = {
    "Muon": {"param_shape": (1, 2)},  # 2-D parameters only
    "SparseAdam": {"sparse_grad": True},  # sparse gradients only
}


def parameter_layout(optimizer: Callable[..., torch.optim.Optimizer]) -> dict[str, Any]:
    """The extra :func:`~.surfaces.run_on_surface` arguments that ``optimizer``
    (a class, or a ``functools.partial`` of one) needs; empty for most optimizers."""
    while hasattr(optimizer, "func"):  # functools.partial(...) wraps the class
        optimizer = optimizer.func
    return dict(PARAMETER_LAYOUTS.get(getattr(optimizer, "__name__", ""), {}))


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    return repr(value)


def surface_explorer(
    optimizers: Mapping[str, Callable[..., torch.optim.Optimizer]] | None = None,
    surfaces: Sequence[str | Surface] | None = None,
    controls: Iterable[str] = DEFAULT_CONTROLS,
    **initial: Any,
) -> SurfaceExplorer:
    """Build an interactive explorer (see :class:`SurfaceExplorer`).

    Args:
        optimizers: ``{label: optimizer class}`` for the dropdown, e.g.
            ``{"SGD (ours)": optim_lessons.optimizers.SGD, "SGD (torch)": torch.optim.SGD}``;
            torch.optim's dense optimizers by default. Muon and SparseAdam work too: the point
            is handed to them as a 1 x 2 matrix or with a sparse gradient (see
            :data:`PARAMETER_LAYOUTS`).
        surfaces: names (or :class:`~.surfaces.Surface` objects) for the dropdown;
            all of :data:`~optim_lessons.playground.surfaces.SURFACES` by default.
        controls: which knobs to offer, from :data:`CONTROLS` plus ``"betas"`` (two sliders) and
            ``"start"`` (two sliders); a hyperparameter's knob shows only for optimizers that
            accept it.
        **initial: starting values (``lr=0.05, momentum=0.9, betas=(0.9, 0.99), steps=100``),
            and ``optimizer=``/``surface=`` to pick the first selection.

    >>> explorer = surface_explorer(surfaces=["rosenbrock"], optimizer="Adam", lr=0.1, steps=80)
    >>> explorer.describe()
    'Adam(lr=0.1, betas=(0.9, 0.999)) on rosenbrock'
    """
    return SurfaceExplorer(optimizers, surfaces, controls, **initial)


#: A shorter name for :func:`surface_explorer`.
explore = surface_explorer
