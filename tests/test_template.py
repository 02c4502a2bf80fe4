"""`framework new`: what the template renders, and every bad input refused before anything is written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from framework._cli.template import (
    VARIABLES,
    framework_requirement,
    parse_sets,
    render,
    requirement_from_direct_url,
    template_dir,
)
from framework._engine.errors import ConfigError
from tests._process import REPO


def test_new_renders_a_complete_project(tmp_path: Path) -> None:
    """The default project has the package, config, packaging, Docker, k8s and test files."""
    project = render("acme-orders", output_dir=tmp_path, no_input=True)
    assert project == tmp_path / "acme-orders"
    for name in [
        "acme_orders/app.py",
        "acme_orders/container.py",
        "acme_orders/settings.py",
        "acme_orders/endpoints.py",
        "config/default.toml",
        "config/production.toml",
        "pyproject.toml",
        "Makefile",
        "README.md",
        "Dockerfile",
        ".dockerignore",
        ".gitignore",
        "tests/test_app.py",
        "deploy/k8s/deployment.yaml",
        "deploy/k8s/service.yaml",
        "deploy/k8s/pdb.yaml",
    ]:
        assert (project / name).is_file(), name
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["dependencies"][0] == f"framework[standard] @ {REPO.as_uri()}"
    dockerfile = (project / "Dockerfile").read_text()
    assert "STOPSIGNAL SIGTERM" in dockerfile
    assert "USER 10001" in dockerfile
    assert 'CMD ["framework", "run", "acme_orders.app:App"' in dockerfile
    assert ".venv/" in (project / ".gitignore").read_text().splitlines()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acme-orders"]  # no staging left


def test_default_is_fastapi_with_wiring(tmp_path: Path) -> None:
    """web=fastapi (the default): endpoints use @inject and Depends(Provide[Container.x]), and
    the container's wiring_config names the endpoint module."""
    project = render("shop", output_dir=tmp_path, no_input=True)
    endpoints = (project / "shop/endpoints.py").read_text()
    assert "@inject" in endpoints
    assert "Depends(Provide[Container.orders])" in endpoints
    container = (project / "shop/container.py").read_text()
    assert 'WiringConfiguration(modules=[".endpoints"])' in container
    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    assert any(d.startswith("fastapi") for d in dependencies)


def test_starlette_variant_has_no_fastapi(tmp_path: Path) -> None:
    """web=starlette: no endpoints module, no wiring, starlette as the dependency."""
    project = render("plain", output_dir=tmp_path, no_input=True, extra={"web": "starlette"})
    assert not (project / "plain/endpoints.py").exists()
    assert "wiring_config" not in (project / "plain/container.py").read_text()
    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    assert any(d.startswith("starlette") for d in dependencies)
    assert not any(d.startswith("fastapi") for d in dependencies)


def test_default_toml_has_every_knob(tmp_path: Path) -> None:
    """config/default.toml names every lifecycle and built-in service setting, with the worker's."""
    from framework._config.settings import Settings

    project = render("knobs", output_dir=tmp_path, no_input=True)
    text = (project / "config/default.toml").read_text()
    values = tomllib.loads(text)
    for section in ("lifecycle", "http", "database", "logging"):
        model = type(getattr(Settings(), section))
        for key in model.model_fields:
            assert f"{key} = " in text, f"{section}.{key}"
    assert values["worker"]["interval"] == 5.0
    assert "# [services.<name>]" in text


def test_without_database_no_database_section_or_files(tmp_path: Path) -> None:
    """include_database=no: no [database] section, no database or repository module."""
    project = render("nodb", output_dir=tmp_path, no_input=True, extra={"include_database": "no"})
    values = tomllib.loads((project / "config/default.toml").read_text())
    assert "database" not in values
    assert {"lifecycle", "http", "logging", "worker"} <= set(values)
    assert not (project / "nodb/database.py").exists()
    assert not (project / "nodb/orders.py").exists()


