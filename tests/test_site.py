"""The published book, opened page by page in a headless Chromium.

The site is built first if `_build/html` is missing or older than its sources, then served on a
localhost port. Every page named in `_toc.yml` is opened once; the checks below read what the
browser saw there:

- the page has the book's title and a heading, and every image on it has loaded;
- no request for a file of the site failed or answered an error status, and no script threw;
- the navigation lists every page of `_toc.yml`, under its part's caption;
- a notebook page's Colab button opens exactly that notebook on GitHub's main branch;
- every animation a notebook stores is on its page and plays there: the book's own player
  (`playground.plots.animate_trajectories`, a picture with SVG paths drawn by a script)
  answers its slider and its play button; a matplotlib `to_jshtml` animation shows a frame;
- pages with maths load MathJax, pages with widgets load the widget manager.

Scripts from CDNs (MathJax, require.js, the widget html-manager) cannot load offline. Requests
to any host other than localhost are aborted, listed in a warning, and the checks settle for
the page referencing them where they are needed.

Chromium is Debian's (`apt-get install chromium`, at /usr/bin/chromium, or set CHROMIUM_PATH);
Playwright drives it and never downloads a browser of its own.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import yaml
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often give /dev/shm only 64 MB
]
COLAB_PREFIX = "https://colab.research.google.com/github/optim-lessons/optim-lessons/blob/main/"
BUILD_TIMEOUT_S = 1200  # the build takes seconds to a few minutes; a slow shared CPU is no failure
PAGE_TIMEOUT_MS = 60_000
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Jupyter Book 1 and sphinx-thebe 0.3.1 both put `const THEBE_JS_URL = ...` in every page; the
# second declaration throws, harmlessly (the thebe launch button is off).
HARMLESS_SCRIPT_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)

# What the build reads: a change to any of these makes the built site stale.
SOURCE_GLOBS = ("_config.yml", "_toc.yml", "book/**/*", "notebooks/*.ipynb")


# ------------------------------------------------------------------------------------- the toc


def toc_files(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """Every file that _toc.yml names, root first, in reading order, without suffix."""
    toc = yaml.safe_load(toc_path.read_text())
    files = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            for key in ("chapters", "sections"):
                walk(entry.get(key, []))
            for part in entry.get("parts", []):
                walk(part.get("chapters", []))

    walk(toc.get("chapters", []))
    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return files


def toc_captions(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """The captions of the parts of _toc.yml, in order."""
    toc = yaml.safe_load(toc_path.read_text())
    return [part["caption"] for part in toc.get("parts", []) if "caption" in part]


def source_of(page: str) -> Path:
    """The .md or .ipynb file behind a toc entry."""
    for suffix in (".ipynb", ".md"):
        candidate = ROOT / f"{page}{suffix}"
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"_toc.yml names {page!r}, but neither .ipynb nor .md exists")


PAGES = toc_files()
NOTEBOOK_PAGES = [page for page in PAGES if (ROOT / f"{page}.ipynb").exists()]
MARKDOWN_PAGES = [page for page in PAGES if page not in NOTEBOOK_PAGES]


def notebook_outputs(page: str) -> list[dict]:
    """Every output stored in a notebook's code cells."""
    notebook = json.loads((ROOT / f"{page}.ipynb").read_text())
    return [
        output
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
        for output in cell.get("outputs", [])
    ]


def html_text(output: dict) -> str:
    html = output.get("data", {}).get("text/html", "")
    return "".join(html) if isinstance(html, list) else html


def stored_animations(page: str, html_class: str) -> int:
    """How many animations of one kind the notebook's outputs hold: `optim-lessons-animation`
    (the book's SVG player) or `animation` (matplotlib's to_jshtml)."""
    marker = f'class="{html_class}"'
    return sum(html_text(output).count(marker) for output in notebook_outputs(page))


def stored_widget_views(page: str) -> int:
    """How many ipywidgets views the notebook's outputs hold."""
    return sum(
        "application/vnd.jupyter.widget-view+json" in output.get("data", {})
        for output in notebook_outputs(page)
    )


