"""What the benchmark's results file says: scores with 95% intervals, tiers, performance profiles.

Everything here reads the records that :mod:`optim_lessons.benchmarks.run` wrote; nothing is
trained. Runs that are missing (a benchmark still running, or cut short) are never filled in:
:meth:`Results.missing` lists them, a submission without its seed runs has no score, and a
workload without every submission's seed runs is left out of the performance profiles (a ratio
to "the best" means nothing while some entrants have not run).

**Intervals.** Each chosen setting runs with ``n`` seeds (3 in the full benchmark). The 95%
interval of a mean is :math:`\\bar x \\pm t_{0.975,\\,n-1}\\, s/\\sqrt n`, Student's t because
``n`` is small (for 3 seeds :math:`t = 4.303`: an interval about 5 standard deviations wide).

**Tiers.** On each workload, the submissions are sorted by their mean test accuracy. The first
tier holds the best and every submission whose interval overlaps the best's; the next tier starts
at the best submission left, and so on. Overlapping intervals do not prove two submissions equal;
separate tiers do say the order is not noise from the seeds.

**Performance profiles** {cite}`dolan2002benchmarking`, as AlgoPerf uses them
{cite}`dahl2023benchmarking`: a submission's time to the target on a workload is the median
over its seeds (infinite when fewer than half the seeds reach it); its ratio is that time over
the fastest submission's (a workload on which no submission reached the target is left out: it
has no fastest); its profile :math:`\\rho(\\tau)` is the share of workloads on which
its ratio is at most :math:`\\tau`. The *score* is the area under :math:`\\rho` for
:math:`\\log\\tau` from 0 to :math:`\\log 4`, divided by :math:`\\log 4` (1: fastest everywhere;
0: never within 4 times the fastest).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optim_lessons.tables import TextTable

#: Student's t quantile 0.975 for 1 to 9 degrees of freedom.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}

#: The profile's range of ratios, as AlgoPerf's.
TAU_MAX = 4.0

#: Families, for the figures' colours (a colour per family, a marker per member).
FAMILIES = {
    "SGD family": ("SGD", "ASGD"),
    "Adam family": ("Adam", "AdamW", "NAdam", "RAdam", "Adamax"),
    "other adaptive": ("Adagrad", "Adadelta", "RMSprop", "Adafactor"),
    "sign, orthogonal, schedule-free": ("Rprop", "Lion", "Muon+AdamW", "SF-AdamW"),
}


@dataclass
class Interval:
    """A mean over seeds and its 95% interval."""

    mean: float
    half_width: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Interval:
        values = [float(v) for v in values]
        if len(values) < 2:
            return cls(values[0] if values else math.nan, math.inf, len(values))
        return cls(
            statistics.fmean(values),
            T975[len(values) - 1] * statistics.stdev(values) / math.sqrt(len(values)),
            len(values),
        )

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.half_width:.4f}"


@dataclass
class Entry:
    """One submission on one workload: its chosen trial and its seed runs."""

    workload: str
    submission: str
    trials: list[dict[str, Any]]
    seeds: list[dict[str, Any]]
    expected_seeds: int

    @property
    def complete(self) -> bool:
        return len(self.seeds) == self.expected_seeds

    @property
    def chosen(self) -> dict[str, Any] | None:
        if not self.seeds:
            return None
        index = self.seeds[0]["chosen_trial"]
        return next(t for t in self.trials if t["index"] == index)

    def interval(self, key: str) -> Interval:
        return Interval.of([s[key] for s in self.seeds])

    def median_to_target(self, key: str = "steps_to_target") -> float:
        """Median over the seeds of steps (or CPU-seconds) to the target; inf where fewer than
        half the seeds reached it."""
        times = sorted(math.inf if s[key] is None else s[key] for s in self.seeds)
        return statistics.median(times) if times else math.inf

    @property
    def reached(self) -> int:
        return sum(s["steps_to_target"] is not None for s in self.seeds)

    @property
    def state_bytes(self) -> float:
        runs = self.seeds or self.trials
        return runs[0]["state_bytes_per_parameter"] if runs else math.nan


@dataclass
class Results:
    """The runs of a results file, arranged by workload and submission."""

    workloads: tuple[str, ...]
    submissions: tuple[str, ...]
    trials: int
    seeds: tuple[int, ...]
    runs: dict[tuple, dict[str, Any]] = field(repr=False)

    @classmethod
    def from_runs(cls, runs: dict[tuple, dict[str, Any]], config: Any) -> Results:
        return cls(
            tuple(config.workloads),
            tuple(config.submissions),
            config.trials,
            tuple(config.seeds),
            runs,
        )

    @classmethod
    def from_file(cls, path: Path | str | None = None, config: Any = None) -> Results:
        from optim_lessons.benchmarks.run import FULL, RESULTS, load

        sessions, runs = load(RESULTS if path is None else path)
        return cls.from_runs(runs, FULL if config is None else config)

    def entry(self, workload: str, submission: str) -> Entry:
        trials = [
            self.runs[(workload, submission, "trial", i)]
            for i in range(self.trials)
            if (workload, submission, "trial", i) in self.runs
        ]
        seeds = [
            self.runs[(workload, submission, "seed", s)]
            for s in self.seeds
            if (workload, submission, "seed", s) in self.runs
        ]
        return Entry(workload, submission, trials, seeds, len(self.seeds))

    def without_decay(self, workload: str, submission: str = "AdamW") -> list[dict[str, Any]]:
        """The seed runs of the chosen setting with its weight decay set to zero."""
        return [
            self.runs[(workload, submission, "no_wd", s)]
            for s in self.seeds
            if (workload, submission, "no_wd", s) in self.runs
        ]

    def missing(self) -> list[str]:
        """What the plan holds that the file does not, one line per workload."""
        lines = []
        for w in self.workloads:
            trials = sum(
                (w, s, "trial", i) not in self.runs
                for s in self.submissions
                for i in range(self.trials)
            )
            seeds = sum(
                (w, s, "seed", x) not in self.runs for s in self.submissions for x in self.seeds
            )
            if trials or seeds:
                total_t, total_s = (
                    len(self.submissions) * self.trials,
                    len(self.submissions) * len(self.seeds),
                )
                lines.append(
                    f"{w}: {trials} of {total_t} trials and {seeds} of {total_s} seed runs missing"
                )
        return lines

    def complete_workloads(self) -> list[str]:
        return [
            w for w in self.workloads if all(self.entry(w, s).complete for s in self.submissions)
        ]

    # ------------------------------------------------------------------ tiers

    def ranked(self, workload: str, key: str = "test_accuracy") -> list[tuple[str, Interval]]:
        """The submissions with all their seed runs, best mean first."""
        rows = [
            (s, self.entry(workload, s).interval(key))
            for s in self.submissions
            if self.entry(workload, s).complete
        ]
        return sorted(rows, key=lambda row: -row[1].mean)

    def tiers(self, workload: str, key: str = "test_accuracy") -> list[list[str]]:
        """Groups of submissions whose intervals overlap the best of the group (see above)."""
        rows = self.ranked(workload, key)
        groups: list[list[str]] = []
        while rows:
            best = rows[0][1]
            group = [name for name, interval in rows if interval.high >= best.low]
            groups.append(group)
            rows = [row for row in rows if row[0] not in group]
        return groups

    # ------------------------------------------------------------------ profiles

    def profiled_workloads(self, key: str = "steps_to_target") -> list[str]:
        """The complete workloads on which at least one submission reached the target (a
        workload nobody solved has no fastest submission to measure the others against)."""
        return [
            w
            for w in self.complete_workloads()
            if any(math.isfinite(self.entry(w, s).median_to_target(key)) for s in self.submissions)
        ]

    def ratios(self, key: str = "steps_to_target") -> dict[str, dict[str, float]]:
        """Each submission's time over the fastest, on each profiled workload."""
        out: dict[str, dict[str, float]] = {s: {} for s in self.submissions}
        for w in self.profiled_workloads(key):
            times = {s: self.entry(w, s).median_to_target(key) for s in self.submissions}
            fastest = min(times.values())
            for s, t in times.items():
                out[s][w] = t / fastest
        return out

    def profile(
        self, submission: str, taus: Sequence[float], key: str = "steps_to_target"
    ) -> list[float]:
        ratios = list(self.ratios(key)[submission].values())
        if not ratios:
            return [math.nan for _ in taus]
        return [sum(r <= tau for r in ratios) / len(ratios) for tau in taus]

    def score(self, submission: str, key: str = "steps_to_target", points: int = 400) -> float:
        """Area under the profile for log tau in [0, log TAU_MAX], over log TAU_MAX."""
        taus = [TAU_MAX ** (i / (points - 1)) for i in range(points)]
        values = self.profile(submission, taus, key)
        return sum(values) / len(values)

    # ------------------------------------------------------------------ text

    def table(self, workload: str) -> TextTable:
        """One workload: chosen setting's seeds, scores with intervals, time to target, state.

        Best mean test accuracy first; a submission without seed runs says how far it got."""
        columns = [
            "submission",
            "seeds",
            "reached",
            "val acc (95%)",
            "test acc (95%)",
            "steps",
            "CPU s",
            "state B/param",
        ]
        rows = []
        ranked = [name for name, _ in self.ranked(workload)]
        for s in ranked + [s for s in self.submissions if s not in ranked]:
            e = self.entry(workload, s)
            if not e.seeds:
                rows.append(
                    [
                        s,
                        "0",
                        "-",
                        f"({len(e.trials)} of {self.trials} trials done)",
                        "-",
                        "-",
                        "-",
                        "-",
                    ]
                )
                continue
            steps, cpu = e.median_to_target(), e.median_to_target("cpu_to_target")
            rows.append(
                [
                    s,
                    str(len(e.seeds)),
                    str(e.reached),
                    str(e.interval("val_accuracy")),
                    str(e.interval("test_accuracy")),
                    "-" if math.isinf(steps) else f"{steps:.0f}",
                    "-" if math.isinf(cpu) else f"{cpu:.2f}",
                    f"{e.state_bytes:.2f}",
                ]
            )
        return TextTable(
            columns,
            rows,
            right={1, 2, 3, 4, 5, 6, 7},
            caption=f"{workload}: the chosen setting of each submission over its seeds",
        )

    def summary(self) -> str:
        parts = []
        for w in self.workloads:
            parts.append(f"== {w} ==\n{self.table(w)}")
            tiers = self.tiers(w)
            if tiers:
                parts.append(
                    "tiers (test accuracy): " + " > ".join("{" + ", ".join(t) + "}" for t in tiers)
                )
        done = self.profiled_workloads()
        if done:
            scores = sorted(((self.score(s), s) for s in self.submissions), reverse=True)
            parts.append(
                f"profile scores (steps to target, over {', '.join(done)}): "
                + ", ".join(f"{s} {v:.2f}" for v, s in scores)
            )
        missing = self.missing()
        parts.append("missing: " + ("; ".join(missing) if missing else "nothing"))
        return "\n".join(parts)


