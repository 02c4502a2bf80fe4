"""The shutdown budget lint behind ``framework check``: will the configured bounds hold?"""

from __future__ import annotations

from collections.abc import Mapping

from framework._config.settings import LifecycleSettings
from framework._engine.graph import DependencyGraph
from framework._engine.timing import GRACE_HEADROOM, HARD_EXIT_MARGIN

__all__ = ("GRACE_HEADROOM", "budget_lines", "check_budget", "minimum_grace_period")


def minimum_grace_period(lc: LifecycleSettings, pre_stop: float = 0.0) -> float:
    """The smallest platform grace period the process is sure to fit in, in seconds.

    The watchdog ends the process at the latest ``lifecycle.shutdown_timeout`` + 2 s after the
    first signal, ``shutdown_delay`` counting inside ``shutdown_timeout``; a preStop sleep runs
    before the signal and counts in the platform's grace period too. One formula for ``framework
    check``, the template's ``terminationGracePeriodSeconds`` and ``framework simulate``.
    """
    return lc.shutdown_timeout + HARD_EXIT_MARGIN + pre_stop


def check_budget(
    lc: LifecycleSettings,
    graph: DependencyGraph,
    stop_seconds: Mapping[str, float],
    grace_period: float | None = None,
) -> list[str]:
    """Warnings, each saying what does not fit and what to change.

    ``stop_seconds`` is each service's stop bound (`framework._config.timeouts.stop_seconds`).
    """
    longest, chain = graph.longest_chain(stop_seconds)
    warnings = []
    needed = lc.shutdown_delay + longest
    if needed > lc.shutdown_timeout:
        path = " -> ".join(chain)
        warnings.append(
            f"the shutdown budget may not hold: lifecycle.shutdown_delay {lc.shutdown_delay:g} s "
            f"+ the longest chain of stop bounds {longest:g} s ({path}) = {needed:g} s exceeds "
            f"lifecycle.shutdown_timeout {lc.shutdown_timeout:g} s, so the last stops could be cut "
            "short; raise lifecycle.shutdown_timeout or lower the stop bounds"
        )
    grace, source = _grace(lc, grace_period)
    if grace is not None and minimum_grace_period(lc) > grace:
        warnings.append(
            f"lifecycle.shutdown_timeout {lc.shutdown_timeout:g} s + {HARD_EXIT_MARGIN:g} s for the "
            f"last words and the exit = {minimum_grace_period(lc):g} s exceeds the platform grace "
            f"period {grace:g} s ({source}): the process may be killed before it stops; set the "
            f"grace period to at least {minimum_grace_period(lc):g} s (plus any preStop sleep) "
            "or lower lifecycle.shutdown_timeout"
        )
    return warnings


def budget_lines(
    lc: LifecycleSettings,
    graph: DependencyGraph,
    stop_seconds: Mapping[str, float],
    grace_period: float | None = None,
) -> list[str]:
    """How the budget fits, for ``framework check`` to print when `check_budget` finds nothing."""
    longest, _ = graph.longest_chain(stop_seconds)
    needed = lc.shutdown_delay + longest
    lines = [
        f"shutdown_delay {lc.shutdown_delay:g} s + longest stop chain {longest:g} s = "
        f"{needed:g} s <= lifecycle.shutdown_timeout {lc.shutdown_timeout:g} s"
    ]
    grace, source = _grace(lc, grace_period)
    if grace is not None:
        lines.append(
            f"shutdown_timeout {lc.shutdown_timeout:g} s (shutdown_delay included) + "
            f"{HARD_EXIT_MARGIN:g} s = {minimum_grace_period(lc):g} s <= grace period "
            f"{grace:g} s ({source})"
        )
    return lines


def _grace(lc: LifecycleSettings, grace_period: float | None) -> tuple[float | None, str]:
    """The platform's grace period and where it came from: ``--grace-period`` over the setting."""
    if grace_period is not None:
        return grace_period, "--grace-period"
    return lc.grace_period, "lifecycle.grace_period"
