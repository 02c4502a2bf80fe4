"""``framework simulate kubernetes``: play a pod deletion against the application (`kubelet`).

The defaults come from the application's own configuration, loaded as ``run`` loads it: the grace
period is the template's ``terminationGracePeriodSeconds``, the smallest one ``framework check``
accepts (`framework._config.budget.minimum_grace_period`, whole seconds).
"""

from __future__ import annotations

import json
import math
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from framework._engine.errors import ConfigError
from framework._engine.exitcode import ExitCode
from framework._process.launch import app_options, build, fail, guard

if TYPE_CHECKING:
    from framework._cli.kubelet import SimulationReport
    from framework._runtime.application import Application

__all__ = ("DEFAULT_ENDPOINT_LAG", "run_simulation", "simulate_group")

DEFAULT_ENDPOINT_LAG = 2.0
"""Seconds a cluster keeps routing to a pod after SIGTERM when nothing better is known."""


def run_simulation(
    cls: type[Application],
    target: str,
    *,
    config_dir: Path | None = None,
    env: str | None = None,
    sets: Sequence[str] = (),
    clients: int = 4,
    endpoint_lag: float = DEFAULT_ENDPOINT_LAG,
    pre_stop: float = 0.0,
    grace: float | None = None,
    workers: int | None = None,
    path: str | None = None,
    warmup: float = 0.5,
) -> SimulationReport:
    """Load ``cls``'s settings as ``run`` would, then `simulate` on a free loopback port.

    Raises `ConfigError` for bad settings or knobs, `SimulationError` when the app is never ready.
    """
    from framework._cli.kubelet import Knobs, child_env, run_command, simulate
    from framework._config.budget import minimum_grace_period

    _check_knobs(clients, endpoint_lag, pre_stop, grace, warmup)
    app = build(cls, config_dir, env, sets)
    settings = app.settings
    if grace is None:
        grace = float(math.ceil(minimum_grace_period(settings.lifecycle, pre_stop)))
    port = _free_port()
    args = [*(["--config-dir", str(config_dir)] if config_dir is not None else [])]
    args += [*(["--env", env] if env is not None else [])]
    args += [*(["--workers", str(workers)] if workers is not None else [])]
    for item in (*sets, 'http.host="127.0.0.1"', f"http.port={port}"):
        args += ["--set", item]
    knobs = Knobs(
        clients=clients,
        endpoint_lag=endpoint_lag,
        pre_stop=pre_stop,
        grace=grace,
        warmup=warmup,
        path=path or settings.http.livez_path,
        ready_timeout=settings.lifecycle.startup_timeout + 10.0,
    )
    report = simulate(
        run_command(target, args), port, knobs, settings.http.readyz_path, env=child_env()
    )
    report.knobs["shutdown_delay"] = settings.lifecycle.shutdown_delay
    report.knobs["shutdown_timeout"] = settings.lifecycle.shutdown_timeout
    return report


def _check_knobs(
    clients: int, endpoint_lag: float, pre_stop: float, grace: float | None, warmup: float
) -> None:
    checks = [
        ("--clients", clients, clients >= 1 and clients <= 64, "a whole number from 1 to 64"),
        ("--endpoint-lag", endpoint_lag, 0 <= endpoint_lag <= 600, "seconds from 0 to 600"),
        ("--pre-stop", pre_stop, 0 <= pre_stop <= 600, "seconds from 0 to 600"),
        ("--warmup", warmup, 0 <= warmup <= 60, "seconds from 0 to 60"),
    ]
    if grace is not None:
        checks.append(("--grace", grace, 0 < grace <= 3600, "seconds above 0, at most 3600"))
    problems = [
        f"{option} {value!r}: expected {want}"
        for option, value, good, want in checks
        if not (good and math.isfinite(value))
    ]
    if problems:
        raise ConfigError(problems, header="invalid simulate options")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def simulate_group(load_target: Callable[[str], type[Application]]) -> click.Group:
    """The ``simulate`` group, its ``kubernetes`` command loading targets with ``load_target``."""

    @click.group()
    def simulate_() -> None:
        """Rehearse how a platform stops the application, and count what gets lost."""

    @simulate_.command("kubernetes")
    @click.argument("target")
    @app_options
    @click.option("--workers", type=click.IntRange(min=1), default=None, help="As for run.")
    @click.option("--clients", type=int, default=4, show_default=True, help="Keep-alive clients.")
    @click.option(
        "--endpoint-lag",
        type=float,
        default=DEFAULT_ENDPOINT_LAG,
        show_default=True,
        help="Seconds new requests still reach the pod after SIGTERM.",
    )
    @click.option("--pre-stop", type=float, default=0.0, show_default=True, help="preStop sleep.")
    @click.option(
        "--grace",
        type=float,
        default=None,
        help="terminationGracePeriodSeconds, counted from the deletion (default: the smallest "
        "one `framework check` accepts for the app's configuration).",
    )
    @click.option("--path", default=None, help="What the clients GET (default: http.livez_path).")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
    def kubernetes(target: str, as_json: bool, **options: Any) -> None:
        """Run TARGET, drive clients at it, delete its pod as Kubernetes would; exit 0 only if
        every request was answered and no SIGKILL was needed."""
        from framework._cli import kubelet

        cls = guard(lambda: load_target(target))
        try:
            report = run_simulation(cls, target, **_renamed(options))
        except ConfigError as exc:
            fail(exc)
        except kubelet.SimulationError as exc:
            click.echo(f"simulate: {exc}", err=True)
            sys.exit(ExitCode.FAILURE)
        click.echo(json.dumps(report.as_json(), indent=2) if as_json else report.text())
        sys.exit(ExitCode.OK if report.ok else ExitCode.FAILURE)

    simulate_.name = "simulate"
    return simulate_


def _renamed(options: dict[str, Any]) -> dict[str, Any]:
    return {**options, "sets": tuple(options.pop("sets"))}
