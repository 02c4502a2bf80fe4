"""Running one `Application` class from command-line options: ``framework run`` and ``App.main()``.

It needs the class, never imports the runner: `framework._runtime.application` calls into it (``main``)
and `framework._cli.commands` builds on it, and neither import cycle exists.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from framework._compat import UnsupportedDependency
from framework._engine.errors import ConfigError, GraphError, TargetError
from framework._engine.exitcode import ExitCode
from framework._engine.secrets import mask, remember, secrets_of

if TYPE_CHECKING:
    from framework._runtime.application import Application

__all__ = (
    "app_options",
    "build",
    "fail",
    "guard",
    "run",
    "run_application",
    "run_options",
    "where",
)

F = TypeVar("F", bound=Callable[..., Any])
A = TypeVar("A")


def app_options(func: F) -> F:
    """``--config-dir``, ``--env`` and ``--set KEY=VALUE`` (repeatable)."""
    func = click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="KEY=VALUE",
        help='Override a setting; the value is read as TOML (2.5, 8080, true, "text").',
    )(func)
    func = click.option(
        "--env", default=None, help="Environment: also reads <config-dir>/<env>.toml."
    )(func)
    func = click.option(
        "--config-dir",
        default=None,
        type=click.Path(file_okay=False, path_type=Path),
        help="Directory of default.toml and <env>.toml (default: ./config).",
    )(func)
    return func


def run_options(func: F) -> F:
    """The options of ``framework run``: the app options, ``--report``, ``--backend``, ``--workers``."""
    func = click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        help="Run N worker processes on shared sockets under a supervisor "
        "(default: process.workers; 0 there: no supervisor).",
    )(func)
    func = click.option(
        "--backend",
        type=click.Choice(["asyncio", "trio"]),
        default=None,
        help="Event loop (default: the app's).",
    )(func)
    func = click.option(
        "--report",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Also write the timeline as JSON here.",
    )(func)
    return app_options(func)


def fail(error: Exception) -> NoReturn:
    """One clear line on stderr and exit 78 (a user mistake, never a traceback); secrets masked.

    With ``framework --traceback``, the traceback of the error's cause (the user's code that
    raised) is printed first, masked too.
    """
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().params.get("show_traceback") and error.__cause__:
        cause = error.__cause__
        lines = traceback.format_exception(type(cause), cause, cause.__traceback__)
        click.echo(mask("".join(lines).rstrip("\n")), err=True)
    click.echo(f"error: {mask(str(error))}", err=True)
    sys.exit(ExitCode.CONFIG)


def where(error: BaseException) -> str:
    """``file, line N``: where ``error`` was raised (for a SyntaxError, the bad line)."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{error.filename}, line {error.lineno}"
    frames = traceback.extract_tb(error.__traceback__)
    user = [f for f in frames if not f.filename.startswith("<frozen ")]
    if not user:
        return "an unknown place"
    return f"{user[-1].filename}, line {user[-1].lineno}"


def guard(make: Callable[[], A]) -> A:
    """``make()``, with a bad target, configuration or graph turned into `fail`."""
    try:
        return make()
    except (ConfigError, GraphError, TargetError) as exc:
        fail(exc)


def build(
    cls: type[Application],
    config_dir: Path | None,
    env: str | None,
    sets: Sequence[str],
    **kwargs: Any,
) -> Application:
    """``cls(...)`` from the app options (``--set`` values parsed); its secrets are remembered, so
    whatever the command prints next is masked."""
    from framework._config.load import parse_override

    overrides = dict(parse_override(s) for s in sets)
    app = cls(config_dir=config_dir, env=env, overrides=overrides, **kwargs)
    remember(secrets_of(app.settings))
    return app


def run(
    cls: type[Application],
    config_dir: Path | None,
    env: str | None,
    sets: tuple[str, ...],
    report: Path | None,
    backend: str | None,
    workers: int | None = None,
    target: str | None = None,
) -> NoReturn:
    """Build the application (exit 78 on a bad configuration), run it, exit with its code.

    With workers (``--workers`` or ``process.workers``), this process supervises them instead:
    each worker runs ``python -m framework run TARGET`` with the same options.
    """
    app = guard(lambda: build(cls, config_dir, env, sets, report=report))
    if not (workers or app.settings.process.workers):  # the common case imports nothing more
        _exit(app.run(backend=backend))
    from framework._process.supervisor import supervise, workers_wanted

    count = workers_wanted(app, workers)
    if count == 0:  # this process is a worker already
        _exit(app.run(backend=backend))
    from framework._process.workers import worker_command

    options = [*(["--config-dir", str(config_dir)] if config_dir is not None else [])]
    options += [*(["--env", env] if env is not None else [])]
    options += [arg for s in sets for arg in ("--set", s)]
    options += [*(["--backend", backend] if backend is not None else [])]
    target = target or f"{cls.__module__}:{cls.__qualname__}"
    sys.exit(supervise(app, worker_command(target, options), workers=count))


def _exit(code: int) -> NoReturn:
    """The run is over: its final log line (``exit code N``) stays the last output."""
    from framework._runtime.logs import silence

    silence()
    sys.exit(code)


def run_application(cls: type[Application], argv: Sequence[str] | None = None) -> int:
    """What ``App.main()`` runs: the options of ``framework run`` for one application class."""

    @click.command()
    @run_options
    def command(**options: Any) -> None:
        run(cls, **options)

    try:
        command.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except UnsupportedDependency as exc:  # its one line, as `framework run` says it
        click.echo(str(exc), err=True)
        return ExitCode.CONFIG
    except click.ClickException as exc:
        exc.show()
        return ExitCode.CONFIG
    return ExitCode.OK
