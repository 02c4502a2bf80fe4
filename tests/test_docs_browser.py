"""The built site as a reader sees it: every page opened in headless Chromium at 1280 px.

A page fails when the browser logs an error (a script that throws, a file that is missing), when it
asks for anything from outside the site (fonts, scripts: the docs work offline), when a Mermaid
diagram did not render as an SVG or renders too small to read, when a table or a code block is wider
than the content column (cut at the right edge, or a code line that needs sideways scrolling), or
when a code span without a space breaks across lines inside a table (a key or an environment
variable cut mid-word).

Chromium is driven through its DevTools protocol over a websocket (the ``websockets`` package, a dev
dependency); the site is built into a temporary folder and served by a loopback HTTP server started
here. Every wait is bounded. Without a Chromium (Debian's ``chromium`` package; CI installs it) the
test is skipped and says so.

Two more tests build a small site in a temporary folder, with the real configuration, theme and
hooks, holding a page with a broken diagram and a page with an over-wide table, and check that the
same inspection reports both: the browser test can fail.
"""

from __future__ import annotations

import contextlib
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
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
WIDTH = 1280
HEIGHT = 900
PAGE_TIMEOUT = 30.0  # one page: load, then every diagram rendered
MIN_DIAGRAM_TEXT_PX = 10.0  # a diagram's labels, as shown on the page: readable

pytestmark = pytest.mark.slow


