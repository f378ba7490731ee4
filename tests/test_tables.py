"""Tables of results: the text they print and the HTML tables a notebook shows."""

from __future__ import annotations

import re

import pytest

from optim_lessons.benchmarks.recipe_tables import recipe_tables, sweep_table
from optim_lessons.tables import TextBlocks, TextTable


def cells_of(html: str) -> list[list[str]]:
    """The text of every row of an HTML table, header first."""
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in rows]


def test_the_text_is_a_fixed_width_table_and_the_string_itself() -> None:
    table = TextTable(["name", "value"], [["a", "1.5"], ["long name", "12.25"]], right={1})
    assert table == "name       value\n----------------\na            1.5\nlong name  12.25"
    assert table.splitlines()[2].split() == ["a", "1.5"]
    assert repr(table) == str(table)  # a notebook's plain-text output is the table, not a repr


def test_the_html_holds_every_cell_escaped_with_numbers_right_aligned() -> None:
    table = TextTable(["optimizer", "lr", "note"], [["SGD", "0.1", "a < b & c"]], right={1})
    html = table._repr_html_()
    assert cells_of(html) == [["optimizer", "lr", "note"], ["SGD", "0.1", "a &lt; b &amp; c"]]
    assert html.count('style="text-align:right"') == 2  # the header and the cell of "lr"
    assert 'class="dataframe optim-lessons-table"' in html


def test_bold_cells_and_a_caption() -> None:
    table = TextTable(["x"], [["**0.89**"], ["0.88"]], caption="best in bold")
    html = table._repr_html_()
    assert "<td><strong>0.89</strong></td>" in html
    assert "<caption>best in bold</caption>" in html
    assert "caption" not in str(table)


def test_a_given_text_is_kept_exactly() -> None:
    table = TextTable(["a", "b"], [["1", "2"]], text="a | b\n1 | 2")
    assert str(table) == "a | b\n1 | 2"
    assert cells_of(table._repr_html_()) == [["a", "b"], ["1", "2"]]


def test_rows_must_match_the_columns() -> None:
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        TextTable(["a", "b", "c"], [["1", "2"]])


def test_blocks_join_text_and_tables() -> None:
    table = TextTable(["a"], [["1"]])
    blocks = TextBlocks(["Results:", table, "1 run in all"])
    assert blocks == "Results:\n\na\n-\n1\n\n1 run in all"
    html = blocks._repr_html_()
    assert html.count("<table") == 1 and html.count("<p ") == 2


def test_the_recipe_tables_print_as_before_and_show_as_html_tables() -> None:
    text = recipe_tables()
    sweep = sweep_table()
    assert isinstance(sweep, TextTable) and sweep in text
    assert sweep.splitlines()[0].startswith("| peak lr")
    html = text._repr_html_()
    assert html.count("<table") == 2  # the sweep and the seeds
    header, *rows = cells_of(sweep._repr_html_())
    assert header[0] == "peak lr" and len(rows) == len(sweep.splitlines()) - 2
