"""The numerics policy: the settings under which the notebooks' stored outputs are written and
checked, so that any x86-64 CPU with AVX2 (Intel or AMD, with or without AVX-512) computes the
same bits.

Why it is needed: a float32 training run amplifies a difference in the last bit of one matrix
product into a different fourth decimal of the test accuracy after a few epochs. The libraries
under torch pick their code path from the CPU they find, so two machines that both run
"the same code" add the same numbers in different orders:

- ATen, torch's own kernels (``randn``, elementwise maths, reductions), picks AVX-512, AVX2 or
  plain code at start-up: ``ATEN_CPU_CAPABILITY`` fixes the choice.
- MKL, which computes ``nn.Linear``'s matrix products on the CPU, picks its code by processor
  model and vendor and blocks by cache size: ``MKL_CBWR=COMPATIBLE`` (conditional numerical
  reproducibility) fixes one SSE2 path with fixed blocking, the only branch that Intel
  documents as giving the same results on Intel and non-Intel processors.
- oneDNN, which computes convolutions, picks its ISA the same way: ``ONEDNN_MAX_CPU_ISA`` caps it.
- More threads split reductions differently: one thread everywhere.

Every setting is an environment variable that the libraries read once, when they start, so it
must be in place before ``import torch``, in the process that computes: for the notebooks, the
Jupyter kernel, which inherits the environment of the process that starts it. The repository's
``conftest.py`` calls :func:`apply` before anything imports torch, so ``pytest --nbval`` gets
the policy with or without the Makefile; ``make execute`` runs ``jupyter execute`` through
``python -m optim_lessons.numerics``, which applies it and then starts the command.

A variable that the user has already set keeps its value (an experiment may want exactly
that), and :func:`header` says so at the top of the test session. Where the pins cannot apply
(an ARM machine, a CPU without AVX2), the header says so once, and the cells that print results
of long float computations are still checked, by their assertions, while nbval ignores their
printed digits.

``python -m optim_lessons.numerics --knobs`` measures what each setting changes and costs on
the machine at hand (the table in ``book/how_to_run.md`` came from it).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, Sequence

#: The settings, in the order a reader should meet them. Values are strings: they go into the
#: environment of every process that computes a stored output.
POLICY: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

#: Why each setting is there, for the session header and the docs.
REASONS: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "torch's own kernels use AVX2 code, not AVX-512 or plain code",
    "MKL_CBWR": "MKL's matrix products take one code path on Intel and AMD",
    "ONEDNN_MAX_CPU_ISA": "oneDNN's convolutions use at most AVX2",
    "OMP_NUM_THREADS": "one thread: reductions are not split differently",
    "MKL_NUM_THREADS": "one thread inside MKL too",
}

#: ``ATEN_CPU_CAPABILITY=avx2`` is trusted by torch without a check: on a CPU without AVX2 it
#: would stop the process with an illegal instruction, so the policy leaves it out there.
_NEEDS_AVX2 = {"ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"}

#: Set when :func:`apply` finds torch already imported: then this process's libraries started
#: with whatever they found, and only child processes follow the policy.
_torch_came_first = False


def is_x86_64() -> bool:
    return platform.machine().lower() in {"x86_64", "amd64"}


def cpu_has_avx2() -> bool:
    """True when the CPU reports AVX2 (read from /proc/cpuinfo on Linux; assumed elsewhere)."""
    if not is_x86_64():
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    return " avx2" in line
    except OSError:
        pass
    return True  # macOS and Windows on x86-64: every such machine sold since 2015 has AVX2


def applicable() -> tuple[dict[str, str], str | None]:
    """The settings this machine can take, and why some (or all) are left out, if they are."""
    if not is_x86_64():
        return {}, (
            f"this is not an x86-64 machine ({platform.machine()}): the stored outputs were "
            "written on x86-64 and its bits cannot be reproduced here; exact cells are compared, "
            "and cells of long float computations are checked by their assertions only"
        )
    if not cpu_has_avx2():
        settings = {k: v for k, v in POLICY.items() if k not in _NEEDS_AVX2}
        return settings, (
            "this CPU has no AVX2, so torch's AVX2 kernels cannot be pinned: training numbers "
            "differ in the last digits; cells of long float computations are checked by their "
            "assertions"
        )
    return dict(POLICY), None


def apply(environ: os._Environ | dict[str, str] | None = None) -> dict[str, str]:
    """Put the policy into ``environ`` (``os.environ`` by default) without overriding what the
    user set, and return the settings that differ from the policy because the user set them.

    Must run before torch is imported in the process that computes; child processes (Jupyter
    kernels, pytest-xdist workers) inherit the result.
    """
    global _torch_came_first
    environ = os.environ if environ is None else environ
    _torch_came_first = _torch_came_first or "torch" in sys.modules
    settings, _ = applicable()
    overridden = {}
    for name, value in settings.items():
        current = environ.get(name)
        if current is None:
            environ[name] = value
        elif current != value:
            overridden[name] = current
    return overridden


def header(environ: Mapping[str, str] | None = None) -> list[str]:
    """Lines for the top of a test session: what is pinned, and anything that is not."""
    environ = os.environ if environ is None else environ
    settings, reason = applicable()
    pinned = " ".join(f"{name}={environ.get(name, value)}" for name, value in settings.items())
    lines = [f"numerics policy (optim_lessons/numerics.py): {pinned or 'nothing pinned'}"]
    if reason:
        lines.append(f"numerics policy: {reason}")
    for name, value in settings.items():
        if environ.get(name, value) != value:
            lines.append(
                f"numerics policy: {name}={environ[name]} was set before the session "
                f"(policy: {value}); stored training numbers may not reproduce"
            )
    if _torch_came_first:
        lines.append(
            "numerics policy: torch was imported before the policy was applied; ATen and MKL "
            "in this process may not follow it (the notebooks' kernels still do)"
        )
    return lines


# ---------------------------------------------------------------------------------------------
# Measuring the knobs: python -m optim_lessons.numerics --knobs

#: The settings the measurement tries, one at a time, against the policy.
KNOB_TRIALS: list[tuple[str, str]] = [
    ("ATEN_CPU_CAPABILITY", "default"),
    ("MKL_CBWR", "AUTO"),
    ("MKL_CBWR", "AVX2"),
    ("ONEDNN_MAX_CPU_ISA", "SSE41"),
    ("OMP_NUM_THREADS", "2"),
    ("MKL_NUM_THREADS", "2"),
]

_PROBE = r"""
import hashlib, time, torch
from optim_lessons.data import get_loaders
from optim_lessons.models import Net
from optim_lessons.training import set_seed, train
torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "1")))
def digest(tensors):
    data = b"".join(t.detach().contiguous().numpy().tobytes() for t in tensors)
    return hashlib.sha1(data).hexdigest()[:8]
