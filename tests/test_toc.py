"""_toc.yml and notebooks/ agree: the book lists every chapter once, in order, in its part.

Jupyter Book fails on a toc entry whose file is missing, and silently leaves out a notebook that
the toc does not name. These checks catch both, and more:

- every file the toc names exists (as .ipynb or .md);
- no file is named twice;
- every notebook in notebooks/ is named;
- the notebooks come in the order of their numbers;
- each planned chapter sits in its planned part;
- the landing page's chapter map links every notebook the toc names;
- the README has a Colab badge for every notebook, and no Colab link to a chapter not planned.

Run this file as a script to list the problems: `.venv/bin/python tests/test_toc.py`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

#: The book's plan: part caption -> the notebooks (without .ipynb) that belong in it, in order.
PLANNED_PARTS: dict[str, list[str]] = {
    "Foundations": [
        "notebooks/01_what_is_an_optimizer",
        "notebooks/02_training_loop",
        "notebooks/03_gradient_descent",
    ],
    "The algorithms": [
        "notebooks/04_momentum",
        "notebooks/05_adaptive",
        "notebooks/06_adam_family",
        "notebooks/07_signs_averages_curvature",
        "notebooks/08_memory_and_structure",
    ],
    "Putting them to work": [
        "notebooks/09_the_race",
        "notebooks/10_schedules",
        "notebooks/11_in_practice",
        "notebooks/12_write_your_own",
        "notebooks/13_making_step_fast",
        "notebooks/14_many_machines",
    ],
}

LANDING_PAGE = "book/intro.md"
COLAB_PREFIX = "https://colab.research.google.com/github/optim-lessons/optim-lessons/blob/main/"


@dataclass(frozen=True)
class TocEntry:
    """One file named by _toc.yml, and the caption of the part it is in ('' for none)."""

    file: str
    part: str


def toc_entries(root: Path) -> list[TocEntry]:
    """Every file _toc.yml names, root first, in reading order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    entries = [TocEntry(toc["root"], "")]

    def walk(items: list[dict], part: str) -> None:
        for item in items:
            if "file" in item:
                entries.append(TocEntry(item["file"], part))
            for key in ("chapters", "sections"):
                walk(item.get(key, []), part)

    walk(toc.get("chapters", []), "")
    for part in toc.get("parts", []):
        walk(part.get("chapters", []), part.get("caption", ""))
    return entries


def without_suffix(name: str) -> str:
    return re.sub(r"\.(ipynb|md)$", "", name)


def notebooks_on_disk(root: Path) -> list[str]:
    return sorted(f"notebooks/{path.stem}" for path in (root / "notebooks").glob("*.ipynb"))


def missing_files(root: Path) -> list[str]:
    """Toc entries with neither an .ipynb nor an .md file behind them."""
    return [
        entry.file
        for entry in toc_entries(root)
        if not any(
            (root / f"{without_suffix(entry.file)}{suffix}").is_file()
            for suffix in (".ipynb", ".md")
        )
    ]


def duplicated_files(root: Path) -> list[str]:
    """Files the toc names more than once."""
    names = [without_suffix(entry.file) for entry in toc_entries(root)]
    return sorted({name for name in names if names.count(name) > 1})


def unlisted_notebooks(root: Path) -> list[str]:
    """Notebooks in notebooks/ that the toc does not name."""
    listed = {without_suffix(entry.file) for entry in toc_entries(root)}
    return [notebook for notebook in notebooks_on_disk(root) if notebook not in listed]


def notebooks_out_of_order(root: Path) -> list[str]:
    """Notebooks listed after one with a higher number."""
    listed = [
        without_suffix(entry.file)
        for entry in toc_entries(root)
        if entry.file.startswith("notebooks/")
    ]
    return [later for earlier, later in zip(listed, listed[1:], strict=False) if later < earlier]


def misplaced_chapters(root: Path) -> list[str]:
    """Planned chapters that the toc puts in another part than the plan's."""
    planned_part = {
        notebook: caption for caption, notebooks in PLANNED_PARTS.items() for notebook in notebooks
    }
    return [
        f"{entry.file} is under {entry.part!r}, planned under {planned_part[name]!r}"
        for entry in toc_entries(root)
        if (name := without_suffix(entry.file)) in planned_part
        and entry.part != planned_part[name]
    ]


