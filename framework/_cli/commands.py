"""The ``framework`` command: run, check, config show, graph, new.

Every user mistake (bad target, bad configuration, a dependency cycle) is one clear message on
stderr and exit 78, never a traceback. So is an installed dependency outside the range the
framework supports (`framework._compat`), checked before a command does anything else. What a command prints passes through
`framework._engine.secrets.mask`, which knows the loaded settings' secrets.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from framework._cli.simulate import simulate_group
from framework._compat import UnsupportedDependency, check_installed
from framework._compat.interpreter import run_exit_handlers
from framework._engine.errors import ConfigError, TargetError
from framework._engine.exitcode import ExitCode
from framework._engine.secrets import mask
from framework._process import launch
from framework._process.launch import app_options, build, guard, run_application, run_options, where

if TYPE_CHECKING:
    from framework._runtime.application import Application

__all__ = ("cli", "load_target", "main", "run_application")

_fail = launch.fail


def load_target(spec: str) -> type[Application]:
    """Import ``module:attr`` (current directory first on ``sys.path``) as an Application class."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise TargetError(f"target {spec!r}: expected module:attr, like myservice.app:App")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise TargetError(
                f"target {spec!r}: no module named {exc.name!r} (looked in {cwd} and sys.path)"
            ) from None
        raise TargetError(
            f"target {spec!r}: importing {module_name!r} failed at {where(exc)}: {exc}"
        ) from exc
    except Exception as exc:
        text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise TargetError(
            f"target {spec!r}: importing {module_name!r} failed at {where(exc)}: "
            f"{type(exc).__name__}: {text} (run `framework --traceback ...` for the full traceback)"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise TargetError(f"target {spec!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    from framework._runtime.application import Application

    if not (isinstance(obj, type) and issubclass(obj, Application)):
        raise TargetError(
            f"target {spec!r}: {attr} is {obj!r}, not a framework.Application subclass"
        )
    return obj


def _build(
    target: str, config_dir: Path | None, env: str | None, sets: Sequence[str]
) -> Application:
    return guard(lambda: build(load_target(target), config_dir, env, sets))


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    invoke_without_command=True,
    no_args_is_help=False,
)
@click.version_option(package_name="framework")
@click.option(
    "--traceback",
    "show_traceback",
    is_flag=True,
    help="On an error in your code (an import that fails), print its full traceback too.",
)
@click.pass_context
def cli(ctx: click.Context, show_traceback: bool) -> None:
    """Run and inspect services built on framework."""
    if ctx.invoked_subcommand is None:  # bare `framework`: the help, on stdout, exit 0
        click.echo(ctx.get_help())
        return
    check_installed()  # UnsupportedDependency: see main()


@cli.command()
@click.argument("target")
@run_options
def run(target: str, **options: Any) -> None:
    """Run the application TARGET (module:App) until SIGTERM, SIGINT, SIGHUP or SIGQUIT."""
    launch.run(guard(lambda: load_target(target)), target=target, **options)


@cli.command()
@click.argument("target")
@app_options
@click.option("--strict", is_flag=True, help="Fail (exit 78) on budget warnings too.")
@click.option(
    "--grace-period", type=float, default=None, help="The platform's grace period in seconds."
)
def check(
    target: str,
    config_dir: Path | None,
    env: str | None,
    sets: tuple[str, ...],
    strict: bool,
    grace_period: float | None,
) -> None:
    """Validate configuration, graph and shutdown budget; print the start order. Starts nothing."""
    cls = guard(lambda: load_target(target))
    from framework._config.load import load_settings, parse_override

    overrides = dict(parse_override(s) for s in sets)
    # as `run` would load them, and an --env without its file is an error here, not a warning
    loaded = guard(
        lambda: load_settings(
            cls.settings_class,
            config_dir=config_dir,
            env=env,
            overrides=overrides,
            services=list(_service_providers(cls.container_class)),
            require_env_file=True,
        )
    )
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    app = _build(target, config_dir, env, sets)
    for n, layer in enumerate(app.graph.layers()):
        click.echo(f"{n}: {' '.join(layer)}")
    classes = {name: app.service_class(name) for name in app.graph.order}
    from framework._config.budget import budget_lines, check_budget
    from framework._config.timeouts import stop_seconds

    stop_bounds = stop_seconds(app.graph.order, classes, app.settings)
    warnings = check_budget(app.settings.lifecycle, app.graph, stop_bounds, grace_period)
    for warning in warnings:
        click.echo(mask(f"warning: {warning}"), err=True)
    if not warnings:
        for line in budget_lines(app.settings.lifecycle, app.graph, stop_bounds, grace_period):
            click.echo(f"budget: {line}", err=True)
    if warnings and strict:
        sys.exit(ExitCode.CONFIG)


@cli.group()
def config() -> None:
    """Inspect the effective configuration."""


@config.command("show")
@click.argument("target")
@app_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def config_show(
    target: str, config_dir: Path | None, env: str | None, sets: tuple[str, ...], fmt: str
) -> None:
    """Every effective setting with its source; secrets redacted."""
    app = _build(target, config_dir, env, sets)
    items = list(app.loaded.items())
    if fmt == "json":
        payload = {key: {"value": value, "source": str(source)} for key, value, source in items}
        click.echo(mask(json.dumps(payload, indent=2, default=str)))
        return
    width = max((len(key) for key, _, _ in items), default=0)
    for key, value, source in items:
        click.echo(mask(f"{key:<{width}}  {json.dumps(value, default=str):<24}  {source}"))


@config.command("defaults")
@click.argument("target", required=False)
def config_defaults(target: str | None) -> None:
    """A commented default.toml with every knob of TARGET's settings (default: the framework's)."""
    from framework._config.defaults import render_defaults
    from framework._config.settings import Settings

    settings_class: type[Settings] = Settings
    if target is not None:
        try:
            settings_class = load_target(target).settings_class
        except TargetError as exc:
            _fail(exc)
    click.echo(render_defaults(settings_class, DEFAULTS_HEADER), nl=False)


DEFAULTS_HEADER = """\
Every setting, its meaning and its default. Later sources win:
defaults < config/default.toml < config/<env>.toml < .env < APP_* environment variables < --set.
Environment variables nest with __, e.g. APP_LIFECYCLE__SHUTDOWN_TIMEOUT=20."""


@cli.command()
@click.argument("target")
@app_options
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "dot"]), default="text")
def graph(
    target: str, config_dir: Path | None, env: str | None, sets: tuple[str, ...], fmt: str
) -> None:
    """The service dependency graph."""
    app = _build(target, config_dir, env, sets)
    g = app.graph
    wired = wired_only(app)
    if fmt == "mermaid":
        click.echo("graph TD")
        for name in g.order:
            click.echo(f"    {name}")
            for dep in sorted(g.deps[name]):
                arrow = "-. wired .->" if dep in wired[name] else "-->"
                click.echo(f"    {name} {arrow} {dep}")
    elif fmt == "dot":
        click.echo("digraph services {")
        click.echo("    rankdir=BT;")
        for name in g.order:
            click.echo(f'    "{name}";')
            for dep in sorted(g.deps[name]):
                style = ' [style=dashed, label="wired"]' if dep in wired[name] else ""
                click.echo(f'    "{name}" -> "{dep}"{style};')
        click.echo("}")
    else:
        for name in g.order:
            deps = ", ".join(sorted(g.deps[name])) or "-"
            click.echo(f"{name} (layer {g.layer[name]}) <- depends on: {deps}")
        edges = [(name, dep) for name in g.order for dep in sorted(g.deps[name])]
        if edges:
            click.echo("\nedges:")
        for name, dep in edges:
            click.echo(f"{name} -> {dep}{' (wired)' if dep in wired[name] else ''}")