def first_heading(page: str) -> str:
    """The text of the page's level-one heading in its source, inline markup removed."""
    source = source_of(page)
    if source.suffix == ".ipynb":
        notebook = json.loads(source.read_text())
        text = "\n".join(
            "".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown"
        )
    else:
        text = source.read_text()
    match = re.search(r"^# (.+)$", text, flags=re.MULTILINE)
    assert match, f"{source.name} has no level-one heading"
    return re.sub(r"[`*_]", "", match.group(1)).strip()


# ------------------------------------------------------------------------------------ the build


def newest_source_mtime() -> float:
    return max(
        path.stat().st_mtime
        for pattern in SOURCE_GLOBS
        for path in ROOT.glob(pattern)
        if path.is_file()
    )


def site_is_stale() -> bool:
    index = HTML / "index.html"
    return not index.exists() or index.stat().st_mtime < newest_source_mtime()


def build_site() -> float:
    """Build the book as `make book` does; return the seconds it took."""
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", ".", "-W", "-n", "--keep-going"]
    shutil.rmtree(HTML, ignore_errors=True)
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
    )
    seconds = time.perf_counter() - started
    assert result.returncode == 0, (
        f"`{' '.join(command[1:])}` failed after {seconds:.0f} s:\n"
        f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return seconds


@pytest.fixture(scope="module")
def site() -> Path:
    if site_is_stale():
        seconds = build_site()
        print(f"built the site in {seconds:.1f} s")
    assert (HTML / "index.html").exists()
    return HTML


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM}: `apt-get install chromium`, or set CHROMIUM_PATH"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@dataclass
class PageReport:
    """What the browser saw on one page."""

    page: str
    url: str
    title: str = ""
    heading: str = ""
    images: list[dict] = field(default_factory=list)
    local_failures: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    nav_links: list[str] = field(default_factory=list)
    nav_captions: list[str] = field(default_factory=list)
    colab_links: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    math_elements: int = 0
    widget_views: int = 0
    players: list[dict] = field(default_factory=list)
    jshtml_animations: list[dict] = field(default_factory=list)


READ_PAGE = """() => {
  const article = document.querySelector("article.bd-article") || document.body;
  const heading = article.querySelector("h1");
  return {
    title: document.title,
    heading: heading ? heading.textContent.replace(/#\\s*$/, "").trim() : "",
    images: Array.from(document.images).map(img => ({
      src: img.currentSrc || img.src || "", id: img.id, complete: img.complete,
      naturalWidth: img.naturalWidth })),
    nav_links: Array.from(document.querySelectorAll("nav.bd-docs-nav a.reference.internal"))
      .map(a => a.href),
    nav_captions: Array.from(document.querySelectorAll("nav.bd-docs-nav .caption-text"))
      .map(span => span.textContent.trim()),
    colab_links: Array.from(document.querySelectorAll("a[href*='colab.research.google.com']"))
      .map(a => a.getAttribute("href")),
    scripts: Array.from(document.scripts).map(s => s.getAttribute("src")).filter(Boolean),
    math_elements: article.querySelectorAll(".math").length,
    widget_views: document.querySelectorAll(
      "script[type='application/vnd.jupyter.widget-view+json']").length,
    jshtml_animations: Array.from(document.querySelectorAll("div.animation")).map(div => {
      const img = div.querySelector("img[id^='_anim_img']");
      return { has_img: Boolean(img), naturalWidth: img ? img.naturalWidth : 0 };
    }),
  };
}"""

# The book's player: rewind with the slider, then press play and see the step count move on.
PLAYER_SELECTOR = "div.optim-lessons-animation"
REWIND_PLAYER = """(root) => {
  const slider = root.querySelector("input[type=range]");
  slider.value = 0;
  slider.dispatchEvent(new Event("input"));
  const background = root.querySelector("img");
  return {
    id: root.id,
    ready: root.dataset.ready === "1",
    background_width: background ? background.naturalWidth : 0,
    paths: root.querySelectorAll("svg polyline").length,
    label_at_start: root.querySelector("span").textContent,
    points_at_start: Array.from(root.querySelectorAll("svg polyline"))
      .map(line => line.getAttribute("points").trim().split(/\\s+/).length),
  };
}"""
PLAYER_MOVED_ON = "(root) => root.querySelector('span').textContent !== 'step 0'"

