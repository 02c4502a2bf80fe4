"""``framework dev``: the development loop (`framework._process.dev`) from the command line.

The application is loaded here once, for the addresses of its HTTP services (the sockets are bound
here and kept across reloads); each version of the code runs in a worker process of its own. If
this first load fails (a syntax error, a bad configuration), the error is printed, the next change
is waited for and the command starts afresh.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from framework._engine.errors import ConfigError, GraphError, TargetError
from framework._engine.exitcode import ExitCode
from framework._engine.secrets import mask
from framework._process.launch import app_options, build

__all__ = ("INSTALL_HINT", "dev")

INSTALL_HINT = "framework dev needs watchfiles: pip install 'framework[dev-loop]'"


@click.command()
@click.argument("target")
@app_options
@click.option(
    "--backend",
    type=click.Choice(["asyncio", "trio"]),
    default=None,
    help="Event loop (default: the app's).",
)
@click.option(
    "--watch",
    "watch",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Also restart on changes of any file under PATH (repeatable).",
)
def dev(
    target: str,
    config_dir: Path | None,
    env: str | None,
    sets: tuple[str, ...],
    backend: str | None,
    watch: tuple[Path, ...],
) -> None:
    """Run TARGET (module:App) and restart it whenever a watched file changes.

    Watches the *.py files under the current directory, the configuration directory and .env.
    The new code serves once it is ready; until then, or if it fails, the old code keeps serving.
    """
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        click.echo(f"error: {INSTALL_HINT}", err=True)
        sys.exit(ExitCode.CONFIG)
    from framework._cli.commands import load_target
    from framework._process import dev as loop
    from framework._process.workers import worker_command

    folder = config_dir if config_dir is not None else Path("config")
    try:
        app = build(load_target(target), config_dir, env, sets)
    except (ConfigError, GraphError, TargetError) as exc:
        click.echo(f"error: {mask(str(exc))}", err=True)
        click.echo("dev: waiting for a change to try again (Ctrl-C to stop)", err=True)
        _again_or_exit(loop.wait_for_change(Path.cwd(), folder, watch))
    options = [*(["--config-dir", str(config_dir)] if config_dir is not None else [])]
    options += [*(["--env", env] if env is not None else [])]
    options += [arg for s in sets for arg in ("--set", s)]
    options += [*(["--backend", backend] if backend is not None else [])]
    code, stopped = loop.develop(
        app, worker_command(target, options), config_dir=folder, extra=watch
    )
    if not stopped:
        click.echo("dev: waiting for a change to try again (Ctrl-C to stop)", err=True)
        _again_or_exit(loop.wait_for_change(Path.cwd(), folder, watch))
    sys.exit(code)


def _again_or_exit(changed: bool) -> None:
    """After a failed start: start afresh on a change; exit 0 on Ctrl-C (nothing is running)."""
    from framework._process.dev import exec_again

    if not changed:
        sys.exit(ExitCode.OK)
    exec_again()
