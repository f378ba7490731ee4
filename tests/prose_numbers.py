#!/usr/bin/env python3
"""Find numbers in a notebook's prose that no cell of the notebook prints or sets.

Every result the text quotes (an accuracy, a loss, a ratio, a percentage) should be on the page
twice: in the sentence and in the output of a cell, so that a re-run that changes it is seen.
This is a heuristic. A decimal number (0.8894, 2.7) or a percentage (31%) in a markdown cell
counts as supported when a number in some code cell's source or stored output rounds to it at
the quoted precision (a percentage may also be a fraction times 100). Left out, because they
are not results: maths between dollar signs, and numbers that name a part of a reference
("Algorithms 3.5 and 3.6", "Section 4.2", "version 2.14").

Usage: python tests/prose_numbers.py notebooks/*.ipynb   (exit status 1 when any is unsupported)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

QUOTED = re.compile(
    r"(?<![\w.])-?\d+\.\d+(?:[eE][+-]?\d+)?(?!\w)(?!\.\w)"  # 0.8894, 2.7, 1.5e-3, "0.88."
    r"|(?<![\w.])\d+(?:\.\d+)?(?=\s?%)"  # 31% or 31 %
)
ANY_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
DOLLAR_MATHS = re.compile(r"\$\$.*?\$\$|\$[^$]+?\$", re.S)
#: A reference word, then possibly earlier numbers of the same list ("3.5 and ", "4.1, ").
REFERENCE_BEFORE = re.compile(
    r"\b(algorithms?|sections?|§|tables?|figures?|fig\.|equations?|eqs?\.|chapters?|theorems?"
    r"|lemmas?|propositions?|corollary|pages?|pp?\.|versions?|v|python|torch|pytorch)"
    r"\s*(?:[\d.]+\s*(?:,|and|or|to|-|–)\s*)*$",
    re.I,
)


def output_text(output: dict) -> str:
    texts = ["".join(output.get("text", ""))]
    for kind, value in output.get("data", {}).items():
        if kind.startswith("text/") or kind == "application/json":
            texts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(texts)


def evidence(notebook: dict) -> list[float]:
    """Every number in the code cells' sources and stored outputs."""
    numbers = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        for text in ["".join(cell["source"]), *map(output_text, cell.get("outputs", []))]:
            numbers.extend(float(match) for match in ANY_NUMBER.findall(text))
    return numbers


def rounds_to(quoted: str, percent: bool, numbers: list[float]) -> bool:
    mantissa = quoted.lower().split("e")[0]
    places = len(mantissa.split(".")[1]) if "." in mantissa else 0
    target, half_unit = float(quoted), 0.5 * 10.0**-places + 1e-12
    for number in numbers:
        candidates = (number, -number, 100 * number) if percent else (number, -number)
        if any(abs(candidate - target) <= half_unit for candidate in candidates):
            return True
    return False


def unsupported(path: Path) -> list[str]:
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    numbers = evidence(notebook)
    found = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        prose = DOLLAR_MATHS.sub(" ", "".join(cell["source"]))
        for match in QUOTED.finditer(prose):
            if REFERENCE_BEFORE.search(prose[max(0, match.start() - 40) : match.start()]):
                continue
            quoted = match.group(0)
            percent = prose[match.end() : match.end() + 2].lstrip().startswith("%")
            if not rounds_to(quoted, percent, numbers):
                context = prose[max(0, match.start() - 50) : match.end() + 30].replace("\n", " ")
                shown = quoted + ("%" if percent else "")
                found.append(f"{path}: cell {index}: {shown}: ...{context}...")
    return found


def main(paths: list[str]) -> int:
    found = [line for path in paths for line in unsupported(Path(path))]
    print("\n".join(found))
    print(f"{len(found)} unsupported number(s) in prose")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