IMAGES_SETTLED = """() => Array.from(document.images).every(img => img.complete)
  && Array.from(document.querySelectorAll("div.animation img[id^='_anim_img']"))
       .every(img => img.naturalWidth > 0)"""


def visit(browser: object, base_url: str, page_name: str) -> PageReport:
    """Open one page with every non-local request aborted, and read what it shows."""
    url = urljoin(base_url, f"{page_name}.html")
    report = PageReport(page=page_name, url=url)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()

    def route(route_: object) -> None:
        request_url = route_.request.url
        if urlsplit(request_url).hostname in LOCAL_HOSTS:
            route_.continue_()
        else:
            report.blocked.append(request_url)
            route_.abort()

    def on_response(response: object) -> None:
        if urlsplit(response.url).hostname in LOCAL_HOSTS and response.status >= 400:
            report.local_failures.append(f"{response.status} {response.url}")

    def on_request_failed(request: object) -> None:
        if urlsplit(request.url).hostname in LOCAL_HOSTS:
            report.local_failures.append(f"failed ({request.failure}) {request.url}")

    page.route("**/*", route)
    page.on("response", on_response)
    page.on("requestfailed", on_request_failed)
    page.on("pageerror", lambda error: report.script_errors.append(str(error)))
    page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
    try:
        page.wait_for_function(IMAGES_SETTLED, timeout=PAGE_TIMEOUT_MS)
    except PlaywrightTimeout:
        pass  # the image checks below say which image never loaded
    for key, value in page.evaluate(READ_PAGE).items():
        setattr(report, key, value)
    for player in page.query_selector_all(PLAYER_SELECTOR):
        seen = player.evaluate(REWIND_PLAYER)
        player.scroll_into_view_if_needed()
        player.query_selector("button").click()
        try:
            page.wait_for_function(PLAYER_MOVED_ON, arg=player, timeout=10_000)
            seen["plays"] = True
        except PlaywrightTimeout:
            seen["plays"] = False
        report.players.append(seen)
    if page_name == PAGES[0]:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "landing.png"))
    elif page_name == (NOTEBOOK_PAGES or PAGES[1:2] or [None])[0]:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "chapter.png"))
    context.close()
    return report


@pytest.fixture(scope="module")
def reports(browser: object, base_url: str) -> Iterator[dict[str, PageReport]]:
    """Every page of _toc.yml, opened once."""
    seen = {page: visit(browser, base_url, page) for page in PAGES}
    yield seen
    blocked_hosts = sorted(
        {urlsplit(url).hostname for report in seen.values() for url in report.blocked}
    )
    if blocked_hosts:
        warnings.warn(
            f"offline test: aborted requests to {', '.join(blocked_hosts)}. MathJax, "
            "require.js, the widget manager and the icons of the animation controls come "
            "from CDNs; the pages are checked to ask for them instead.",
            stacklevel=1,
        )


def local_path(url: str, base_url: str) -> str:
    """A site URL as a toc-style page name: 'http://host/book/intro.html#x' -> 'book/intro'."""
    path = urlsplit(url).path
    return path[len(urlsplit(base_url).path) :].removesuffix(".html")


# ------------------------------------------------------------------------------------ the tests


@pytest.mark.parametrize("page", PAGES)
def test_page_has_the_book_title_and_its_heading(reports: dict[str, PageReport], page: str) -> None:
    report = reports[page]
    book_title = yaml.safe_load((ROOT / "_config.yml").read_text())["title"]
    assert report.heading == first_heading(page)
    assert report.title == f"{report.heading} \N{EM DASH} {book_title}"