def wired_only(app: Application) -> dict[str, frozenset[str]]:
    """For each service, the dependencies that come from wiring alone (no provider reaches them)."""
    from framework._runtime.discovery import discover_graph, service_providers, wired_edges

    services = service_providers(app.container)
    direct = discover_graph(dict(services)).deps  # a plain dict: no container, no wiring edges
    wired = wired_edges(services, app.container)
    return {name: wired.get(name, frozenset()).difference(direct[name]) for name in app.graph.order}


class _NewCommand(click.Command):
    """``framework new``: its ``--help`` ends with the template variables and their defaults."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        # imported here, not at the top: the template module is for `new` only (import time)
        from framework._cli.template import variables_help

        formatter.write("\n" + variables_help() + "\n")


@cli.command(cls=_NewCommand)
@click.argument("name")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
@click.option("--no-input", is_flag=True, help="Use defaults; ask nothing.")
@click.option("--set", "sets", multiple=True, metavar="VAR=VALUE", help="Template variable.")
def new(name: str, output_dir: Path, no_input: bool, sets: tuple[str, ...]) -> None:
    """Create a new service project NAME from the framework's template."""
    from framework._cli.template import parse_sets, render

    try:
        path = render(name, output_dir=output_dir, no_input=no_input, extra=parse_sets(sets))
    except ConfigError as exc:
        _fail(exc)
        return
    click.echo(f"created {path}")


cli.add_command(importlib.import_module("framework._cli.dev").dev)  # `framework dev`


cli.add_command(simulate_group(load_target))


def main() -> None:
    """Console script entry point."""
    try:
        cli.main(standalone_mode=True)
    except UnsupportedDependency as exc:  # its one line, exit 78
        click.echo(str(exc), err=True)
        _end_process(SystemExit(ExitCode.CONFIG))
    except SystemExit as exc:
        _end_process(exc)


def _end_process(done: SystemExit) -> NoReturn:
    """End the process with ``done``'s code once the command is over and its logs are flushed.

    The interpreter's own teardown (clearing every module, a last collector pass over the whole
    heap) takes 0.1-0.4 s after the last log line of a server and does nothing the command needs:
    the atexit handlers run and the standard streams are flushed, then the process ends at once.
    With a non-daemon thread still running, the usual exit waits for it, as it always did.
    """
    code = done.code
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if not isinstance(code, int) or any(t.is_alive() and not t.daemon for t in others):
        raise done
    if not run_exit_handlers():  # an interpreter without the way to: its usual exit
        raise done
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # closed or broken: nothing more can be written there anyway
    os._exit(code)


def _service_providers(container: Any) -> Any:
    from framework._runtime.discovery import service_providers

    return service_providers(container)
