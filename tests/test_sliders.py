"""Figures with sliders: the precomputed paths, what the page stores, and the size budget."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from _chapters import ALGORITHM_CHAPTERS

from optim_lessons import optimizers as ours
from optim_lessons.playground import sliders
from optim_lessons.playground.sliders import MAX_BYTES, precompute_paths, slider_figure
from optim_lessons.playground.surfaces import get_surface, run_on_surface

ROOT = Path(__file__).resolve().parent.parent
MARKER = 'class="optim-lessons-sliders"'


def test_every_stored_path_is_the_run_of_the_library_optimizer() -> None:
    grid = {"lr": [0.01, 0.09], "momentum": [0.0, 0.5, 0.9]}
    table = precompute_paths("bowl", {"SGD": ours.SGD}, grid, steps=30)
    assert table.names == ("lr", "momentum") and table.runs == ("SGD",)
    assert table.points.shape == (2, 3, 1, 31, 2)
    for i, lr in enumerate(grid["lr"]):
        for j, momentum in enumerate(grid["momentum"]):
            run = run_on_surface("bowl", ours.SGD, steps=30, lr=lr, momentum=momentum)
            assert np.array_equal(table.points[i, j, 0], run.points.numpy())
            assert table.gaps[i, j, 0] == pytest.approx(run.final_gap, rel=1e-12, abs=1e-300)
            assert table.finite_steps[i, j, 0] == 31


def test_beta1_and_beta2_fill_betas_and_keep_the_other_default() -> None:
    table = precompute_paths("bowl", ours.Adam, {"beta1": [0.5], "beta2": [0.9]}, steps=10)
    both = run_on_surface("bowl", ours.Adam, steps=10, betas=(0.5, 0.9))
    assert np.array_equal(table.points[0, 0, 0], both.points.numpy())
    only_first = precompute_paths("bowl", ours.Adam, {"beta1": [0.5]}, steps=10)
    default_second = run_on_surface("bowl", ours.Adam, steps=10, betas=(0.5, 0.999))
    assert np.array_equal(only_first.points[0, 0], default_second.points.numpy())
    rprop = precompute_paths("bowl", ours.Rprop, {"etaplus": [2.0]}, steps=10)
    assert np.array_equal(
        rprop.points[0, 0], run_on_surface("bowl", ours.Rprop, steps=10, etas=(0.5, 2.0)).points
    )


def test_noise_on_the_grid_is_the_runs_gradient_noise() -> None:
    table = precompute_paths("bowl", ours.SGD, {"lr": [0.05], "noise": [0.0, 1.0]}, steps=20)
    noisy = run_on_surface("bowl", ours.SGD, steps=20, lr=0.05, noise=1.0)
    assert np.array_equal(table.points[0, 1, 0], noisy.points.numpy())
    assert not np.array_equal(table.points[0, 0, 0], table.points[0, 1, 0])


def test_several_optimizers_share_the_grid() -> None:
    table = precompute_paths(
        "bowl", {"ours": ours.SGD, "torch": torch.optim.SGD}, {"lr": [0.05, 0.09]}, steps=15
    )
    assert table.points.shape == (2, 2, 16, 2)
    assert np.array_equal(table.points[:, 0], table.points[:, 1])  # the two are bit for bit one


def test_a_diverging_run_is_cut_at_its_first_non_finite_point() -> None:
    table = precompute_paths("bowl", ours.SGD, {"lr": [0.5]}, steps=400)
    finite = int(table.finite_steps[0, 0])
    assert 1 < finite < 401
    assert np.isfinite(table.points[0, 0, :finite]).all()
    assert np.isnan(table.points[0, 0, finite:]).all()
    assert sliders._readout(table, (0,), 0) == f"diverged at step {finite}"


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({}, "one to three"),
        ({"lr": [0.1], "momentum": [0.0], "dampening": [0.0], "weight_decay": [0.0]}, "one to "),
        ({"lr": []}, "at least one value"),
    ],
)
def test_the_grid_must_have_one_to_three_non_empty_axes(grid: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        precompute_paths("bowl", ours.SGD, grid, steps=5)


def test_a_tuple_part_needs_the_tuple() -> None:
    with pytest.raises(ValueError, match="betas"):
        precompute_paths("bowl", ours.SGD, {"beta1": [0.9]}, steps=5)


def _stored(html: str) -> tuple[dict, np.ndarray, tuple[float, ...]]:
    """The viewer's data, its paths decoded to pixels, and its clip rectangle."""
    data = json.loads(re.search(r"var data = (\{.*?\});\n", html).group(1).replace("<\\/", "</"))
    packed = np.frombuffer(base64.b64decode(data["paths"]), dtype="<i2") / 8
    rect = re.search(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', html)
    return data, packed.reshape(-1, data["steps"] + 1, 2), tuple(map(float, rect.groups()))


def test_the_page_draws_the_stored_paths_where_the_optimizer_went() -> None:
    grid = {"lr": [0.02, 0.09], "momentum": [0.0, 0.9]}
    html = slider_figure("bowl", ours.SGD, grid, steps=40).data
    data, pixels, (left, top, width, height) = _stored(html)
    table = precompute_paths("bowl", ours.SGD, grid, steps=40)
    surface = get_surface("bowl")
    points = table.points.reshape(-1, 41, 2)
    expected = np.stack(
        [
            left + (points[..., 0] - surface.xlim[0]) / np.ptp(surface.xlim) * width,
            top + (surface.ylim[1] - points[..., 1]) / np.ptp(surface.ylim) * height,
        ],
        axis=-1,
    )
    inside = np.abs(expected).max(axis=-1) < 4000
    # 1/16 px from the rounding to eighths, and 0.05 px from the clip rectangle's rounding
    assert np.abs(pixels - expected)[inside].max() < 0.2
    assert data["lengths"] == [41, 41, 41, 41]
    assert data["values"] == [["0.02", "0.09"], ["0", "0.9"]]
    assert len(data["notes"]) == 4 and all("after 40 steps" in note for note in data["notes"])


def test_the_figure_is_the_same_bytes_every_time_and_has_one_slider_per_axis() -> None:
    grid = {"lr": [0.01, 0.05], "beta1": [0.5, 0.9], "beta2": [0.9, 0.999]}
    first = slider_figure("rosenbrock", ours.Adam, grid, steps=20, initial={"beta1": 0.9}).data
    second = slider_figure("rosenbrock", ours.Adam, grid, steps=20, initial={"beta1": 0.9}).data
    assert first == second
    assert first.count('type="range"') == 3
    assert re.findall(r'data-name="(\w+)"', first) == ["lr", "beta1", "beta2"]
    assert re.findall(r'value="(\d)"', first) == ["0", "1", "0"]  # initial: beta1 = 0.9


def test_the_viewer_only_looks_paths_up() -> None:
    """No optimizer maths in the page's script: it decodes, indexes and draws."""
    script = sliders._VIEWER_TEMPLATE.split("<script>")[1]
    assert "Math." not in script
    assert re.search(r"\b(sqrt|exp|pow|grad)\b", script) is None


def test_initial_values_must_be_on_the_grid() -> None:
    with pytest.raises(ValueError, match="not one of the grid's values"):
        slider_figure("bowl", ours.SGD, {"lr": [0.01, 0.05]}, steps=5, initial={"lr": 0.02})
    with pytest.raises(ValueError, match="not on the grid"):
        slider_figure("bowl", ours.SGD, {"lr": [0.01]}, steps=5, initial={"momentum": 0.9})


def test_a_figure_over_the_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="over max_bytes=20000"):
        slider_figure("bowl", ours.SGD, {"lr": [0.01, 0.05]}, steps=50, max_bytes=20_000)