@pytest.mark.parametrize("page", PAGES)
def test_every_image_on_the_page_loads(reports: dict[str, PageReport], page: str) -> None:
    report = reports[page]
    assert report.images, "every page shows at least the logo"
    broken = [image["src"][:120] for image in report.images if image["naturalWidth"] == 0]
    assert broken == []


@pytest.mark.parametrize("page", PAGES)
def test_no_file_of_the_site_is_missing(reports: dict[str, PageReport], page: str) -> None:
    assert reports[page].local_failures == []


@pytest.mark.parametrize("page", PAGES)
def test_no_script_on_the_page_throws(reports: dict[str, PageReport], page: str) -> None:
    errors = [
        error
        for error in reports[page].script_errors
        if not any(harmless in error for harmless in HARMLESS_SCRIPT_ERRORS)
    ]
    assert errors == []


def test_landing_page_shows_the_cover(reports: dict[str, PageReport]) -> None:
    landing = reports[PAGES[0]]
    covers = [image for image in landing.images if image["src"].endswith("/cover.png")]
    assert len(covers) == 1 and covers[0]["naturalWidth"] == 1200
    assert (SCREENSHOTS / "landing.png").stat().st_size > 10_000


@pytest.mark.parametrize("page", PAGES)
def test_navigation_lists_every_page_of_the_toc_under_its_part(
    reports: dict[str, PageReport], base_url: str, page: str
) -> None:
    report = reports[page]
    listed = [local_path(url, base_url) for url in report.nav_links]
    assert sorted(set(listed)) == sorted(PAGES)
    assert report.nav_captions == toc_captions()


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_notebook_page_opens_its_own_notebook_on_colab(
    reports: dict[str, PageReport], page: str
) -> None:
    links = set(reports[page].colab_links)
    assert links == {f"{COLAB_PREFIX}{page}.ipynb"}
    assert (ROOT / f"{page}.ipynb").is_file()


@pytest.mark.parametrize("page", MARKDOWN_PAGES)
def test_markdown_page_offers_no_colab_link(reports: dict[str, PageReport], page: str) -> None:
    assert reports[page].colab_links == []


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_every_stored_player_animation_plays_on_its_page(
    reports: dict[str, PageReport], page: str
) -> None:
    players = reports[page].players
    assert len(players) == stored_animations(page, "optim-lessons-animation")
    for player in players:
        assert player["ready"], f"{player['id']}: its script did not run"
        assert player["background_width"] > 0, f"{player['id']}: no background picture"
        assert player["paths"] > 0
        assert player["label_at_start"] == "step 0"
        assert player["points_at_start"] == [1] * player["paths"], "a rewound path is one point"
        assert player["plays"], f"{player['id']}: the play button does not advance the steps"


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_every_stored_jshtml_animation_shows_a_frame_on_its_page(
    reports: dict[str, PageReport], page: str
) -> None:
    shown = reports[page].jshtml_animations
    assert len(shown) == stored_animations(page, "animation")
    assert all(animation["has_img"] and animation["naturalWidth"] > 0 for animation in shown)


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_stored_widgets_are_on_the_page_with_the_widget_manager(
    reports: dict[str, PageReport], page: str
) -> None:
    report = reports[page]
    assert report.widget_views == stored_widget_views(page)
    if report.widget_views:
        script_files = [src.split("?")[0] for src in report.scripts]
        assert any(src.endswith(("/require.js", "/require.min.js")) for src in script_files)
        assert any(
            "@jupyter-widgets/html-manager" in src and src.endswith("embed-amd.js")
            for src in script_files
        )


def test_every_page_with_maths_asks_for_mathjax(reports: dict[str, PageReport]) -> None:
    without_mathjax = []
    for report in reports.values():
        if report.math_elements == 0:
            continue
        mathjax = [src for src in report.scripts if "mathjax" in src.lower()]
        requested = mathjax and any(url.startswith(mathjax[0]) for url in report.blocked)
        if not requested:
            without_mathjax.append(report.page)
    assert without_mathjax == []
