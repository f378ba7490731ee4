"""Every notebook cell is checked one way or the other.

nbval compares a cell's fresh output with the stored one, character for character. That is the
right check for exact results (parity differences, shapes, messages, counts) and the wrong one
for numbers that come out of long float computations (a training run, a search): another CPU, a
GPU or a new BLAS changes their fourth decimal. Such a cell carries the tag
``nbval-ignore-output``, so nbval runs it without comparing its digits, and it must check its
own result with an ``assert`` whose tolerance was measured (optim_lessons/numerics.py), or with
one of the chapters' self-checks (``check_...``) or ``assert_close``, which raise. These
tests make sure no cell escapes both checks.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
IGNORE_TAG = "nbval-ignore-output"
#: Lines that IPython treats specially (magics, shell escapes) are not Python.
_MAGIC = re.compile(r"^\s*[%!]", re.M)


def code_cells(path: Path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            yield index, cell, "".join(cell["source"])


def output_ignored(cell: dict, source: str) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    return IGNORE_TAG in tags or "NBVAL_IGNORE_OUTPUT" in source


def _is_check_call(node: ast.AST) -> bool:
    """A call of a function that raises when its check fails: the chapters' self-checks
    (``check_...``) and torch's ``assert_close``."""
    if not isinstance(node, ast.Call):
        return False
    name = getattr(node.func, "attr", None) or getattr(node.func, "id", "")
    return name.startswith(("check_", "assert_"))


def has_assertion(source: str) -> bool:
    tree = ast.parse(_MAGIC.sub("pass  # magic", source))
    return any(isinstance(node, ast.Assert) or _is_check_call(node) for node in ast.walk(tree))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_whose_output_nbval_ignores_asserts_its_result(path):
    unchecked = [
        index
        for index, cell, source in code_cells(path)
        if output_ignored(cell, source) and not has_assertion(source)
    ]
    assert not unchecked, (
        f"{path.name}: cells {unchecked} are tagged {IGNORE_TAG} but assert nothing, so no "
        "test looks at their results; add an assert with a measured tolerance"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_is_skipped(path):
    skipped = [
        index
        for index, cell, source in code_cells(path)
        if "NBVAL_SKIP" in source or "nbval-skip" in cell.get("metadata", {}).get("tags", [])
    ]
    assert not skipped, f"{path.name}: cells {skipped} are skipped by nbval, so nothing runs them"


def test_the_checker_sees_an_assertion_and_its_absence():
    assert has_assertion("x = 1\nassert x == 1, 'one'")
    assert has_assertion("%time y = 2\nfor i in range(2):\n    assert i < 2")
    assert not has_assertion("print('assert nothing')  # assert in a comment")
    assert has_assertion("check_eps_schedule(lambda t: 1e-3)")
    assert has_assertion("torch.testing.assert_close(a, b)")
    assert not has_assertion("checked = 1\nprint(checked)")
    ignored = {"metadata": {"tags": [IGNORE_TAG]}}
    assert output_ignored(ignored, "print(1)")
    assert output_ignored({"metadata": {}}, "# NBVAL_IGNORE_OUTPUT\nprint(1)")
    assert not output_ignored({"metadata": {}}, "print(1)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_number_the_prose_quotes_is_printed_or_set_by_a_cell(path):
    from prose_numbers import unsupported

    found = unsupported(path)
    assert not found, "numbers in the text that no cell prints:\n" + "\n".join(found)


def test_the_prose_filter_skips_references_but_not_results(tmp_path):
    from prose_numbers import unsupported

    def notebook(markdown, printed):
        cells = [
            {"cell_type": "markdown", "metadata": {}, "source": [markdown]},
            {"cell_type": "code", "metadata": {}, "source": ["print(x)"], "execution_count": 1,
             "outputs": [{"output_type": "stream", "name": "stdout", "text": [printed]}]},
        ]
        path = tmp_path / "n.ipynb"
        path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                    "nbformat_minor": 5}))
        return path

    assert unsupported(notebook("Algorithms 3.5 and 3.6 of the book; it reached 0.88.", "0.8912"))
    assert not unsupported(notebook("Algorithms 3.5 and 3.6; it reached 0.88.", "0.8812"))
    assert not unsupported(notebook("A rate of 31% here, $x = 0.25$.", "0.3104"))
    assert unsupported(notebook("A rate of 32% here.", "0.3104"))
