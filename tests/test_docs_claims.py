"""The docs name only what exists: every settings key, environment variable, command and option a
page or the README mentions is checked against the settings model and the CLI itself.

A key is ``section.field`` (``lifecycle.shutdown_timeout``, ``services.db.stop_timeout``) of one
of the framework's own sections, in code spans and in code blocks other than Python (where
``http.url`` is an attribute); an environment variable is ``APP_SECTION__FIELD`` of such a section;
a command is a code line or span starting with ``framework <command>`` (after ``$ `` and variable
assignments), and an option a ``--flag`` on that line.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]

# Written wrong on purpose: the examples of what an error message looks like.
DELIBERATE = {"lifecycle.shutdown_timout", "APP_LIFECYCLE__SHUTDOWN_TIMOUT", "services.wroker"}

SPAN = re.compile(r"`([^`\n]+)`")
KEY = re.compile(r"(?<![\w./-])([a-z][a-z_]*(?:\.[a-z_<>][a-z0-9_<>-]*)+)(?![\w(/])")
ENV = re.compile(r"\bAPP_[A-Z0-9_]+\b")
COMMAND = re.compile(r"^`?\s*(?:\$ )?(?:[A-Z_]+=\S* )*framework((?: [a-z][a-z-]*)+)(.*)")


def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def known_keys() -> tuple[set[str], set[str], set[str]]:
    """Documented keys (``services.<name>.x`` as a pattern), environment variables, sections."""
    keys, envs = set(), set()
    for key, env in hooks().settings_keys():
        keys.add(key)
        envs.add(env)
    sections = {key.split(".")[0] for key in keys}
    return keys, envs, sections


def code_of(page: Path) -> str:
    """The lines of the page's code blocks (Python ones left out), and its code spans."""
    out: list[str] = []
    fence: str | None = None  # the language of the block we are in
    for line in page.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else (stripped[3:].split() or ["text"])[0]
            continue
        if fence is None:
            out.extend(SPAN.findall(line))
        elif fence not in {"python", "py"}:
            out.append(line)
    return "\n".join(out)


SERVICE_OF = {"http": "HttpService", "database": "DatabaseService"}


def key_exists(key: str, keys: set[str]) -> bool:
    """A key, a section, or deeper into a key (a dict setting such as ``database.connect_args``);
    ``http.url`` in prose is the attribute of the built-in service, not a setting."""
    import framework.services

    parts = key.split(".")
    service = SERVICE_OF.get(parts[0])
    if service is not None and hasattr(getattr(framework.services, service), parts[1]):
        return True
    if "<" in key or re.search(r"\.(py|md|toml|yaml|txt|log|json)$", key):
        return True  # a placeholder or a file name
    if parts[0] == "services" and len(parts) >= 2:
        parts[1] = "<name>"
    key = ".".join(parts)
    prefixes = {".".join(parts[:n]) for n in range(1, len(parts))}
    return key in keys or any(k.startswith(key + ".") for k in keys) or bool(prefixes & keys)


def env_exists(env: str, envs: set[str], sections: set[str]) -> bool:
    """An ``APP_`` variable of one of the framework's sections is one the settings read."""
    section = env.removeprefix("APP_").split("__")[0].lower()
    if env == "APP_ENV" or section not in sections:
        return True  # the environment's name, or an application's own section
    pattern = {re.sub(r"<NAME>|<name>", "[A-Z0-9_]+", e) for e in envs}
    return any(re.fullmatch(p, env) for p in pattern) or any(e.startswith(env) for e in envs)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_settings_key_and_variable_a_page_names_exists(page: Path) -> None:
    """A key or an environment variable in a page's code is a real setting."""
    keys, envs, sections = known_keys()
    text = code_of(page)
    wrong = sorted(
        {
            k
            for k in KEY.findall(text)
            if k.split(".")[0] in sections and k not in DELIBERATE and not key_exists(k, keys)
        }
        | {
            e
            for e in ENV.findall(text)
            if e not in DELIBERATE and not env_exists(e, envs, sections)
        }
    )
    assert not wrong, f"{page.name} names settings that do not exist: {wrong}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_and_option_a_page_names_exists(page: Path) -> None:
    """``framework <command> --option`` in a page's code: the command and its options exist."""
    commands = {}
    for command, ctx in hooks()._commands():
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        commands[ctx.command_path.removeprefix("framework").strip()] = options | {"--help"}
    wrong = []
    for line in code_of(page).splitlines():
        for match in COMMAND.finditer(line):
            words = match.group(1).split()
            name = next(
                (
                    " ".join(words[:n])
                    for n in range(len(words), 0, -1)
                    if " ".join(words[:n]) in commands
                ),
                None,
            )
            if name is None:
                if "--" in line or ":" in match.group(2):  # a command line, not a message
                    wrong.append(f"framework {' '.join(words)}")
                continue
            for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", match.group(2)):
                if option not in commands[name] and option not in commands[""]:
                    wrong.append(f"framework {name} {option}")
    assert not wrong, f"{page.name} names commands or options that do not exist: {wrong}"
