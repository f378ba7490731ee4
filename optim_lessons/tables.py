"""Tables of results that print as text and show as HTML tables in a notebook and on the site.

A :class:`TextTable` *is* its fixed-width (or markdown) text: ``print`` it, split it into
lines, compare it, as before. A notebook that displays it (the last expression of a cell, or
``display(table)``) shows an HTML table instead, which the book's pages fit to the column and
a reader can copy into a spreadsheet. :class:`TextBlocks` joins paragraphs and tables the same
way (``recipe_tables()`` is one). The HTML table carries the class ``dataframe``, so that
themes style it as they style a pandas DataFrame (pydata-sphinx-theme: zebra rows, dark mode).

>>> table = TextTable(["optimizer", "test acc"], [["Adam", "0.8268"], ["SGD", "0.8211"]],
...                   right={1})
>>> print(table)
optimizer  test acc
-------------------
Adam         0.8268
SGD          0.8211
>>> "<th>optimizer</th>" in table._repr_html_()
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape

__all__ = ["TextBlocks", "TextTable"]

_BOLD = re.compile(r"^\*\*(.*)\*\*$")


def _fixed_width(columns: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max([len(c), *(len(row[k]) for row in rows)]) for k, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if k in right else cell.ljust(width)
            for k, (cell, width) in enumerate(zip(cells, widths))
        ]
        return "  ".join(padded).rstrip()

    header = line(columns)
    rule = "-" * max(len(header), *(len(line(row)) for row in rows)) if rows else "-" * len(header)
    return "\n".join([header, rule, *(line(row) for row in rows)])


def _cell_html(cell: str, tag: str, right: bool) -> str:
    bold = _BOLD.match(cell.strip())
    text = escape(bold.group(1) if bold else cell.strip())
    if bold:
        text = f"<strong>{text}</strong>"
    style = ' style="text-align:right"' if right else ""
    return f"<{tag}{style}>{text}</{tag}>"


class TextTable(str):
    """A table of already formatted cells: the string is its text, ``_repr_html_`` its HTML.

    Args:
        columns: the header of each column.
        rows: the cells, as strings, one sequence per row (a cell ``**x**`` is shown bold).
        right: the indices of the columns to align right (numbers).
        caption: a line shown above the HTML table (not part of the text).
        text: the text the string holds; a fixed-width layout of the cells by default (two
            spaces between columns, a rule under the header). Pass the text a function has
            always printed to keep it exactly.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right: frozenset[int]
    caption: str

    def __new__(
        cls,
        columns: Sequence[str],
        rows: Iterable[Sequence[str]],
        *,
        right: Iterable[int] = (),
        caption: str = "",
        text: str | None = None,
    ) -> TextTable:
        columns = tuple(str(c) for c in columns)
        rows = tuple(tuple(str(cell) for cell in row) for row in rows)
        for row in rows:
            if len(row) != len(columns):
                raise ValueError(f"a row has {len(row)} cells for {len(columns)} columns: {row}")
        right = frozenset(right)
        table = super().__new__(
            cls, _fixed_width(columns, rows, set(right)) if text is None else text
        )
        table.columns, table.rows, table.right, table.caption = columns, rows, right, caption
        return table

    def __repr__(self) -> str:
        return str.__str__(self)

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(str.__str__(self))

    def _repr_html_(self) -> str:
        head = "".join(_cell_html(c, "th", k in self.right) for k, c in enumerate(self.columns))
        body = "".join(
            "<tr>"
            + "".join(_cell_html(cell, "td", k in self.right) for k, cell in enumerate(row))
            + "</tr>"
            for row in self.rows
        )
        caption = f"<caption>{escape(self.caption)}</caption>" if self.caption else ""
        return (
            f'<table class="dataframe optim-lessons-table">{caption}'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )


class TextBlocks(str):
    """Paragraphs and tables, joined by blank lines: the string is the text of all of them; in
    HTML each paragraph is a paragraph and each :class:`TextTable` a table."""

    blocks: tuple[str, ...]

    def __new__(cls, blocks: Iterable[str], separator: str = "\n\n") -> TextBlocks:
        blocks = tuple(blocks)
        joined = super().__new__(cls, separator.join(blocks))
        joined.blocks = blocks
        return joined

    def __repr__(self) -> str:
        return str.__str__(self)

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(str.__str__(self))

    def _repr_html_(self) -> str:
        parts = []
        for block in self.blocks:
            if isinstance(block, TextTable):
                parts.append(block._repr_html_())
            else:
                parts.append(f'<p style="white-space:pre-line">{escape(block)}</p>')
        return '<div class="optim-lessons-blocks">' + "".join(parts) + "</div>"
