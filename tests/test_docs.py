"""The documentation's examples run as written, and the site builds with ``--strict``.

How pages under ``docs/`` mark their code (only fences that start at the left margin count):

- Every ```` ```python ```` block runs in a fresh interpreter (``python -W error``), in a temporary
  directory of its own, and must exit 0. Blocks assert what the page claims.
- A block whose first line is ``# <path>`` (``# shop.py``, ``# config/default.toml``,
  ``# test_shop.py``, any language) is a file: it is written at that path for its own run and for
  every later block of the same page. A Python module that defines ``App`` (an `Application`
  subclass) is imported and started and stopped once by `framework.testing.run_app` (HTTP on a
  free port, leak checks on). A ``test_*.py`` file is run with pytest.
- ``<!-- test: skip -->`` on the line before a fence: shown, not run (fragments, deployment).
- ``<!-- test: run -->`` before a ```` ```console ```` block: each ``$ framework ...`` line runs
  (leading ``NAME=value`` words set environment variables; ``# ...`` is a comment); the lines
  under it are its expected output, stdout then stderr; a ``...`` line stands for any lines.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
TIMEOUT = 60

FENCE = re.compile(
    r"^(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
FILE_LINE = re.compile(r"^(?:#|//)\s*(?P<path>[\w./-]*\.(?:py|toml|ya?ml|env|ini|cfg|txt))\s*$")
DIRECTIVE = re.compile(r"<!--\s*test:\s*(?P<what>[\w-]+)\s*-->")

# Imports the module named on the command line; if it defines an Application subclass `App`,
# starts and stops it once with the testing kit (HTTP on a free port, leak checks on).
START_MODULE = textwrap.dedent(
    """
    import importlib, sys
    import anyio
    from framework import Application
    from framework.testing import run_app

    module = importlib.import_module(sys.argv[1])
    App = getattr(module, "App", None)
    if isinstance(App, type) and issubclass(App, Application):
        async def main():
            async with run_app(App, overrides={"logging.level": "WARNING"}) as harness:
                assert harness.app.readiness.ready
            assert harness.app.exit_code == 0, harness.app.exit_code
        anyio.run(main)
    """
)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    body: str
    directive: str | None

    @property
    def path(self) -> str | None:
        """The file this block is, from a first line like ``# shop.py``."""
        first = self.body.split("\n", 1)[0]
        found = FILE_LINE.match(first)
        return found["path"] if found else None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def page_blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    blocks = []
    for found in FENCE.finditer(text):
        before = text[: found.start()].rstrip("\n").rsplit("\n", 1)[-1]
        directive = DIRECTIVE.search(before)
        blocks.append(
            Block(
                page=page.relative_to(DOCS).as_posix(),
                line=text.count("\n", 0, found.start()) + 1,
                lang=found["info"].strip().split(" ")[0].lower(),
                body=found["body"],
                directive=directive["what"] if directive else None,
            )
        )
    return blocks


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def runnable() -> list[tuple[Block, list[Block]]]:
    """Each block to run, with the file blocks written before it on the same page."""
    out = []
    for page in pages():
        files: list[Block] = []
        for block in page_blocks(page):
            if block.directive == "skip":
                continue
            if block.path is not None:
                files.append(block)
            if block.lang == "python" or (block.lang == "console" and block.directive == "run"):
                out.append((block, list(files)))
    return out


def child_env() -> dict[str, str]:
    """The environment of an example: no APP_* settings of ours leak in; no bytecode written."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APP_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = subprocess.run(
        args,
        cwd=cwd,
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return result.returncode, result.stdout, result.stderr


def warning_options() -> list[str]:
    """``-W error`` and the ignores pyproject.toml's pytest settings declare (the dependencies' own
    deprecation warnings at the low end of their ranges), as interpreter options."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    filters = config["tool"]["pytest"]["ini_options"]["filterwarnings"]
    return [arg for f in filters for arg in ("-W", f)]


def run_python_block(block: Block, cwd: Path) -> None:
    path = block.path
    if path is None:
        script = cwd / f"_example_{block.line}.py"
        script.write_text(block.body, encoding="utf-8")
        command = [sys.executable, *warning_options(), script.name]
    elif Path(path).name.startswith("test_"):
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path]
    else:
        module = path.removesuffix(".py").replace("/", ".")
        command = [sys.executable, *warning_options(), "-c", START_MODULE, module]
    code, out, err = run(command, cwd)
    assert code == 0, f"{block.id} exited {code}\n--- stdout\n{out}\n--- stderr\n{err}"


def run_console_block(block: Block, cwd: Path) -> None:
    steps: list[tuple[str, list[str]]] = []
    for line in block.body.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    assert steps, f"{block.id}: a console block marked to run has no `$ ` line"
    for command, expected in steps:
        words = shlex.split(command, comments=True)
        env = child_env()
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        assert words[:1] == ["framework"], f"{block.id}: only `framework` commands run: {command}"
        _, out, err = run([sys.executable, "-m", "framework", *words[1:]], cwd, env)
        actual = [line.rstrip() for line in (out + err).splitlines()]
        assert matches(expected, actual), (
            f"{block.id}: `{command}` printed\n"
            + "\n".join(actual)
            + "\n--- expected\n"
            + "\n".join(expected)
        )