def test_a_typical_three_slider_grid_fits_the_budget_with_room() -> None:
    grid = {"lr": [0.01, 0.03, 0.1, 0.3], "beta1": [0.5, 0.9, 0.95, 0.99], "beta2": [0.9, 0.999]}
    size = len(slider_figure("bowl", ours.Adam, grid, steps=150).data.encode())
    assert size < MAX_BYTES / 3


def _stored_slider_figures(chapter: str) -> list[str]:
    notebook = json.loads((ROOT / "notebooks" / f"{chapter}.ipynb").read_text())
    found = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html", "")
            html = "".join(html) if isinstance(html, list) else html
            if MARKER in html:
                found.append(html)
    return found


@pytest.mark.parametrize("chapter", ALGORITHM_CHAPTERS)
def test_each_algorithm_chapter_stores_a_slider_figure_within_the_budget(chapter: str) -> None:
    figures = _stored_slider_figures(chapter)
    assert figures, f"{chapter} stores no figure with sliders"
    assert sum(len(html.encode()) for html in figures) <= MAX_BYTES
    for html in figures:
        data, pixels, _ = _stored(html)
        cells = int(np.prod([len(values) for values in data["values"]]))
        assert pixels.shape[0] == cells * len(data["runs"]) == len(data["lengths"])
