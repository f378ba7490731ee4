"""Every chapter with exercises keeps its answers out of sight until the reader asks.

Under "## Exercises" a chapter has questions and the cells a reader fills in; under
"## Solutions", its last section, it has the solutions: code cells tagged ``hide-cell`` (the
site folds their input *and* output behind a button, JupyterLab collapses them) and explanations
in dropdowns. A cell where the reader answers runs a self-check through ``attempt``, and its
stored output says the answer is not done yet: a stored "Right" would give the answer away.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
ANSWER_FENCE = re.compile(
    r"\{(admonition)\}\s*(Solution|Answer|What it shows)|\{dropdown\}\s*Answer"
)


def sections(path: Path):
    """The cells of the Exercises section and of the Solutions section, or None."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = ["".join(cell["source"]) for cell in cells]
    exercises = [
        i for i, t in enumerate(text) if cells[i]["cell_type"] == "markdown" and "## Exercises" in t
    ]
    if not exercises:
        return None
    solutions = [
        i for i, t in enumerate(text) if cells[i]["cell_type"] == "markdown" and "## Solutions" in t
    ]
    start = exercises[0]
    end = solutions[0] if solutions else len(cells)
    return cells[start:end], cells[end:]


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def printed(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))


#: Chapters whose exercises still keep each solution under its question (a folded cell right
#: below it). The tests run on them too, and are expected to fail until they move.
PENDING: set[str] = set()
CHAPTERS = [
    pytest.param(
        path,
        marks=pytest.mark.xfail(reason="solutions still under the questions", strict=False)
        if path.stem in PENDING
        else (),
    )
    for path in NOTEBOOKS
    if sections(path) is not None
]


def test_the_chapters_with_exercises_are_found():
    assert len(CHAPTERS) >= 8


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: getattr(p, "stem", p))
def test_the_solutions_have_their_own_section(path):
    _, solutions = sections(path)
    assert solutions, f"{path.name}: exercises without a Solutions section at the end"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: getattr(p, "stem", p))
def test_no_answer_sits_under_a_question(path):
    questions, _ = sections(path)
    for cell in questions:
        source = "".join(cell["source"])
        assert not ANSWER_FENCE.search(source), f"an answer among the questions: {source[:120]!r}"
        assert not {"hide-input", "hide-cell", "hide-output"} & set(tags(cell)), source[:120]
        assert not source.lstrip().startswith("# Solution"), source[:120]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: getattr(p, "stem", p))
def test_the_reader_cells_say_not_done_and_never_right(path):
    questions, _ = sections(path)
    attempts = [
        cell
        for cell in questions
        if cell["cell_type"] == "code"
        and re.search(r"\battempt\(|answer_ok\s*=", "".join(cell["source"]))
    ]
    assert attempts, f"{path.name}: no cell for the reader's answers"
    for cell in attempts:
        out = printed(cell)
        assert out.startswith(("Not done", "Not yet")), f"{''.join(cell['source'])[:80]!r}: {out!r}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: getattr(p, "stem", p))
def test_the_solutions_come_last_and_folded(path):
    _, solutions = sections(path)
    for cell in solutions[1:]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            assert not re.search(r"^#{1,2} ", source, re.M), (
                f"a section after Solutions: {source[:80]!r}"
            )
        if cell["cell_type"] == "code":
            assert "hide-cell" in tags(cell), f"a solution in plain view: {source[:80]!r}"
        else:
            label = re.fullmatch(r"\*\*Exercise \d+\..*\*\*", source.strip())
            folded = (
                ":class: dropdown" in source or "{dropdown}" in source
            ) and source.lstrip().startswith(("```", ":::"))
            assert label or folded, f"an explanation in plain view: {source[:80]!r}"