@pytest.mark.parametrize(
    ("name", "extra", "expected"),
    [
        ("acme", {"port": "abc"}, "port: 'abc': expected a whole number from 1 to 65535"),
        ("acme", {"port": "70000"}, "port: '70000'"),
        ("acme", {"shutdown_timeout": "-1"}, "shutdown_timeout: '-1': expected a finite number"),
        ("acme", {"shutdown_delay": "nan"}, "shutdown_delay: 'nan'"),
        ("acme", {"web": "flask"}, "web: 'flask': expected one of fastapi, starlette"),
        ("acme", {"include_database": "maybe"}, "include_database: 'maybe'"),
        ("acme", {"env_prefix": "app"}, "env_prefix: 'app'"),
        ("acme", {"description": 'say "hi"'}, "description:"),
        ("acme", {"python_version": "3.9"}, "python_version: '3.9'"),
        ("acme", {"python_version": "3.99"}, "python_version: 3.99 is not this machine's Python"),
        ("framework", {}, "package 'framework' would shadow the installed package"),
        ("anyio", {}, "package 'anyio' would shadow the installed package"),
        ("json", {}, "package 'json' would shadow the standard library module"),
        ("tests", {}, "would collide with the project's tests/ folder"),
        ("acme", {"package_name": "class"}, "package 'class' is a Python keyword"),
        ("9lives", {}, "project name '9lives'"),
    ],
)
def test_bad_input_is_a_clear_error_that_leaves_nothing(
    tmp_path: Path, name: str, extra: dict[str, str], expected: str
) -> None:
    """Each bad variable or name is reported by name with what is accepted; nothing is written."""
    with pytest.raises(ConfigError) as info:
        render(name, output_dir=tmp_path / "out", no_input=True, extra=extra)
    assert expected in str(info.value)
    assert "cannot create a project" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Several bad variables: one error listing each of them."""
    with pytest.raises(ConfigError) as info:
        render(
            "acme",
            output_dir=tmp_path,
            no_input=True,
            extra={"port": "abc", "shutdown_timeout": "-1", "web": "flask"},
        )
    assert len(info.value.problems) == 3


def test_unknown_variable_suggests_the_close_one() -> None:
    """A typo in --set is an error with a did-you-mean; a pair without '=' too."""
    with pytest.raises(ConfigError) as info:
        parse_sets(["portt=9000", "nonsense"])
    message = str(info.value)
    assert "--set portt: unknown template variable; did you mean 'port'?" in message
    assert "--set 'nonsense': expected VAR=VALUE" in message
    assert parse_sets(["port=9000", "description=a=b"]) == {"port": "9000", "description": "a=b"}


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_an_existing_target_is_refused_and_kept(tmp_path: Path, kind: str) -> None:
    """An existing folder or file of that name: an error, and it is left as it was."""
    target = tmp_path / "taken"
    if kind == "folder":
        target.mkdir()
        (target / "keep.txt").write_text("mine")
    else:
        target.write_text("mine")
    with pytest.raises(ConfigError, match=f"already exists \\(a {kind}\\)"):
        render("taken", output_dir=tmp_path, no_input=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert (target / "keep.txt" if kind == "folder" else target).read_text() == "mine"


def test_an_output_folder_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    """--output-dir below a file: an error naming the folder, nothing created."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot create the project in"):
        render("acme", output_dir=blocker / "sub", no_input=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_render_that_fails_half_way_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files are written, then the post-generation hook fails: the half-made project, the
    staging folder and the output folders created for it are all removed."""
    import framework._cli.template

    broken = tmp_path / "template"
    shutil.copytree(REPO / "app_template", broken)
    (broken / "hooks/post_gen_project.py").write_text("raise SystemExit(1)\n")
    monkeypatch.setattr(framework._cli.template, "template_dir", lambda: broken)
    with pytest.raises(ConfigError, match="rendering the template failed"):
        render("acme", output_dir=tmp_path / "a" / "b", no_input=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["template"]


def test_cli_bad_input_exits_78_without_traceback(tmp_path: Path) -> None:
    """`framework new` with bad input: the problems on stderr, exit 78, no traceback, no files."""
    (tmp_path / "tests").mkdir()
    for args in (
        ["acme", "--set", "port=abc", "--set", "shutdown_timeout=-1"],
        ["acme", "--set", "portt=9000"],
        ["framework"],
        ["tests"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "framework", "new", *args, "--no-input"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 78, result.stderr
        assert result.stderr.startswith("error: cannot create a project"), result.stderr
        assert "Traceback" not in result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["tests"]


def test_cli_help_lists_the_variables_with_defaults() -> None:
    """`framework new --help` names every template variable and its default."""
    from click.testing import CliRunner

    from framework._cli.commands import cli

    result = CliRunner().invoke(cli, ["new", "--help"])
    assert result.exit_code == 0
    for variable in VARIABLES:
        assert f"  {variable.name}: " in result.output
    assert "port: HTTP port (http.port) [default: 8000]" in result.output
    assert "one of fastapi, starlette [default: fastapi]" in result.output


def test_template_found_in_the_source_tree_of_a_checkout() -> None:
    """From a checkout, the template is app_template/ and the requirement is the source folder."""
    assert template_dir() == REPO / "app_template"
    assert framework_requirement() == f"framework @ {REPO.as_uri()}"


def test_requirement_from_the_installation_record(tmp_path: Path) -> None:
    """An installation from a local wheel or folder (PEP 610 direct_url.json) is pointed at while
    it exists; anything else falls back to the version."""
    wheel = tmp_path / "framework-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    record = json.dumps({"url": wheel.as_uri(), "archive_info": {}})
    assert requirement_from_direct_url(record) == f"framework @ {wheel.as_uri()}"
    folder = json.dumps({"url": tmp_path.as_uri(), "dir_info": {}})
    assert requirement_from_direct_url(folder) == f"framework @ {tmp_path.as_uri()}"
    gone = json.dumps({"url": (tmp_path / "gone.whl").as_uri(), "archive_info": {}})
    assert requirement_from_direct_url(gone) is None
    assert requirement_from_direct_url(json.dumps({"url": "https://example.org/f.whl"})) is None
    assert requirement_from_direct_url("not json") is None
    assert requirement_from_direct_url(None) is None


def test_prompts_check_each_answer_and_ask_again(tmp_path: Path) -> None:
    """Without --no-input every variable not given is asked for; a bad answer is refused with
    what is accepted and asked again."""
    from click.testing import CliRunner

    from framework._cli.commands import cli

    answers = ["", "", "", "flask", "starlette", "abc", "9000", "", "", "", ""]
    result = CliRunner().invoke(
        cli,
        ["new", "asked", "--output-dir", str(tmp_path), "--set", "include_database=no"],
        input="\n".join(answers) + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "'flask': expected one of fastapi, starlette" in result.output
    assert "'abc': expected a whole number from 1 to 65535" in result.output
    project = tmp_path / "asked"
    assert tomllib.loads((project / "config/default.toml").read_text())["http"]["port"] == 9000
    assert not (project / "asked/endpoints.py").exists()
    assert not (project / "asked/database.py").exists()


def test_python_version_defaults_to_this_machines(tmp_path: Path) -> None:
    """The image's Python is the one `make wheels` builds for: this machine's, by default."""
    import sys

    project = render("acme", output_dir=tmp_path, no_input=True)
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"FROM python:{host}-slim" in (project / "Dockerfile").read_text(encoding="utf-8")
    assert f'requires-python = ">={host}"' in (project / "pyproject.toml").read_text(
        encoding="utf-8"
    )


def test_the_image_installs_the_wheel_house_without_resolving(tmp_path: Path) -> None:
    """The Dockerfile installs every wheel of the wheel-house with --no-index --no-deps: the
    project's requirement on framework may name the build host's folder, which the image lacks."""
    project = render("acme", output_dir=tmp_path, no_input=True)
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install --no-cache-dir --no-index --no-deps /tmp/wheels/*.whl" in dockerfile
