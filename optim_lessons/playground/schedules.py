"""Learning-rate schedules: record them without training, draw them, play with them.

A scheduler (:mod:`optim_lessons.schedulers`, or torch's :mod:`torch.optim.lr_scheduler`, which
it rebuilds) is a small state machine. Each call to
``scheduler.step()`` advances a counter (``last_epoch``) and writes a new value into every
``optimizer.param_groups[i]["lr"]``. Nothing else: it never touches a parameter or a gradient.
So the whole schedule can be read off without a model: build an optimizer over one parameter
that never receives a gradient, step the pair, and note ``group["lr"]`` before each step.
That is :func:`record_lrs`.

The rest of the module draws what it records (:func:`plot_schedules`,
:func:`animate_schedules`), builds the book's standard schedules by name
from the book's own classes (:func:`make_scheduler`, used by the live explorer
:func:`schedule_explorer`) and checks the chapter's exercises (:func:`check_schedule`).
:func:`record_lrs` takes any scheduler, so torch's classes still serve as the reference the
book's are checked against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.optim import Optimizer

from optim_lessons import schedulers

#: What :func:`make_scheduler` builds, with the order the explorer lists them in.
SCHEDULE_NAMES = (
    "constant",
    "warmup_cosine",
    "step",
    "cosine",
    "warm_restarts",
    "one_cycle",
    "wsd",
    "plateau",
)

SchedulerFactory = Callable[[Optimizer], Any]


def stand_in_optimizer(lr: float = 0.1, momentum: float = 0.9, groups: int = 1) -> torch.optim.SGD:
    """An SGD optimizer over parameters that never get a gradient: ``step()`` changes nothing.

    It exists only to carry ``param_groups`` for a scheduler to write into. ``momentum`` is
    set because :class:`~torch.optim.lr_scheduler.OneCycleLR` cycles it by default.
    """
    if groups < 1:
        raise ValueError(f"groups must be at least 1, got {groups}")
    param_groups = [{"params": [torch.zeros(1, requires_grad=True)]} for _ in range(groups)]
    return torch.optim.SGD(param_groups, lr=lr, momentum=momentum)


def read_group_value(group: Mapping[str, Any], key: str) -> float:
    """``group[key]`` as a float; for ``"betas"`` (Adam's pair) the first entry, beta1."""
    value = group[key]
    if isinstance(value, tuple | list):
        value = value[0]
    return float(value)


def record_lrs(
    make_scheduler: SchedulerFactory,
    steps: int,
    *,
    lr: float = 0.1,
    momentum: float = 0.9,
    metrics: Sequence[float] | None = None,
    key: str = "lr",
    group: int = 0,
    optimizer: Optimizer | None = None,
    step_every: int = 1,
) -> list[float]:
    """The learning rate each of ``steps`` optimizer steps would use, with no training at all.

    ``make_scheduler(optimizer)`` builds the scheduler under test, for example
    ``lambda opt: StepLR(opt, step_size=30, gamma=0.1)``. Entry ``i`` of the result is
    ``param_groups[group][key]`` just before optimizer step ``i``: the value that step uses.

    The loop is the one a training script runs: ``optimizer.step()`` and then
    ``scheduler.step()``, so torch's "step order" warning stays quiet. ``step_every`` steps the
    scheduler only after every ``step_every``-th optimizer step: pass the number of batches per
    epoch to see what a schedule stepped once per epoch does to the rate of every batch.
    A :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` needs the metric it watches: pass
    one value per scheduler step in ``metrics`` (entry ``j`` is reported at its ``j``-th step).

    By default the optimizer is :func:`stand_in_optimizer` (``lr``, ``momentum``). Pass your
    own ``optimizer`` to record on it instead; its parameters must have no gradient (``grad``
    ``None``), or they would move.
    """
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    if step_every < 1:
        raise ValueError(f"step_every must be at least 1, got {step_every}")
    scheduler_steps = steps // step_every
    if metrics is not None and len(metrics) < scheduler_steps:
        raise ValueError(
            f"metrics has {len(metrics)} values, but {scheduler_steps} scheduler steps need one"
        )
    if optimizer is None:
        optimizer = stand_in_optimizer(lr=lr, momentum=momentum)
    else:
        for param_group in optimizer.param_groups:
            if any(p.grad is not None for p in param_group["params"]):
                raise ValueError(
                    "record_lrs needs parameters without gradients, so that they stay put"
                )
    scheduler = make_scheduler(optimizer)
    values = []
    for i in range(steps):
        values.append(read_group_value(optimizer.param_groups[group], key))
        optimizer.step()  # no gradient anywhere: nothing moves, but the order stays right
        if (i + 1) % step_every:
            continue
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[(i + 1) // step_every - 1])
    return values


# ----------------------------------------------------------------------------------- drawing


def plot_schedules(
    schedules: Mapping[str, Sequence[float]],
    *,
    ax: Any = None,
    title: str = "Learning-rate schedules",
    xlabel: str = "optimizer step (batch)",
    ylabel: str = "learning rate",
    steps_per_epoch: int | None = None,
    log_scale: bool = False,
) -> Any:
    """Draw each named schedule as a line of value against step; return the Axes.

    A thin layer over :func:`~.plots.plot_curves`: ``steps_per_epoch`` adds faint
    vertical lines at the epoch boundaries; ``log_scale`` puts the learning rate on a log axis
    (useful when a schedule spans several decades).
    """
    from optim_lessons.playground.plots import plot_curves

    curves = {name: (range(len(values)), list(values)) for name, values in schedules.items()}
    ax = plot_curves(
        curves, xlabel=xlabel, ylabel=ylabel, title=title, ax=ax, logy=log_scale, marker=None
    )
    if steps_per_epoch:
        longest = max((len(values) for values in schedules.values()), default=0)
        for boundary in range(steps_per_epoch, longest, steps_per_epoch):
            ax.axvline(boundary, color="0.85", linewidth=0.8, zorder=0)
    return ax


def animate_schedules(
    frames: Sequence[tuple[str, Mapping[str, Sequence[float]]]],
    *,
    title: str = "Learning-rate schedule",
    xlabel: str = "optimizer step (batch)",
    ylabel: str = "learning rate",
    figsize: tuple[float, float] = (6.0, 3.4),
    dpi: int = 72,
    interval: int = 400,
) -> Any:
    """A :class:`~matplotlib.animation.FuncAnimation` with one frame per ``(caption, curves)``.

    Each frame redraws the named curves and shows its caption under the title. The axes keep
    the limits that fit every frame, so the reader sees shapes change, not the scale. Render it
    for a page that has no kernel with ``HTML(animation.to_jshtml())``; every frame is stored as
    an image, so a low ``dpi`` keeps the page light.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    if not frames:
        raise ValueError("animate_schedules needs at least one frame")
    names = list(frames[0][1])
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi)
    lines = {name: ax.plot([], [], label=name, linewidth=1.6)[0] for name in names}
    longest = max(len(values) for _, curves in frames for values in curves.values())
    highest = max(max(values) for _, curves in frames for values in curves.values() if len(values))
    ax.set_xlim(0, max(longest - 1, 1))
    ax.set_ylim(0, highest * 1.08)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(names) > 1:
        ax.legend(fontsize="small", loc="upper right")

    def draw(index: int) -> list[Any]:
        caption, curves = frames[index]
        for name, line in lines.items():
            values = list(curves.get(name, []))
            line.set_data(range(len(values)), values)
        ax.set_title(f"{title}\n{caption}", fontsize="medium")
        return list(lines.values())

    draw(0)
    fig.tight_layout()  # after the first frame's two-line title is in place, so that it fits
    animation = FuncAnimation(fig, draw, frames=len(frames), interval=interval, blit=False)
    plt.close(fig)  # the animation is shown through to_jshtml, not as a second static figure
    return animation


# ----------------------------------------------------------------------------------- by name


def make_scheduler(
    name: str,
    optimizer: Optimizer,
    *,
    total_steps: int,
    warmup_steps: int = 0,
    step_size: int | None = None,
    gamma: float = 0.1,
    eta_min: float = 0.0,
    T_mult: int = 1,
    max_lr: float | None = None,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
    anneal_strategy: str = "cos",
    decay_steps: int | None = None,
    decay_shape: str = "linear",
    factor: float = 0.5,
    patience: int = 0,
) -> Any:
    """One of :data:`SCHEDULE_NAMES`, built from :mod:`optim_lessons.schedulers`, counted in
    optimizer steps.

    - ``constant``: :class:`~optim_lessons.schedulers.ConstantLR` with ``factor=1`` (no change).
    - ``warmup_cosine``: :class:`~optim_lessons.schedulers.LinearLR` from 1/``div_factor`` of the
      rate up to it over ``warmup_steps``, then
      :class:`~optim_lessons.schedulers.CosineAnnealingLR` down to ``eta_min`` over the rest,
      joined by :class:`~optim_lessons.schedulers.SequentialLR`.
    - ``step``: :class:`~optim_lessons.schedulers.StepLR`, times ``gamma`` every ``step_size``.
    - ``cosine``: :class:`~optim_lessons.schedulers.CosineAnnealingLR` over ``total_steps``.
    - ``warm_restarts``: :class:`~optim_lessons.schedulers.CosineAnnealingWarmRestarts` (SGDR),
      a first cycle of ``step_size`` steps, each next one ``T_mult`` times longer.
    - ``one_cycle``: :class:`~optim_lessons.schedulers.OneCycleLR` peaking at ``max_lr``
      (default: the optimizer's current rate), with ``three_phase`` and ``anneal_strategy``.
    - ``wsd``: :class:`~optim_lessons.schedulers.WarmupStableDecayLR`: ``warmup_steps`` up,
      constant, then down to ``eta_min`` (as a share of the rate) over the last
      ``decay_steps`` (default a fifth of the run) along ``decay_shape``.
    - ``plateau``: :class:`~optim_lessons.schedulers.ReduceLROnPlateau` (``factor``,
      ``patience``); its ``step`` takes the metric it watches.

    ``step_size`` (for ``step`` and ``warm_restarts``) defaults to a third of the run.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be at least 1, got {total_steps}")
    if step_size is not None and (
        isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1
    ):
        # StepLR itself takes 0 and divides by it at its first step
        raise ValueError(
            f"step_size must be a positive integer (steps between two cuts of the rate), "
            f"got {step_size!r}"
        )
    size = step_size if step_size is not None else max(total_steps // 3, 1)
    rate = float(optimizer.param_groups[0]["lr"])
    if name == "constant":
        return schedulers.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if name == "warmup_cosine":
        warmup_steps = min(max(warmup_steps, 1), total_steps - 1) if total_steps > 1 else 0
        if warmup_steps == 0:
            return schedulers.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=eta_min)
        warmup = schedulers.LinearLR(
            optimizer, start_factor=1.0 / div_factor, end_factor=1.0, total_iters=warmup_steps
        )
        decay = schedulers.CosineAnnealingLR(
            optimizer, T_max=total_steps - warmup_steps, eta_min=eta_min
        )
        return schedulers.SequentialLR(optimizer, [warmup, decay], milestones=[warmup_steps])
    if name == "step":
        return schedulers.StepLR(optimizer, step_size=size, gamma=gamma)
    if name == "cosine":
        return schedulers.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=eta_min)
    if name == "warm_restarts":
        return schedulers.CosineAnnealingWarmRestarts(
            optimizer, T_0=size, T_mult=int(T_mult), eta_min=eta_min
        )
    if name == "one_cycle":
        return schedulers.OneCycleLR(
            optimizer,
            max_lr=max_lr if max_lr is not None else rate,
            total_steps=total_steps,
            pct_start=float(pct_start),
            div_factor=div_factor,
            final_div_factor=final_div_factor,
            three_phase=bool(three_phase),
            anneal_strategy=anneal_strategy,
        )
    if name == "wsd":
        decay = max(total_steps // 5, 1) if decay_steps is None else int(decay_steps)
        warmup = min(max(int(warmup_steps), 0), total_steps - decay)
        return schedulers.WarmupStableDecayLR(
            optimizer,
            warmup_steps=warmup,
            stable_steps=max(total_steps - warmup - decay, 0),
            decay_steps=decay,
            min_lr_ratio=min(eta_min / rate, 1.0) if rate > 0 else 0.0,
            decay_shape=decay_shape,
        )
    if name == "plateau":
        return schedulers.ReduceLROnPlateau(optimizer, factor=factor, patience=patience)
    raise ValueError(f"Unknown schedule {name!r}; choose one of {SCHEDULE_NAMES}")


def plateau_metric(
    steps: int, *, improve_until: int | None = None, noise: float = 0.0, seed: int = 0
) -> list[float]:
    """A made-up validation loss for drawing ReduceLROnPlateau without training.

    It falls like ``1 / (1 + step / 50)`` until ``improve_until`` (default: a third of
    ``steps``), then stays flat, plus optional Gaussian ``noise`` (seeded).
    """
    improve_until = steps // 3 if improve_until is None else improve_until
    generator = torch.Generator().manual_seed(seed)
    wiggle = torch.randn(steps, generator=generator, dtype=torch.float64) * noise
    return [1.0 / (1.0 + min(i, improve_until) / 50.0) + float(wiggle[i]) for i in range(steps)]


def schedule_explorer(*, epochs: int = 5, steps_per_epoch: int = 100, lr: float = 0.1) -> Any:
    """An ipywidgets panel: pick a schedule, move its sliders, watch the curve (needs a kernel).

    The curve is :func:`record_lrs` of :func:`make_scheduler`; the plateau schedule watches
    :func:`plateau_metric`. Each schedule reads only the controls it needs (see
    :func:`make_scheduler`). On a page without a kernel the sliders do nothing: the chapter
    shows a pre-rendered animation there instead.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    total = epochs * steps_per_epoch
    style = {"description_width": "110px"}
    layout = widgets.Layout(width="380px")
    controls = {
        "name": widgets.Dropdown(
            options=SCHEDULE_NAMES, value="one_cycle", description="schedule", style=style
        ),
        "warmup_steps": widgets.IntSlider(
            value=steps_per_epoch,
            min=0,
            max=total // 2,
            step=max(total // 50, 1),
            description="warmup steps",
            style=style,
            layout=layout,
        ),
        "step_size": widgets.IntSlider(
            value=steps_per_epoch,
            min=1,
            max=total,
            step=max(total // 50, 1),
            description="step_size",
            style=style,
            layout=layout,
        ),
        "gamma": widgets.FloatSlider(
            value=0.3,
            min=0.05,
            max=0.95,
            step=0.05,
            description="gamma",
            style=style,
            layout=layout,
        ),
        "T_mult": widgets.IntSlider(
            value=1, min=1, max=3, description="T_mult", style=style, layout=layout
        ),
        "pct_start": widgets.FloatSlider(
            value=0.3,
            min=0.05,
            max=0.95,
            step=0.05,
            description="pct_start",
            style=style,
            layout=layout,
        ),
        "div_factor": widgets.FloatLogSlider(
            value=25.0,
            base=10,
            min=0,
            max=3,
            step=0.1,
            description="div_factor",
            style=style,
            layout=layout,
        ),
        "three_phase": widgets.Checkbox(value=False, description="three_phase", style=style),
        "anneal_strategy": widgets.Dropdown(
            options=("cos", "linear"), value="cos", description="anneal_strategy", style=style
        ),
        "decay_steps": widgets.IntSlider(
            value=max(total // 5, 1),
            min=1,
            max=total,
            step=max(total // 50, 1),
            description="decay_steps",
            style=style,
            layout=layout,
        ),
        "decay_shape": widgets.Dropdown(
            options=schedulers.wsd.DECAY_SHAPES,
            value="linear",
            description="decay_shape",
            style=style,
        ),
        "eta_min": widgets.FloatSlider(
            value=0.0,
            min=0.0,
            max=lr / 2,
            step=lr / 100,
            readout_format=".3f",
            description="eta_min",
            style=style,
            layout=layout,
        ),
        "patience": widgets.IntSlider(
            value=1, min=0, max=20, description="patience (steps)", style=style, layout=layout
        ),
    }
    output = widgets.Output()

    def redraw(*_: Any) -> None:
        values = {key: control.value for key, control in controls.items()}
        name = values.pop("name")
        metric = plateau_metric(total) if name == "plateau" else None
        trace = record_lrs(
            lambda optimizer: make_scheduler(name, optimizer, total_steps=total, **values),
            total,
            lr=lr,
            metrics=metric,
        )
        with output:
            output.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(7, 3.6))
            plot_schedules(
                {name: trace},
                ax=ax,
                title=f"{name}: lr against step",
                steps_per_epoch=steps_per_epoch,
            )
            ax.set_ylim(0, lr * 1.08)
            plt.show()

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    return widgets.HBox([widgets.VBox(list(controls.values())), output])


# ----------------------------------------------------------------------------------- exercises


def check_schedule(
    candidate: Callable[[int], float] | Sequence[float],
    expected: Sequence[float],
    *,
    rel_tol: float = 1e-9,
    abs_tol: float = 1e-12,
) -> bool:
    """Compare your schedule with the reference, step by step; print the verdict; return it.

    ``candidate`` is either a function ``step -> lr`` or a list of rates. The first step where
    the two disagree (beyond ``rel_tol``/``abs_tol``) is printed, so you can see where your
    formula goes wrong.
    """
    values = (
        [float(candidate(i)) for i in range(len(expected))]
        if callable(candidate)
        else list(candidate)
    )
    if len(values) != len(expected):
        print(f"Not yet: {len(values)} values, but the reference has {len(expected)} steps.")
        return False
    for i, (got, want) in enumerate(zip(values, expected, strict=True)):
        if not math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol):
            print(f"Not yet: step {i} gives {got:.6g}, the scheduler gives {want:.6g}.")
            return False
    print(f"Correct: all {len(expected)} steps match the scheduler.")
    return True