# ---------------------------------------------------------------------- figures


def _style(submission: str) -> dict[str, Any]:
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:purple")
    markers = ("o", "s", "^", "D", "v")
    for index, members in enumerate(FAMILIES.values()):
        if submission in members:
            return {"color": colors[index], "marker": markers[members.index(submission)]}
    return {"color": "black", "marker": "x"}


def plot_tiers(results: Results, key: str = "test_accuracy", axes: Any = None) -> Any:
    """One panel per complete workload: each submission's mean and 95% interval, best at top,
    tiers separated by grey bands."""
    import matplotlib.pyplot as plt

    workloads = [w for w in results.workloads if results.ranked(w, key)]
    if axes is None:
        figure, axes = plt.subplots(
            1, len(workloads), figsize=(4.2 * len(workloads), 5.2), squeeze=False
        )
        axes = axes[0]
    for ax, w in zip(axes, workloads):
        ranked = results.ranked(w, key)
        tier_of = {s: i for i, tier in enumerate(results.tiers(w, key)) for s in tier}
        for row, (s, interval) in enumerate(ranked):
            y = len(ranked) - 1 - row
            if tier_of[s] % 2:
                ax.axhspan(y - 0.5, y + 0.5, color="0.92", zorder=0)
            style = _style(s)
            ax.errorbar(
                interval.mean,
                y,
                xerr=interval.half_width,
                fmt=style["marker"],
                color=style["color"],
                capsize=3,
            )
        ax.set_yticks(range(len(ranked)), [s for s, _ in reversed(ranked)])
        low = min(i.low for _, i in ranked)
        high = max(i.high for _, i in ranked)
        margin = 0.03 * (high - low)
        ax.set_xlim(max(0.0, low - margin), min(1.0, high + margin))
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(f"{w}: {key.replace('_', ' ')}")
        ax.set_xlabel("mean over seeds, 95% interval")
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=_style(members[0])["color"], marker="o", linestyle="", label=family)
        for family, members in FAMILIES.items()
    ]
    axes[0].figure.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    axes[0].figure.tight_layout(rect=(0, 0.06, 1, 1))
    return axes[0].figure