def chapters_missing_from_the_landing_page(root: Path) -> list[str]:
    """Notebooks in the toc that the landing page's chapter map does not link to."""
    landing = (root / LANDING_PAGE).read_text()
    linked = {
        without_suffix(link)
        for link in re.findall(r"^:link:\s*/?(\S+?)\s*$", landing, flags=re.MULTILINE)
    }
    return [
        name
        for entry in toc_entries(root)
        if (name := without_suffix(entry.file)).startswith("notebooks/") and name not in linked
    ]


def colab_links_in_readme(root: Path) -> list[str]:
    """Every Colab link in README.md, as written."""
    readme = (root / "README.md").read_text()
    return re.findall(r"https://colab\.research\.google\.com/github/[^)\s]*", readme)


def notebooks_without_a_colab_badge(root: Path) -> list[str]:
    """Notebooks in notebooks/ that README.md does not link on Colab."""
    links = set(colab_links_in_readme(root))
    return [name for name in notebooks_on_disk(root) if f"{COLAB_PREFIX}{name}.ipynb" not in links]


def colab_links_to_unplanned_chapters(root: Path) -> list[str]:
    """Colab links in README.md that do not open a planned chapter on the main branch."""
    planned = {
        f"{COLAB_PREFIX}{notebook}.ipynb"
        for notebooks in PLANNED_PARTS.values()
        for notebook in notebooks
    }
    return [link for link in colab_links_in_readme(root) if link not in planned]


CHECKS = (
    missing_files,
    duplicated_files,
    unlisted_notebooks,
    notebooks_out_of_order,
    misplaced_chapters,
    chapters_missing_from_the_landing_page,
    notebooks_without_a_colab_badge,
    colab_links_to_unplanned_chapters,
)


# ------------------------------------------------------------------------ the book as it stands


def test_every_file_the_toc_names_exists() -> None:
    assert missing_files(ROOT) == []


def test_no_file_is_named_twice_in_the_toc() -> None:
    assert duplicated_files(ROOT) == []


def test_every_notebook_is_in_the_toc() -> None:
    assert unlisted_notebooks(ROOT) == []


def test_notebooks_come_in_the_order_of_their_numbers() -> None:
    assert notebooks_out_of_order(ROOT) == []


def test_each_chapter_sits_in_its_planned_part() -> None:
    assert misplaced_chapters(ROOT) == []


def test_landing_page_links_every_chapter_in_the_toc() -> None:
    assert chapters_missing_from_the_landing_page(ROOT) == []


def test_readme_has_a_colab_badge_for_every_notebook() -> None:
    assert notebooks_without_a_colab_badge(ROOT) == []


def test_readme_colab_links_open_planned_chapters_on_main() -> None:
    assert len(colab_links_in_readme(ROOT)) == sum(len(names) for names in PLANNED_PARTS.values())
    assert colab_links_to_unplanned_chapters(ROOT) == []


def test_readme_screenshot_is_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme)
    local = [image for image in images if not image.startswith("https://")]
    assert local == ["book/images/site.png"]
    assert (ROOT / local[0]).stat().st_size > 10_000


def test_toc_starts_at_the_landing_page_and_ends_with_the_references() -> None:
    entries = toc_entries(ROOT)
    assert entries[0].file == "book/intro"
    assert entries[-1].file == "book/references"


# ------------------------------------------------- the checks themselves, on a made-up book


def make_book(
    root: Path, toc: str, notebooks: list[str], landing: str = "# Book\n", readme: str = ""
) -> Path:
    (root / "notebooks").mkdir()
    (root / "book").mkdir()
    (root / "_toc.yml").write_text(toc)
    (root / LANDING_PAGE).write_text(landing)
    (root / "README.md").write_text(readme)
    for notebook in notebooks:
        (root / "notebooks" / f"{notebook}.ipynb").write_text("{}")
    return root


TWO_CHAPTERS = """
format: jb-book
root: book/intro
parts:
  - caption: Foundations
    chapters:
      - file: notebooks/01_what_is_an_optimizer
      - file: notebooks/02_training_loop
"""

LINKS_TO_BOTH = """# Book
:link: /notebooks/01_what_is_an_optimizer
:link: /notebooks/02_training_loop
"""


BADGES_FOR_BOTH = f"""# Book
[![Open in Colab](badge.svg)]({COLAB_PREFIX}notebooks/01_what_is_an_optimizer.ipynb)
[![Open in Colab](badge.svg)]({COLAB_PREFIX}notebooks/02_training_loop.ipynb)
"""