def matches(expected: list[str], actual: list[str]) -> bool:
    """``expected`` lines equal ``actual`` ones, a ``...`` line standing for any lines."""
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    pattern = "".join(
        r"(?:.*\n)*?" if line.strip() == "..." else re.escape(line.rstrip()) + r"\n"
        for line in expected
    )
    return re.fullmatch(pattern, "".join(f"{line}\n" for line in actual)) is not None


@pytest.mark.parametrize(
    ("block", "files"), [pytest.param(block, files, id=block.id) for block, files in runnable()]
)
def test_example_runs(block: Block, files: list[Block], tmp_path: Path) -> None:
    """Each example of the docs runs as written, in a fresh process and directory."""
    for file in files:
        target = tmp_path / str(file.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(file.body, encoding="utf-8")
    if block.lang == "python":
        run_python_block(block, tmp_path)
    else:
        run_console_block(block, tmp_path)


def test_concept_and_howto_pages_have_examples_that_run() -> None:
    """The concept and how-to pages show code that runs, not only code that reads well."""
    tested = {block.page for block, _ in runnable()}
    for page in ("index.md", "getting-started.md"):
        assert page in {p.relative_to(DOCS).as_posix() for p in pages()}
    for page in pages():
        name = page.relative_to(DOCS).as_posix()
        if name.startswith(("concepts/", "howto/")) and name != "howto/kubernetes.md":
            assert name in tested, f"docs/{name} has no example that runs"


# -- the generated reference ----------------------------------------------------------------------


def load_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    return module


def test_settings_reference_lists_every_setting_with_its_variable() -> None:
    """reference/settings.md is generated from the models: every key, default and variable."""
    hooks = load_hooks()
    text = hooks.settings_reference()
    keys = list(hooks.settings_keys())
    assert ("lifecycle.stop_timeout", "APP_LIFECYCLE__STOP_TIMEOUT") in keys
    assert ("services.<name>.stop_timeout", "APP_SERVICES__<NAME>__STOP_TIMEOUT") in keys
    for key, variable in keys:
        assert f"| `{key}`<br>`{variable}` |" in text, key
        assert f"`{variable}`" in text, variable
    page = (DOCS / "reference" / "settings.md").read_text(encoding="utf-8")
    assert "<!-- generated: settings -->" in page


def test_settings_reference_follows_an_app_prefix() -> None:
    """An application that changes the prefix gets its own variable names."""
    from pydantic_settings import SettingsConfigDict

    from framework import Settings

    class Acme(Settings):
        model_config = SettingsConfigDict(env_prefix="ACME_")

    text = load_hooks().settings_reference(Acme)
    assert "`ACME_HTTP__PORT`" in text
    assert "APP_" not in text


def test_cli_reference_lists_every_command_and_option() -> None:
    """reference/cli.md is generated from click: every command and every option."""
    import click

    from framework._cli.commands import cli

    hooks = load_hooks()
    text = hooks.cli_reference()
    names = hooks.cli_commands()
    assert {"framework run", "framework check", "framework config show", "framework new"} <= set(
        names
    )

    def options(command: click.Command, ctx: click.Context) -> None:
        for param in command.get_params(ctx):
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert f"`{opt}`" in text, (ctx.command_path, opt)
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                child = command.get_command(ctx, sub)
                assert child is not None
                options(child, click.Context(child, info_name=sub, parent=ctx))

    for name in names:
        assert f"`{name}`" in text
    options(cli, click.Context(cli, info_name="framework"))
    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    assert "<!-- generated: cli -->" in page


def test_api_reference_covers_the_public_surface() -> None:
    """reference/api.md documents every name the packages export."""
    import framework
    import framework.services
    import framework.testing

    hooks = load_hooks()
    public = {
        f"{module.__name__}.{name}"
        for module in (framework, framework.services, framework.testing)
        for name in module.__all__
    }
    names = hooks.api_names()
    assert sorted(names) == sorted(public), "reference/api.md lists exactly the public __all__"
    text = hooks.api_reference()
    for name in names:
        assert f"### `{name}`" in text, f"{name} not under the path users import it from"
    assert "### `framework.Application`" in text
    assert "`async stop() -> int`" in text


def test_api_reference_describes_every_member() -> None:
    """Every table of reference/api.md has a meaning column, and no cell of it is empty."""
    text = load_hooks().api_reference()
    tables = 0
    for line in text.splitlines():
        if line.startswith(("| member |", "| field |", "| name |")):
            tables += 1
            assert line.rstrip().endswith(("| meaning |", "| what it is |")), line
        elif line.startswith("| ") and not line.startswith("|---"):
            cells = re.split(r"(?<!`) \| (?!`)", line.strip().strip("|"))
            assert cells[-1].strip(), f"a member without a description: {line}"
    assert tables > 10


def test_docs_markdown_marker_is_replaced() -> None:
    """The hook swaps each marker for its section and leaves other pages alone."""
    hooks = load_hooks()
    out = hooks.on_page_markdown("# Title\n\n<!-- generated: settings -->\n", None, None, None)
    assert "<!-- generated" not in out
    assert "`APP_LIFECYCLE__SHUTDOWN_TIMEOUT`" in out
    assert hooks.on_page_markdown("plain\n", None, None, None) == "plain\n"


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The site, built once for this module: its folder and the build's output."""
    site = tmp_path_factory.mktemp("docs") / "site"
    code, out, err = run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], REPO
    )
    return site, "" if code == 0 else f"exit {code}\n{out}{err}"


