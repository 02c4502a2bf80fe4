"""The `framework` command as a new user meets it: help, errors in their code, the port in use,
the budget `check` prints, the wired edges `graph` marks, `make run` after Ctrl+C.

Every test runs the real command in a subprocess and looks at exit code, stdout and stderr.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._process import REPO, framework_env, free_port, run_cli

EXAMPLE = REPO / "examples" / "fastapi"
TODO = "todo.application:App"


def test_bare_framework_prints_its_help_on_stdout_and_exits_0() -> None:
    """`framework` with no command: the help (commands listed) on stdout, nothing on stderr, 0."""
    result = run_cli(REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: ")
    assert "check" in result.stdout and "run" in result.stdout
    assert "--traceback" in result.stdout
    assert result.stderr == ""


def test_an_import_that_raises_names_file_and_line_without_a_traceback(tmp_path: Path) -> None:
    """`framework run broken:App` where broken.py raises at line 3: one error naming the file and
    the line and offering --traceback; exit 78; no traceback."""
    (tmp_path / "broken.py").write_text('import os\n\nraise RuntimeError("boom")\n')
    result = run_cli(tmp_path, "run", "broken:App")
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{tmp_path / 'broken.py'}, line 3: RuntimeError: boom" in lines[0]
    assert "--traceback" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """A syntax error in the target module: its file and line, exit 78, no traceback."""
    (tmp_path / "broken.py").write_text("x = 1\ndef f(:\n    pass\n")
    result = run_cli(tmp_path, "check", "broken:App")
    assert result.returncode == 78
    assert f"{tmp_path / 'broken.py'}, line 2: SyntaxError" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_error_in_a_module_the_target_imports_names_that_module(tmp_path: Path) -> None:
    """The failing line is in a module the target imports: that module's file and line."""
    (tmp_path / "app.py").write_text("import helper\n")
    (tmp_path / "helper.py").write_text("\n\nvalue = {}['missing']\n")
    result = run_cli(tmp_path, "run", "app:App")
    assert result.returncode == 78
    assert f"{tmp_path / 'helper.py'}, line 3: KeyError" in result.stderr
    assert "Traceback" not in result.stderr


def test_traceback_option_prints_the_full_traceback(tmp_path: Path) -> None:
    """`framework --traceback run broken:App`: the traceback down to the raising line, then the
    same one-line error; still exit 78."""
    (tmp_path / "broken.py").write_text('import os\n\nraise RuntimeError("boom")\n')
    result = run_cli(tmp_path, "--traceback", "run", "broken:App")
    assert result.returncode == 78
    assert "Traceback (most recent call last)" in result.stderr
    assert 'raise RuntimeError("boom")' in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: target 'broken:App'")


@pytest.mark.slow
def test_port_in_use_is_one_clear_line_naming_the_setting_and_variable(tmp_path: Path) -> None:
    """A real occupied port: the failure names the address, `http.port` and `APP_HTTP__PORT`;
    no traceback (nor a chained OSError); exit 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            EXAMPLE,
            "run",
            TODO,
            "--set",
            f"http.port={port}",
            "--set",
            f'database.url="sqlite:///{tmp_path}/todo.db"',
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Errno" not in result.stderr
    failed = [line for line in result.stderr.splitlines() if "already in use" in line]
    assert len(failed) == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in failed[0]
    assert "http.port (environment: APP_HTTP__PORT)" in failed[0]


def test_check_prints_the_budget_when_it_fits() -> None:
    """`check` with a budget that fits: on stderr (stdout stays the start order), one `budget:`
    line with delay, longest chain and timeout, and one for the grace period when given."""
    sets = ["--set", "lifecycle.shutdown_delay=5", "--set", "lifecycle.shutdown_timeout=30"]
    result = run_cli(EXAMPLE, "check", TODO, *sets, "--grace-period", "60")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["0: db", "1: http"]  # stdout: the start order only
    budget = [line for line in result.stderr.splitlines() if line.startswith("budget: ")]
    assert budget == [
        "budget: shutdown_delay 5 s + longest stop chain 20 s = 25 s "
        "<= lifecycle.shutdown_timeout 30 s",
        "budget: shutdown_timeout 30 s (shutdown_delay included) + 2 s = 32 s "
        "<= grace period 60 s (--grace-period)",
    ]


def test_check_prints_no_budget_line_when_it_does_not_fit() -> None:
    """A budget that does not fit: the warning on stderr, no `budget:` line claiming it fits."""
    result = run_cli(EXAMPLE, "check", TODO, "--set", "lifecycle.shutdown_timeout=5")
    assert result.returncode == 0, result.stderr
    assert "budget:" not in result.stdout + result.stderr
    assert "the shutdown budget may not hold" in result.stderr


def test_graph_marks_wired_edges_in_every_format() -> None:
    """The example's http -> db edge comes from wiring alone: `(wired)` in text, a dotted arrow
    in Mermaid, a dashed edge in dot."""
    text = run_cli(EXAMPLE, "graph", TODO)
    assert text.returncode == 0, text.stderr
    assert "http (layer 1) <- depends on: db" in text.stdout
    assert "http -> db (wired)" in text.stdout.splitlines()
    mermaid = run_cli(EXAMPLE, "graph", TODO, "--format", "mermaid")
    assert "    http -. wired .-> db" in mermaid.stdout.splitlines()
    dot = run_cli(EXAMPLE, "graph", TODO, "--format", "dot")
    assert '    "http" -> "db" [style=dashed, label="wired"];' in dot.stdout.splitlines()


def test_graph_does_not_mark_direct_edges() -> None:
    """An edge through providers (no wiring) is a plain edge."""
    result = run_cli(REPO / "examples", "graph", "orders.app:App")
    assert result.returncode == 0, result.stderr
    edges = result.stdout.split("edges:\n", 1)[1].splitlines()
    assert edges and all("(wired)" not in edge for edge in edges)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_ends_cleanly_after_ctrl_c(tmp_path: Path) -> None:
    """`make run` of the checkout, Ctrl+C (SIGINT to the whole foreground group): the service
    stops in order (exit code 0) and make prints no `*** Interrupt` line."""
    env = framework_env(
        {
            "APP_HTTP__PORT": str(free_port()),
            "APP_LIFECYCLE__SHUTDOWN_DELAY": "0",
            "APP_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/orders.db",
        }
    )
    venv = Path(sys.executable).parent.parent
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"VENV={venv}", "STAMP=pyproject.toml"],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        seen: list[str] = []
        while not any("startup complete" in line for line in seen):  # bounded: deadline, EOF
            assert time.monotonic() < deadline, seen
            seen.append(proc.stderr.readline())
            assert seen[-1], seen
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "exit code 0" in err
    assert "Interrupt" not in err
    assert "Traceback" not in err
