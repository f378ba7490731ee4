"""The Colab install cell: the same in every notebook, in step with pyproject.toml, and never
replacing the runtime's torch.

Each notebook opens with a cell (tag ``remove-cell``) that does nothing outside Colab. On Colab
it stops with one message when the runtime's torch is older than the book's floor, installs the
package with ``--no-deps`` (so Colab's CUDA builds of torch and torchvision stay), then the light
dependencies, which pip leaves alone when Colab already has them. ``OPTIM_LESSONS_SPEC``
replaces the package spec (``make test-colab`` points it at the local checkout).

The tests run the cell's own code with a stand-in ``google.colab`` module, a stand-in torch
version and a ``subprocess.run`` that records the pip commands instead of running them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def install_cells(path: Path) -> list[dict]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return [
        cell
        for cell in notebook["cells"]
        if cell["cell_type"] == "code" and "google.colab" in "".join(cell["source"])
    ]


def the_cell() -> str:
    return "".join(install_cells(NOTEBOOKS[0])[0]["source"])


def dependencies() -> dict[str, str]:
    """pyproject's dependencies: ``{name: specifier}``."""
    found = {}
    block = re.search(r"^dependencies = \[(.*?)^\]", PYPROJECT, re.M | re.S).group(1)
    for requirement in re.findall(r'"([^"]+)"', block):
        name, specifier = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", requirement).groups()
        found[name] = specifier.replace(" ", "")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_the_one_install_cell(path):
    cells = install_cells(path)
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells mention google.colab"
    (cell,) = cells
    assert cell["metadata"].get("tags") == ["remove-cell"]
    assert "".join(cell["source"]) == the_cell(), f"{path.name}'s install cell differs"
    assert cell.get("outputs") == []


def test_the_cell_agrees_with_pyproject():
    cell, wanted = the_cell(), dependencies()
    floor = re.search(r'torch\.__version__ < "([0-9.]+)"', cell).group(1)
    assert wanted["torch"] == f">={floor}"
    assert f"needs torch {floor} or newer" in cell
    light = re.findall(r'"([a-z]+)(>=[0-9.]+)"', cell)
    assert dict(light) == {k: v for k, v in wanted.items() if k not in ("torch", "torchvision")}


def run_cell(monkeypatch, torch_version: str, spec: str | None = None) -> list[list[str]]:
    """Run the cell as Colab would, with torch reporting ``torch_version``; return the commands
    it ran."""
    commands = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(torch, "__version__", torch.torch_version.TorchVersion(torch_version))
    monkeypatch.setattr(subprocess, "run", lambda command, check: commands.append(command))
    if spec is None:
        monkeypatch.delenv("OPTIM_LESSONS_SPEC", raising=False)
    else:
        monkeypatch.setenv("OPTIM_LESSONS_SPEC", spec)
    exec(compile(the_cell(), "install-cell", "exec"), {})
    return commands


def test_outside_colab_the_cell_does_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    commands = []
    monkeypatch.setattr(subprocess, "run", lambda command, check: commands.append(command))
    exec(compile(the_cell(), "install-cell", "exec"), {})
    assert commands == []


@pytest.mark.parametrize("version", ["2.10.0+cu126", "2.10.0", "2.11.0", "2.14.1+cu128", "3.0.0"])
def test_on_colab_it_installs_the_package_without_its_dependencies(monkeypatch, version):
    package, light = run_cell(monkeypatch, version)
    assert package[1:] == ["-m", "pip", "install", "-q", "--no-deps",
                           "optim-lessons @ git+https://github.com/optim-lessons/optim-lessons"]
    assert not any(name.startswith("torch") for name in light)  # torch is never named


def test_the_spec_comes_from_the_environment_when_set(monkeypatch):
    package, _ = run_cell(monkeypatch, "2.14.1", spec="optim-lessons @ git+file:///src/checkout")
    assert package[-2:] == ["--no-deps", "optim-lessons @ git+file:///src/checkout"]


@pytest.mark.parametrize("version", ["2.9.1+cu128", "2.9.0", "2.8.0+cu126", "1.13.1"])
def test_an_older_torch_stops_the_notebook_with_one_message(monkeypatch, version):
    message = rf"needs torch 2\.\d+ or newer; this runtime has {re.escape(version)}\."
    with pytest.raises(SystemExit, match=message):
        run_cell(monkeypatch, version)