@pytest.mark.slow
def test_site_builds_strict(built_site: tuple[Path, str]) -> None:
    """`mkdocs build --strict`: no broken link, no page left out of the nav, no warning."""
    site, failure = built_site
    assert not failure, failure
    assert (site / "reference" / "settings" / "index.html").is_file()
    settings = (site / "reference" / "settings" / "index.html").read_text(encoding="utf-8")
    assert "APP_LIFECYCLE__STOP_TIMEOUT" in settings
    assert not (site / "hooks.py").exists()


@pytest.mark.slow
def test_mermaid_is_served_by_the_site_not_a_cdn(built_site: tuple[Path, str]) -> None:
    """Every page with a diagram loads the site's own copy of mermaid (which defines the global
    `mermaid` that mkdocs-material then uses), no other page loads it (3 MB), and no page names a
    CDN: diagrams render offline."""
    site, failure = built_site
    assert not failure, failure
    script = site / "js" / "mermaid.min.js"
    assert 'globalThis["mermaid"]' in script.read_text(encoding="utf-8")[-2000:]
    assert (site / "js" / "mermaid.LICENSE").is_file()
    with_diagrams = 0
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert not re.search(r"(unpkg\.com|jsdelivr\.net|cdnjs)[^\"']*mermaid", html), page
        if 'class="mermaid"' in html:
            with_diagrams += 1
            src = re.search(r'<script src="([^"]*js/mermaid\.min\.js)"', html)
            assert src, f"{page} has a diagram but does not load js/mermaid.min.js"
            assert (page.parent / src.group(1)).resolve() == script.resolve()
        else:
            assert "mermaid.min.js" not in html, f"{page} has no diagram but loads mermaid"
    assert with_diagrams >= 3


# -- troubleshooting and version ------------------------------------------------------------------

QUOTED = re.compile(r"^> `(?P<message>.+)`$", re.MULTILINE)


def framework_strings() -> list[str]:
    """Every string literal of ``framework/``, implicit concatenations joined, and the literal
    parts of f-strings (the text between the replacement fields)."""
    import ast

    out: list[str] = []
    for path in (REPO / "framework").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.append(node.value)
    return out


def test_troubleshooting_quotes_messages_the_code_prints() -> None:
    """Each message quoted on the troubleshooting page (``> `...` ``, ``…`` where the text varies)
    is one the code still prints: every literal piece of it is a string of ``framework/``."""
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    messages = [found["message"] for found in QUOTED.finditer(page)]
    assert len(messages) >= 5, messages
    strings = framework_strings()
    for message in messages:
        # the punctuation at a piece's ends may join two strings of the code: not looked for
        pieces = [p.strip(" ;:,") for p in message.split("…") if len(p.strip(" ;:,()")) >= 8]
        assert pieces, f"nothing to check in {message!r}: quote more of it"
        for piece in pieces:
            assert any(piece in s for s in strings), (
                f"troubleshooting.md quotes {message!r}, but no string of framework/ holds {piece!r}"
            )


def project_version() -> str:
    import tomllib

    with (REPO / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def test_one_version_everywhere() -> None:
    """pyproject.toml's version is the installed one, `framework --version`'s and the docs footer's;
    the changelog's top section is the release under way (Unreleased, or that version) and every
    release heading below it is older."""
    import importlib.metadata

    version = project_version()
    assert importlib.metadata.version("framework") == version, "stale install: run `make install`"
    code, out, err = run([sys.executable, "-m", "framework", "--version"], REPO)
    assert code == 0 and out.split()[-1] == version, out + err
    assert load_hooks().on_config({})["copyright"] == f"framework {version}"
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE)
    assert headings[0] in ("Unreleased", version), headings
    released = [h for h in headings if h != "Unreleased"]

    def key(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split("."))

    assert all(key(h) < key(version) for h in released if h != version), (version, released)
    assert released == sorted(released, key=key, reverse=True), released


@pytest.mark.slow
def test_site_names_its_version_and_carries_the_changelog(built_site: tuple[Path, str]) -> None:
    """Every page's footer names the version; the changelog is a page of the site."""
    site, failure = built_site
    assert not failure, failure
    version = project_version()
    assert f"framework {version}" in (site / "index.html").read_text(encoding="utf-8")
    changelog = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Unreleased" in changelog and "0.1.0" in changelog