def chromium() -> str | None:
    """The Chromium to drive: ``$CHROMIUM``, else the first of the usual names on the PATH."""
    named = os.environ.get("CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


# -- the site -------------------------------------------------------------------------------------


def build(config: Path, site: Path) -> None:
    """``mkdocs build --strict`` of ``config`` into ``site``."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, f"mkdocs build exited {result.returncode}\n{result.stderr}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    """The folder ``site`` over HTTP on a free loopback port: yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="docs-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def page_paths(site: Path) -> list[str]:
    """Every page of a built site, as a path under its root (``""``, ``concepts/lifecycle/``, ...)."""
    paths = []
    for html in sorted(site.rglob("*.html")):
        relative = html.relative_to(site).as_posix()
        paths.append(relative.removesuffix("index.html"))
    return paths


# -- the browser ----------------------------------------------------------------------------------


class DevTools:
    """A minimal synchronous client of Chromium's DevTools protocol, on one page target."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 10) -> Any:
        """Call ``method``; the events that arrive meanwhile are kept in `events`."""
        self._next += 1
        ident = self._next
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline, method)
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_for(self, event: str, timeout: float) -> dict[str, Any]:
        """The next ``event`` (earlier kept events do not count)."""
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline, event)
            if message.get("method") == event:
                return message

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer to {waiting_for} in time")
        message = json.loads(self._ws.recv(timeout=left))
        if "method" in message:
            self.events.append(message)
        return message  # type: ignore[no-any-return]

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")


@contextlib.contextmanager
def browser(executable: str, profile: Path) -> Iterator[DevTools]:
    """A headless Chromium with a fresh profile, and a DevTools client on its one page."""
    from websockets.sync.client import connect

    process = subprocess.Popen(
        [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--mute-audio",
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},{HEIGHT}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            if process.poll() is not None:
                raise RuntimeError(f"{executable} exited {process.returncode} at start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{executable} did not open its DevTools port within 30 s")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            targets = json.load(answer)
        page = next(t for t in targets if t.get("type") == "page")
        with connect(
            page["webSocketDebuggerUrl"], open_timeout=10, close_timeout=5, max_size=None
        ) as ws:
            yield DevTools(ws)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# -- what a page must be --------------------------------------------------------------------------

# mkdocs-material renders a diagram into a closed shadow root: open it to the test.
OPEN_SHADOW_ROOTS = """
(() => {
  const attach = Element.prototype.attachShadow;
  if (attach.opened) return;
  const opened = function (init) {
    return attach.call(this, Object.assign({}, init, {mode: "open"}));
  };
  opened.opened = true;
  Element.prototype.attachShadow = opened;
})();
"""

# Diagrams: how many wait, which failed, the smallest label as shown (px).
DIAGRAMS = """
(() => {
  const pending = [...document.querySelectorAll("pre.mermaid")].map(
    (el) => el.textContent.trim().split("\\n")[0]);
  const failed = [];
  let smallest = null;
  document.querySelectorAll("div.mermaid").forEach((host, i) => {
    const root = host.shadowRoot || host;
    const svg = root.querySelector("svg");
    if (!svg || svg.getAttribute("aria-roledescription") === "error"
        || /Syntax error/.test(svg.textContent)) {
      failed.push("diagram " + (i + 1) + (svg ? ": " + svg.textContent.trim().slice(0, 80) : ""));
      return;
    }
    root.querySelectorAll(".nodeLabel, .edgeLabel, text").forEach((label) => {
      const box = label.getBoundingClientRect();
      if (box.height > 0 && label.textContent.trim()
          && (smallest === null || box.height < smallest)) smallest = box.height;
    });
  });
  return {pending, failed, smallest, total: document.querySelectorAll(".mermaid").length};
})()
"""

# Tables and code blocks against the content column; code spans broken inside a table cell.
WIDTHS = """
(() => {
  const out = [];
  const column = document.querySelector(".md-content__inner");
  if (!column) return out;
  const style = getComputedStyle(column);
  const width = column.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const name = (el) => (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 60);
  column.querySelectorAll("table").forEach((table) => {
    const w = Math.max(table.scrollWidth, table.getBoundingClientRect().width);
    if (w > width + 1) out.push(`table ${Math.round(w)} px wide in a ${Math.round(width)} px column: ${name(table)}`);
  });
  column.querySelectorAll("pre > code").forEach((code) => {
    if (code.scrollWidth > code.clientWidth + 1) {
      out.push(`code block needs sideways scrolling (${code.scrollWidth} px in ${code.clientWidth} px): ${name(code)}`);
    }
  });
  column.querySelectorAll("td code, th code").forEach((code) => {
    if (!/\\s/.test(code.textContent) && code.getClientRects().length > 1) {
      out.push(`"${code.textContent}" breaks across lines in a table cell`);
    }
  });
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    out.push(`the page is ${document.documentElement.scrollWidth} px wide`);
  }
  return out;
})()
"""


@dataclass
class Inspector:
    """Opens pages of a site served at ``base`` and says what is wrong with each."""

    tools: DevTools
    base: str
    problems: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.tools.send(f"{domain}.enable")
        self.tools.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )
        self.tools.send("Page.addScriptToEvaluateOnNewDocument", {"source": OPEN_SHADOW_ROOTS})

    def inspect(self, path: str) -> list[str]:
        tools = self.tools
        tools.events.clear()
        tools.send("Page.navigate", {"url": self.base + path})
        tools.wait_for("Page.loadEventFired", PAGE_TIMEOUT)
        out: list[str] = []
        deadline = time.monotonic() + PAGE_TIMEOUT
        while True:
            diagrams = tools.evaluate(DIAGRAMS)
            if not diagrams["pending"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(0.2)  # errors logged right after the last render
        tools.evaluate("0")  # and drain the events that came meanwhile
        out += [f"diagram did not render: {first}" for first in diagrams["pending"]]
        out += [f"{failed} did not render as SVG" for failed in diagrams["failed"]]
        smallest = diagrams["smallest"]
        if smallest is not None and smallest < MIN_DIAGRAM_TEXT_PX:
            out.append(f"a diagram's labels are {smallest:.1f} px high: too small to read")
        out += tools.evaluate(WIDTHS)
        out += self._logged()
        self.problems[path] = out
        return out

    def _logged(self) -> list[str]:
        out = []
        site = self.base.rstrip("/")
        for event in self.tools.events:
            method, params = event["method"], event["params"]
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                text = " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params["args"]
                )
                out.append(f"console error: {text[:200]}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                text = details.get("exception", {}).get("description") or details.get("text")
                out.append(f"uncaught: {str(text)[:200]}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                out.append(f"browser error: {entry['text'][:200]} {entry.get('url', '')}".strip())
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith((site, "data:", "blob:", "about:")):
                    out.append(f"loads from outside the site: {url[:120]}")
        return out


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def executable() -> str:
    found = chromium()
    if found is None:
        pytest.skip(
            "no Chromium to open the site in: install Debian's `chromium` package "
            "(apt-get install chromium, as .ci/run does) or set CHROMIUM to a Chromium binary"
        )
    return found


def test_every_page_reads_well_in_a_browser(executable: str, tmp_path: Path) -> None:
    """Every built page at 1280 px: no console error, nothing loaded from outside the site, every
    diagram an SVG that can be read, no table or code block wider than the content column."""
    site = tmp_path / "site"
    build(REPO / "mkdocs.yml", site)
    paths = page_paths(site)
    assert len(paths) > 20, paths
    with serve(site) as base, browser(executable, tmp_path / "profile") as tools:
        inspector = Inspector(tools, base)
        diagrams = 0
        for path in paths:
            inspector.inspect(path)
            diagrams += tools.evaluate("document.querySelectorAll('div.mermaid').length")
    found = {path: problems for path, problems in inspector.problems.items() if problems}
    assert not found, "\n".join(
        f"{path or '/'}:\n" + "\n".join(f"  - {p}" for p in problems)
        for path, problems in found.items()
    )
    assert diagrams >= 3, f"only {diagrams} diagrams rendered on the whole site"


# A page of each kind of fault, in a small site with the real configuration, theme and hooks.
PLANTED = {
    "index.md": "# Planted\n\nA small site for the browser test's own check.\n",
    "broken-diagram.md": (
        "# A broken diagram\n\n```mermaid\nflowchart LR\n  a[start --> b(((\n```\n"
    ),
    "wide-table.md": "# A wide table\n\n"
    + "".join(
        "| " + " | ".join(cells) + " |\n"
        for cells in (
            [f"column {i}" for i in range(8)],
            ["---"] * 8,
            [f"`APP_A_VERY_LONG_UNBREAKABLE_NAME_{i}`" for i in range(8)],
        )
    ),
}


@pytest.fixture(scope="module")
def planted_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted pages built with the site's own mkdocs.yml (its nav left out) and assets."""
    root = tmp_path_factory.mktemp("planted")
    docs = root / "docs"
    for folder in ("js", "css", "fonts"):
        if (DOCS / folder).is_dir():
            shutil.copytree(DOCS / folder, docs / folder)
    for name, text in PLANTED.items():
        (docs / name).write_text(text, encoding="utf-8")
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    config = config.split("\nnav:", 1)[0]
    config = re.sub(r"(?m)^docs_dir: .*$", f"docs_dir: {docs}", config)
    config = config.replace("- docs/hooks.py", f"- {DOCS / 'hooks.py'}")
    (root / "mkdocs.yml").write_text(config, encoding="utf-8")
    build(root / "mkdocs.yml", root / "site")
    return root


def test_a_broken_diagram_fails_the_browser_test(
    executable: str, planted_site: Path, tmp_path: Path
) -> None:
    """A diagram Mermaid cannot parse is reported (it does not render as an SVG)."""
    with serve(planted_site / "site") as base, browser(executable, tmp_path / "p") as tools:
        problems = Inspector(tools, base).inspect("broken-diagram/")
        clean = Inspector(tools, base).inspect("")
    assert any("did not render" in p for p in problems), problems
    assert not clean, clean


def test_an_over_wide_table_fails_the_browser_test(
    executable: str, planted_site: Path, tmp_path: Path
) -> None:
    """A table wider than the content column is reported, and so are its cut code spans."""
    with serve(planted_site / "site") as base, browser(executable, tmp_path / "p") as tools:
        problems = Inspector(tools, base).inspect("wide-table/")
    assert any(p.startswith("table ") and "px wide" in p for p in problems), problems
