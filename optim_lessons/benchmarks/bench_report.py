"""The step-time benchmark's report: its tables, the goals it checks, and the machine it ran on.

:mod:`optim_lessons.benchmarks.bench` times the optimizers; this module turns its rows into the
printed tables (with the roofline columns), the spread of the timed steps, the goal summary, and
the environment block (CPU, bfloat16 support and cost, torch's version, threads, bandwidth)
written beside the results.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from optim_lessons.benchmarks import roofline

#: The goals: ours at most GOAL_RATIO x torch's for-loop step; flat at most torch's foreach;
#: compiled at most COMPILED_GOAL x torch's fused.
GOAL_RATIO = 1.25
FLAT_GOAL = 1.0
COMPILED_GOAL = 1.1

#: Notes printed under the table for the optimizers that need a special set-up.
SETUP_NOTES = {
    "LBFGS": "closure returns a fixed loss, .grad left as is (one inner iteration, no history)",
    "Muon": "2-D weights only (Muon takes no biases); the roofline is a loose lower bound",
    "SparseAdam": "embedding table with sparse gradients; roofline over the rows it touches",
    "SGD": "momentum=0.9",
}

#: Why Muon is slow on most CPUs, printed whenever Muon is timed or left out.
MUON_NOTE = (
    "Muon orthogonalizes each update with five Newton-Schulz iterations, three matrix products "
    "each, and runs them in bfloat16, as on a GPU. A CPU without bfloat16 arithmetic "
    "(no AVX512_BF16 or AMX) converts every bfloat16 product to float32 and back in software, "
    "far from its float32 speed: on the large model's 6400 x 784 matrix that is tens of seconds "
    "per step. The default run leaves Muon at large out; --all times it."
)

#: Column order of the implementations in the table.
LABELS = ("ours", "for-loop", "foreach", "fused", "flat", "compiled", "triton")
OURS_LABELS = ("ours", "flat", "compiled", "triton")
TORCH_LABELS = ("for-loop", "foreach", "fused")


@dataclass
class BenchRow:
    """One optimizer on one model size: every implementation's step times, and the limit."""

    optimizer: str
    size: str
    n_params: int
    #: Every timed step, in ms, by implementation label; the medians come from these.
    samples_ms: dict[str, list[float]]
    ours_state_bytes_per_param: float
    torch_state_bytes_per_param: float
    device: str
    #: The shortest step the memory traffic allows, in ms (None: no roofline for it).
    roofline_ms: float | None = None
    #: Implementations that could not run here, and why.
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def median(self, label: str) -> float | None:
        samples = self.samples_ms.get(label)
        return statistics.median(samples) if samples else None

    def paired_ratio(self, label: str, reference: str) -> float | None:
        """``label``'s step over ``reference``'s: the median over the rounds of the ratio of
        the two steps timed in the same round (a change in the machine's load between rounds
        cancels out)."""
        if label not in self.samples_ms or reference not in self.samples_ms:
            return None
        pairs = zip(self.samples_ms[label], self.samples_ms[reference], strict=True)
        return statistics.median(a / b for a, b in pairs)

    @property
    def ours_ms(self) -> float:
        return statistics.median(self.samples_ms["ours"])

    @property
    def torch_for_loop_ms(self) -> float:
        return statistics.median(self.samples_ms["for-loop"])

    @property
    def ratio(self) -> float:
        """ours / torch for-loop, below 1 when ours is faster."""
        ratio = self.paired_ratio("ours", "for-loop")
        assert ratio is not None
        return ratio

    @property
    def meets_goal(self) -> bool:
        return self.ratio <= GOAL_RATIO

    @property
    def steps_timed(self) -> int:
        return len(self.samples_ms["ours"])

    def percent_of_roofline(self, labels: Sequence[str]) -> float | None:
        """The limit over the fastest of ``labels``'s median steps, in percent."""
        times = [self.median(label) for label in labels if label in self.samples_ms]
        if not times or self.roofline_ms is None:
            return None
        return roofline.percent_of_roofline(min(times), self.roofline_ms)




