"""A rehearsal of "Open in Colab, Run all" on this machine (``make test-colab``).

What Colab gives a notebook, and how the rehearsal stands in for it:

- **A Python with torch, torchvision, matplotlib, tqdm, ipywidgets 7 and ipykernel**, and none
  of the book's test or build tools: the venv ``--venv`` (the Makefile builds it with exactly
  those). optim-lessons is uninstalled from it first, so the install cell must install it.
- **``google.colab`` already imported when the first cell runs**: an IPython start-up file (in
  a private ``IPYTHONDIR``) puts an empty module of that name into ``sys.modules``. That is all
  the install cell looks at; nothing else of Colab is imitated.
- **A working folder outside the repository** (Colab's ``/content``): ``WORKDIR/content``.
- **The notebooks and the package from GitHub**: the notebooks come from a clone of this
  checkout's current commit, and ``OPTIM_LESSONS_SPEC`` points the install cell at the same
  commit as a git URL, ``optim-lessons @ git+file:///path/to/checkout@COMMIT``: what runs is the
  *committed* state of the current branch, as Colab runs ``main``. Commit first.
- The data: Colab downloads it; here a fresh data folder (``OPTIM_LESSONS_DATA``) is filled
  from Debian's package, as on any machine without a download.

Then every notebook runs top to bottom in a fresh kernel (tests/run_notebooks.py), and the
rehearsal checks that the runtime's torch, torchvision and ipywidgets are the ones it started
with: the install cell added the package and replaced nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_notebooks  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
KEPT = ("torch", "torchvision", "ipywidgets")

STARTUP = '''"""Stands in for Colab, which imports google.colab before the first cell runs."""
import sys
import types

sys.modules.setdefault("google.colab", types.ModuleType("google.colab"))
'''


def versions(python: Path, cwd: Path) -> dict[str, str | None]:
    """The installed versions of :data:`KEPT` and of optim-lessons in ``python``'s environment
    (asked from ``cwd``: in the checkout, its own metadata folder would answer)."""
    script = (
        "import importlib.metadata as m, json\n"
        "def v(name):\n"
        "    try:\n"
        "        return m.version(name)\n"
        "    except m.PackageNotFoundError:\n"
        "        return None\n"
        f"print(json.dumps({{name: v(name) for name in {KEPT + ('optim-lessons',)!r}}}))\n"
    )
    return json.loads(subprocess.run([python, "-c", script], capture_output=True, text=True,
                                     check=True, cwd=cwd).stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names to run (default: all)")
    parser.add_argument("--venv", type=Path, required=True, help="the stand-in Colab runtime")
    parser.add_argument("--workdir", type=Path, required=True, help="a folder for the rehearsal")
    parser.add_argument("--spec", help="what the install cell installs (default: the cloned "
                        "commit of this checkout, optim-lessons @ git+file://CHECKOUT@COMMIT)")
    args = parser.parse_args(argv)
    python = args.venv.absolute() / "bin" / "python"
    workdir = args.workdir.absolute()
    content, ipython_dir = workdir / "content", workdir / "ipython"
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-google-colab.py").write_text(STARTUP, encoding="utf-8")
    content.mkdir(parents=True, exist_ok=True)
    clone = workdir / "clone"
    subprocess.run(["rm", "-rf", str(clone)], check=True)
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{REPOSITORY}", str(clone)],
                   check=True)
    commit = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    spec = args.spec or f"optim-lessons @ git+file://{REPOSITORY}@{commit}"
    notebooks = sorted((clone / "notebooks").glob("*.ipynb"))
    if args.names:
        notebooks = [path for path in notebooks if any(name in path.name for name in args.names)]
    print(f"{len(notebooks)} notebooks of commit {commit[:10]}", flush=True)

    subprocess.run([python, "-m", "pip", "uninstall", "--quiet", "--yes", "optim-lessons"],
                   check=True, cwd=content)
    before = versions(python, content)
    print(f"runtime before: {before}", flush=True)
    if before["optim-lessons"] is not None:
        raise SystemExit("optim-lessons is still installed in the rehearsal venv")

    os.environ.update(
        IPYTHONDIR=str(ipython_dir),
        OPTIM_LESSONS_SPEC=spec,
        OPTIM_LESSONS_DATA=str(workdir / "data"),
    )
    print(f"install cell's spec: {spec}", flush=True)
    status = run_notebooks.main(
        ["--python", str(python), "--workdir", str(content)]
        + [str(path) for path in notebooks]
    )

    after = versions(python, content)
    print(f"runtime after:  {after}")
    replaced = [name for name in KEPT if after[name] != before[name]]
    if replaced:
        print(f"FAILED: the install cells replaced {', '.join(replaced)}")
        status = 1
    if after["optim-lessons"] is None:
        print("FAILED: the install cells did not install optim-lessons")
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
