"""Maths that needs no network: KaTeX renders every formula while the book is built, and the
site serves KaTeX's stylesheet and fonts from its own `_static/katex/`.

sphinxcontrib-katex (with `katex_prerender: true`) turns each formula into HTML by running
KaTeX under node during the build, so a page carries its formulas already typeset and loads no
maths script at all. What the typeset HTML still needs, the stylesheet and its fonts, comes from
the npm package `katex` (package.json, installed by `npm ci`, which `make book` runs). This
extension checks that node and that package are there, and at the same KaTeX version as the
renderer bundled in sphinxcontrib-katex (HTML from one version with the CSS of another
misplaces glyphs), then has Sphinx copy `katex.min.css` and the woff2 fonts into the build's
`_static/katex/`. Browsers that load the site all read woff2, the first format the stylesheet
offers; the woff and ttf copies are left out.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

KATEX_DIST = Path("node_modules") / "katex" / "dist"
STATIC_SUBDIR = "katex"
CSS_FILE = "katex.min.css"


def katex_dist(app: Sphinx) -> Path:
    return Path(app.confdir) / KATEX_DIST


def check_prerequisites(app: Sphinx) -> None:
    """Fail the build at its start, with the way out, rather than midway with node's error."""
    from sphinxcontrib import katex as sphinx_katex

    if app.config.html_math_renderer != "katex" or not app.config.katex_prerender:
        raise ExtensionError(
            "offline_maths expects html_math_renderer: katex and katex_prerender: true"
        )
    if shutil.which(sphinx_katex.NODEJS_BINARY) is None:
        raise ExtensionError(
            "KaTeX typesets the formulas with node at build time, and there is no `node` on "
            "the PATH: install Node.js (Debian: `apt-get install nodejs npm`)."
        )
    package = katex_dist(app).parent / "package.json"
    if not package.is_file():
        raise ExtensionError(
            f"no {package.parent}: run `npm ci` in {app.confdir} (`make book` does it)."
        )
    served = json.loads(package.read_text())["version"]
    if served != sphinx_katex.katex_version:
        raise ExtensionError(
            f"the site would serve KaTeX {served}'s stylesheet with formulas typeset by KaTeX "
            f"{sphinx_katex.katex_version} (sphinxcontrib-katex's): pin katex to "
            f"{sphinx_katex.katex_version} in package.json, then `npm install`."
        )


def stage_assets(app: Sphinx) -> None:
    """Put the stylesheet and the woff2 fonts in a static folder of their own, which Sphinx then
    copies into `_static/katex/` like any other static file (and links with a checksum)."""
    staging = Path(tempfile.mkdtemp(prefix="offline-maths-"))
    app._offline_maths_staging = staging
    source = katex_dist(app)
    target = staging / STATIC_SUBDIR
    (target / "fonts").mkdir(parents=True)
    shutil.copy2(source / CSS_FILE, target / CSS_FILE)
    for font in sorted((source / "fonts").glob("*.woff2")):
        shutil.copy2(font, target / "fonts" / font.name)
    app.config.html_static_path.append(str(staging))


def remove_staging(app: Sphinx, exception: Exception | None) -> None:
    staging = getattr(app, "_offline_maths_staging", None)
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)


def link_stylesheet(app: Sphinx, config: object) -> None:
    """Every page links `_static/katex/katex.min.css` (sphinxcontrib-katex's default is a CDN)."""
    config.katex_css_path = f"{STATIC_SUBDIR}/{CSS_FILE}"


def start_server_process(cls: type, rundir: Path, timeout: float) -> tuple:
    """sphinxcontrib-katex's own start-up, less a race: node creates its socket file when it
    binds and accepts connections only once it listens, so a connection made in between is
    refused. This one retries until the time-out instead of failing the build (seen on a busy
    2-core machine)."""
    socket_path = rundir / "katex.sock"
    process = subprocess.Popen(
        cls.build_command(socket=socket_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=rundir,
    )
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ExtensionError(f"the KaTeX renderer (node) exited with {process.returncode}")
        if socket_path.is_socket():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(socket_path))
                return process, sock
            except ConnectionRefusedError:
                sock.close()
        if time.monotonic() > deadline:
            process.kill()
            raise cls.timeout_error(timeout)
        time.sleep(0.01)


def setup(app: Sphinx) -> dict:
    from sphinxcontrib import katex as sphinx_katex

    app.setup_extension("sphinxcontrib.katex")
    sphinx_katex.KaTeXServer.start_server_process = classmethod(start_server_process)
    sphinx_katex.STARTUP_TIMEOUT = 60.0  # node's start on a loaded machine; 5 s upstream
    app.connect("config-inited", link_stylesheet)
    # Ahead of sphinxcontrib-katex's own builder-inited handler (priority 500).
    app.connect("builder-inited", check_prerequisites, priority=100)
    app.connect("builder-inited", stage_assets, priority=101)
    app.connect("build-finished", remove_staging)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