train_loader, test_loader = get_loaders(device="cpu", seed=0, train_size=20000)
start = time.process_time()
set_seed(0)
model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
history = train(model, optimizer, train_loader, test_loader, epochs=2, seed=0, progress=False)
seconds = time.process_time() - start
set_seed(0)
conv = torch.nn.Conv2d(1, 8, 3)
conv(torch.rand(64, 1, 28, 28)).square().sum().backward()
print(digest(model.parameters()), digest([conv.weight.grad]), digest([torch.randn(1000)]),
      f"{history.test_accuracy[-1]:.4f}", f"{seconds:.2f}")
"""


def _run_probe(overrides: Mapping[str, str]) -> list[str]:
    import subprocess

    env = dict(os.environ)
    env.update(applicable()[0])
    env.update(overrides)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def measure_knobs(repeats: int = 3) -> str:
    """Run a two-epoch Adam training of the seed MLP (20,000 images), a convolution's gradient
    and ``torch.randn`` under the policy and under each trial setting; report which results
    change bits and the CPU time of the training (median of ``repeats`` runs)."""
    import statistics

    def median_run(overrides):
        runs = [_run_probe(overrides) for _ in range(repeats)]
        return runs[0][:4], statistics.median(float(r[4]) for r in runs)

    base, base_seconds = median_run({})
    rows = [
        "| setting | MLP weights | conv gradient | randn | test accuracy | CPU time |",
        "|---|---|---|---|---|---|",
        f"| the policy | - | - | - | {base[3]} | {base_seconds:.2f} s |",
    ]
    for name, value in KNOB_TRIALS:
        result, seconds = median_run({name: value})
        changed = ["changed" if a != b else "same" for a, b in zip(result[:3], base[:3])]
        rows.append(
            f"| {name}={value} | {' | '.join(changed)} | {result[3]} | {seconds:.2f} s "
            f"({seconds / base_seconds:.2f}x) |"
        )
    return "\n".join(rows)


_SPREAD_PROBE = r"""
import sys, torch
from optim_lessons.data import get_loaders
from optim_lessons.models import Net
from optim_lessons.training import set_seed, train
seed, epochs = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "1")))
train_loader, test_loader = get_loaders(device="cpu", seed=0)
for make in (lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
             lambda p: torch.optim.Adam(p, lr=1e-3)):
    set_seed(seed)
    model = Net()
    history = train(model, make(model.parameters()), train_loader, test_loader,
                    epochs=epochs, seed=seed, progress=False)
    print(" ".join(f"{a:.4f}" for a in history.test_accuracy))
