"""``framework new``: render the ``app_template/`` cookiecutter into a new service project."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from framework.errors import ConfigError

__all__ = ("framework_requirement", "render", "template_dir")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def template_dir() -> Path:
    """The ``app_template/`` folder next to the framework's source."""
    root = Path(__file__).resolve().parent.parent
    for candidate in (root / "app_template", Path(__file__).resolve().parent / "app_template"):
        if (candidate / "cookiecutter.json").is_file():
            return candidate
    raise ConfigError(
        [
            "the app template was not found next to the framework (expected app_template/ in its source)"
        ],
        header="cannot create a project",
    )


def framework_requirement() -> str:
    """How the new project depends on this framework: its source folder, else its version."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "framework" / "__init__.py").is_file():
        return f"framework @ {root.as_uri()}"
    return f"framework=={metadata.version('framework')}"


def render(
    name: str,
    *,
    output_dir: Path = Path("."),
    no_input: bool = False,
    extra: dict[str, str] | None = None,
) -> Path:
    """Create ``output_dir/name`` from the template; return its path."""
    if not _NAME.match(name):
        raise ConfigError(
            [f"project name {name!r}: use letters, digits, '-' and '_', starting with a letter"],
            header="cannot create a project",
        )
    target = output_dir / name
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose another name or --output-dir")
    from cookiecutter.main import cookiecutter

    context = {
        "project_name": name,
        "framework_requirement": framework_requirement(),
        **(extra or {}),
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    path = cookiecutter(
        str(template_dir()),
        no_input=no_input,
        extra_context=context,
        output_dir=str(output_dir),
    )
    return Path(path)