def _cell(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def table_columns(rows: Sequence[BenchRow]) -> list[tuple[str, int]]:
    """The table's columns, header and width; ``triton`` only where some row has it."""
    columns = [("optimizer", 12), ("size", 6), ("params", 10)]
    columns += [("ours", 9), ("for-loop", 9), ("ours/loop", 10)]
    columns += [("foreach", 9), ("fused", 8), ("flat", 8), ("compiled", 9)]
    if any("triton" in row.samples_ms for row in rows):
        columns.append(("triton", 8))
    columns += [("roofline", 9), ("%roof ours", 11), ("%roof torch", 12)]
    columns += [("state B/p", 10), ("steps", 6)]
    return columns


def format_table(rows: Sequence[BenchRow]) -> str:
    """The rows as a fixed-width text table (median ms per step), with notes below it."""
    columns = table_columns(rows)

    def line(values: Sequence[str]) -> str:
        return "".join(
            value.ljust(width) if i < 2 else value.rjust(width)
            for i, (value, (_, width)) in enumerate(zip(values, columns, strict=True))
        )

    lines = [line([header for header, _ in columns])]
    lines.append("-" * len(lines[0]))
    for row in rows:
        ours_bytes, torch_bytes = row.ours_state_bytes_per_param, row.torch_state_bytes_per_param
        state = f"{ours_bytes:.2f}"
        if abs(ours_bytes - torch_bytes) > 0.005:
            state = f"{ours_bytes:.1f}/{torch_bytes:.1f}"
        values = {
            "optimizer": row.optimizer + ("*" if row.optimizer in SETUP_NOTES else ""),
            "size": row.size,
            "params": f"{row.n_params:,}",
            "ours/loop": f"{row.ratio:.2f}",
            "roofline": _cell(row.roofline_ms, 3),
            "%roof ours": _cell(row.percent_of_roofline(OURS_LABELS), 0, "%"),
            "%roof torch": _cell(row.percent_of_roofline(TORCH_LABELS), 0, "%"),
            "state B/p": state,
            "steps": str(row.steps_timed),
        }
        for label in LABELS:
            values[label] = _cell(row.median(label), 3)
        lines.append(line([values[header] for header, _ in columns]))
    lines.append("")
    lines.append(
        "  median ms per step; '-': no such path. roofline: an in-place pass moving as many bytes "
        "as a step must move, timed in the same rounds; %roof: roofline / fastest step (ours: "
        "ours, flat, compiled, triton; torch: for-loop, foreach, fused). state B/p: optimizer "
        "state, bytes per parameter"
    )
    for name in dict.fromkeys(r.optimizer for r in rows):
        if name in SETUP_NOTES:
            lines.append(f"  * {name}: {SETUP_NOTES[name]}")
    for row in rows:
        for label, why in row.skipped.items():
            lines.append(f"  {row.optimizer} ({row.size}): no {label} column: {why}")
    return "\n".join(lines)


def format_spread(rows: Sequence[BenchRow]) -> str:
    """Each implementation's median with the quartiles and extremes of its steps, in ms."""
    lines = ["optimizer    size   path       median   [q1 - q3]           [min - max]"]
    for row in rows:
        for label in (*LABELS, "stream"):
            samples = row.samples_ms.get(label)
            if not samples:
                continue
            q1, _, q3 = statistics.quantiles(samples, n=4) if len(samples) > 1 else [samples[0]] * 3
            lines.append(
                f"{row.optimizer:<12} {row.size:<6} {label:<9} {statistics.median(samples):8.3f}"
                f"   [{q1:.3f} - {q3:.3f}]   [{min(samples):.3f} - {max(samples):.3f}]"
            )
    return "\n".join(lines)


def goal_summary(rows: Sequence[BenchRow], size: str = "large") -> str:
    """The goals at ``size``, each with the optimizers that miss it (ratios of paired steps)."""
    judged = [r for r in rows if r.size == size]
    if not judged:
        return f"goal (ours <= {GOAL_RATIO}x torch for-loop): no {size} runs to judge"
    lines = []
    misses = [f"{r.optimizer} ({r.ratio:.2f}x)" for r in judged if not r.meets_goal]
    verdict = "all met" if not misses else "missed by " + ", ".join(misses)
    lines.append(f"goal (ours <= {GOAL_RATIO}x torch for-loop at {size}): {verdict}")
    targets = (("flat", "foreach", FLAT_GOAL), ("compiled", "fused", COMPILED_GOAL))
    for label, reference, goal in targets:
        ratios = [
            (r.optimizer, r.paired_ratio(label, reference))
            for r in judged
            if r.paired_ratio(label, reference) is not None
        ]
        if ratios:
            figures = ", ".join(
                f"{name} {ratio:.2f}x{'' if ratio <= goal else ' (missed)'}"
                for name, ratio in ratios
            )
            lines.append(f"goal ({label} <= {goal}x torch {reference} at {size}): {figures}")
    return "\n".join(lines)


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_bfloat16() -> bool | None:
    """Whether the CPU does bfloat16 arithmetic in hardware (AVX512_BF16 or AMX); None where
    the flags cannot be read."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bfloat16_slowdown(n: int = 512, repeats: int = 5) -> float:
    """How many times longer an n x n matrix product takes in bfloat16 than in float32 here."""
    a32, b32 = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a32.bfloat16(), b32.bfloat16()

    def median_time(a: Tensor, b: Tensor) -> float:
        a @ b
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return median_time(a16, b16) / median_time(a32, b32)


def environment(device: torch.device, bandwidth: roofline.Bandwidth) -> dict[str, str]:
    """What the numbers depend on, for the results file."""
    info = {
        "cpu": f"{cpu_model()} ({os.cpu_count()} logical cores)",
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
        "cpu capability": torch.backends.cpu.get_cpu_capability(),
        "bfloat16 in hardware": {True: "yes", False: "no", None: "unknown"}[cpu_has_bfloat16()],
        "device": str(device),
        "bandwidth": (
            f"copy {bandwidth.copy / 1e9:.1f} GB/s, in-place {bandwidth.in_place / 1e9:.1f} GB/s, "
            f"several streams {bandwidth.streams / 1e9:.1f} GB/s (at the start, "
            f"{bandwidth.buffer_bytes >> 20} MiB; the roofline column is timed in each row's own "
            "rounds)"
        ),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    if hasattr(os, "getloadavg"):
        info["load average at the end"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return info