"""

#: Settings that change the bits of a training run on an AVX2 machine (measured by --knobs):
#: each stands in for "another CPU" in :func:`measure_spread`.
SPREAD_SETTINGS: list[dict[str, str]] = [
    {},
    {"ATEN_CPU_CAPABILITY": "default"},
    {"MKL_CBWR": "AUTO"},
    {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AUTO"},
    {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
]


def measure_spread(epochs: int = 5, seeds: int = 4) -> str:
    """How far another CPU's roundings carry a training run of the seed MLP.

    Another CPU changes roundings and nothing else. The settings of :data:`SPREAD_SETTINGS` do
    the same on this machine: each computes every step with other code paths (other roundings),
    from the same initial weights and the same batches, as chapter 2 trains (full
    Fashion-MNIST, SGD with momentum and Adam). The largest gap between any of them and the
    policy's run, over every epoch's test accuracy, is the noise that a check on a training
    result must tolerate. Other seeds (other initial weights and batch orders) are shown for
    scale: they move the result more.
    """
    import statistics
    import subprocess

    def run(overrides: Mapping[str, str], seed: int) -> list[list[float]]:
        env = dict(os.environ)
        env.update(applicable()[0])
        env.update(overrides)
        out = subprocess.run([sys.executable, "-c", _SPREAD_PROBE, str(seed), str(epochs)],
                             env=env, capture_output=True, text=True, check=True).stdout
        return [[float(v) for v in line.split()] for line in out.splitlines()]

    names = ["SGD lr=0.01 momentum=0.9", "Adam lr=1e-3"]
    base = run({}, 0)
    rows = ["| run | " + " | ".join(names) + " |", "|---|---|---|",
            "| the policy, seed 0 | " + " | ".join(f"{r[-1]:.4f}" for r in base) + " |"]
    gaps = [0.0, 0.0]
    for overrides in SPREAD_SETTINGS[1:]:
        result = run(overrides, 0)
        for k in range(2):
            gaps[k] = max(gaps[k], *(abs(a - b) for a, b in zip(result[k], base[k])))
        label = " ".join(f"{n}={v}" for n, v in overrides.items())
        rows.append(f"| {label}, seed 0 | " + " | ".join(f"{r[-1]:.4f}" for r in result) + " |")
    finals = [[], []]
    for seed in range(1, seeds + 1):
        result = run({}, seed)
        for k in range(2):
            finals[k].append(result[k][-1])
    rows.append(f"| largest gap to the policy, any epoch 1-{epochs} | "
                + " | ".join(f"{g:.4f}" for g in gaps) + " |")
    rows.append(f"| std over seeds 1-{seeds}, epoch {epochs} | "
                + " | ".join(f"{statistics.stdev(f):.4f}" for f in finals) + " |")
    return "\n".join(rows)


#: Tolerance for a test accuracy of the seed MLP after an epoch or more, in the notebooks'
#: assertions. ``python -m optim_lessons.numerics --spread`` (5 epochs, full Fashion-MNIST, SGD
#: with momentum and Adam) measured a largest gap of 0.0022 between the policy's run and runs
#: with other code paths (ATen's plain kernels, MKL's own dispatch), and a standard deviation of
#: 0.0023 over other seeds. 0.01 is more than four times either: a check at this tolerance holds
#: on another CPU or a GPU, and still fails when an optimizer or the loop is broken (a wrong
#: update costs points, not thousandths).
ACCURACY_TOLERANCE = 0.01


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--spread"]:
        apply()
        print(measure_spread())
        return 0
    if argv[:1] == ["--knobs"]:
        apply()
        print(platform.processor() or platform.machine(), file=sys.stderr)
        print(measure_knobs())
        return 0
    if not argv or argv[0] in {"-h", "--help"}:
        print(
            "usage: python -m optim_lessons.numerics COMMAND [ARGS...]  run COMMAND under it\n"
            "       python -m optim_lessons.numerics --knobs            what each setting changes\n"
            "       python -m optim_lessons.numerics --spread           how far roundings carry"
        )
        return 0 if argv else 2
    apply()
    for line in header():
        print(line, file=sys.stderr)
    os.execvp(argv[0], argv)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