def plot_profiles(results: Results, key: str = "steps_to_target") -> Any:
    """Performance profiles, one panel per family (a few lines each), with the best of all the
    other submissions in grey for reference."""
    import matplotlib.pyplot as plt

    taus = [TAU_MAX ** (i / 399) for i in range(400)]
    figure, axes = plt.subplots(1, len(FAMILIES), figsize=(16, 3.8), sharey=True)
    for ax, (family, members) in zip(axes, FAMILIES.items()):
        for s in results.submissions:
            if s not in members:
                ax.step(taus, results.profile(s, taus, key), where="post", color="0.85", lw=1)
        for s in members:
            if s in results.submissions:
                style = _style(s)
                ax.step(
                    taus,
                    results.profile(s, taus, key),
                    where="post",
                    lw=2,
                    color=style["color"],
                    label=s,
                    linestyle=("-", "--", ":", "-.", (0, (5, 1)))[members.index(s)],
                )
        ax.set_xscale("log")
        ax.set_xlim(1, TAU_MAX)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xticks([1, 1.5, 2, 3, 4], ["1", "1.5", "2", "3", "4"])
        ax.minorticks_off()
        ax.set_title(family)
        ax.set_xlabel("τ (time over the fastest)")
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set_ylabel("share of workloads within τ")
    what = "steps" if key == "steps_to_target" else "CPU-seconds"
    figure.suptitle(
        f"Performance profiles: {what} to the validation target "
        f"(over {', '.join(results.profiled_workloads(key))})"
    )
    figure.tight_layout()
    return figure