def test_a_consistent_made_up_book_has_no_problems(tmp_path: Path) -> None:
    notebooks = ["01_what_is_an_optimizer", "02_training_loop"]
    root = make_book(tmp_path, TWO_CHAPTERS, notebooks, LINKS_TO_BOTH, BADGES_FOR_BOTH)
    assert {check.__name__: check(root) for check in CHECKS} == {
        check.__name__: [] for check in CHECKS
    }


def test_a_toc_entry_without_its_file_is_reported(tmp_path: Path) -> None:
    root = make_book(tmp_path, TWO_CHAPTERS, ["01_what_is_an_optimizer"], LINKS_TO_BOTH)
    assert missing_files(root) == ["notebooks/02_training_loop"]


def test_a_notebook_named_twice_is_reported(tmp_path: Path) -> None:
    toc = TWO_CHAPTERS + "      - file: notebooks/01_what_is_an_optimizer.ipynb\n"
    root = make_book(tmp_path, toc, ["01_what_is_an_optimizer", "02_training_loop"])
    assert duplicated_files(root) == ["notebooks/01_what_is_an_optimizer"]


def test_a_notebook_left_out_of_the_toc_is_reported(tmp_path: Path) -> None:
    notebooks = ["01_what_is_an_optimizer", "02_training_loop", "03_gradient_descent"]
    root = make_book(tmp_path, TWO_CHAPTERS, notebooks)
    assert unlisted_notebooks(root) == ["notebooks/03_gradient_descent"]


def test_notebooks_listed_out_of_order_are_reported(tmp_path: Path) -> None:
    toc = TWO_CHAPTERS.replace("01_what_is_an_optimizer", "TMP").replace(
        "02_training_loop", "01_what_is_an_optimizer"
    ).replace("TMP", "02_training_loop")
    root = make_book(tmp_path, toc, ["01_what_is_an_optimizer", "02_training_loop"])
    assert notebooks_out_of_order(root) == ["notebooks/01_what_is_an_optimizer"]


def test_a_chapter_in_the_wrong_part_is_reported(tmp_path: Path) -> None:
    toc = TWO_CHAPTERS.replace("caption: Foundations", "caption: The algorithms")
    root = make_book(tmp_path, toc, ["01_what_is_an_optimizer", "02_training_loop"])
    assert len(misplaced_chapters(root)) == 2
    assert "planned under 'Foundations'" in misplaced_chapters(root)[0]


def test_a_chapter_the_landing_page_does_not_link_is_reported(tmp_path: Path) -> None:
    landing = "# Book\n:link: /notebooks/01_what_is_an_optimizer\n"
    root = make_book(
        tmp_path, TWO_CHAPTERS, ["01_what_is_an_optimizer", "02_training_loop"], landing
    )
    assert chapters_missing_from_the_landing_page(root) == ["notebooks/02_training_loop"]


def test_a_notebook_without_a_colab_badge_is_reported(tmp_path: Path) -> None:
    readme = BADGES_FOR_BOTH.replace("02_training_loop", "02_training")
    root = make_book(tmp_path, TWO_CHAPTERS, ["01_what_is_an_optimizer", "02_training_loop"],
                     readme=readme)
    assert notebooks_without_a_colab_badge(root) == ["notebooks/02_training_loop"]
    assert colab_links_to_unplanned_chapters(root) == [
        f"{COLAB_PREFIX}notebooks/02_training.ipynb"
    ]


def test_a_colab_link_to_another_branch_is_reported(tmp_path: Path) -> None:
    readme = BADGES_FOR_BOTH.replace("/blob/main/notebooks/01", "/blob/master/notebooks/01")
    root = make_book(tmp_path, TWO_CHAPTERS, ["01_what_is_an_optimizer", "02_training_loop"],
                     readme=readme)
    assert notebooks_without_a_colab_badge(root) == ["notebooks/01_what_is_an_optimizer"]
    assert len(colab_links_to_unplanned_chapters(root)) == 1


def test_the_plan_numbers_its_chapters_from_one_in_reading_order() -> None:
    everything = [notebook for notebooks in PLANNED_PARTS.values() for notebook in notebooks]
    numbers = [int(Path(notebook).name[:2]) for notebook in everything]
    assert numbers == list(range(1, len(everything) + 1))


if __name__ == "__main__":
    problems = {check.__name__: check(ROOT) for check in CHECKS}
    for name, found in problems.items():
        for problem in found:
            print(f"{name}: {problem}")
    sys.exit(1 if any(problems.values()) else 0)
