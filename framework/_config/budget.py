"""The shutdown budget lint behind ``framework check``: will the configured bounds hold?"""

from __future__ import annotations

from collections.abc import Mapping

from framework._config.settings import LifecycleSettings
from framework._engine.graph import DependencyGraph
from framework._engine.timing import GRACE_HEADROOM

__all__ = ("GRACE_HEADROOM", "budget_lines", "check_budget")


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
    if grace is not None:
        total = lc.shutdown_delay + lc.shutdown_timeout
        if total + GRACE_HEADROOM > grace:
            warnings.append(
                f"lifecycle.shutdown_delay {lc.shutdown_delay:g} s + lifecycle.shutdown_timeout "
                f"{lc.shutdown_timeout:g} s = {total:g} s leaves less than {GRACE_HEADROOM:g} s of "
                f"the platform grace period {grace:g} s ({source}): the process may be killed "
                f"before it stops; set the grace period to at least {total + GRACE_HEADROOM:g} s "
                "or lower the budget"
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
        total = lc.shutdown_delay + lc.shutdown_timeout
        lines.append(
            f"shutdown_delay {lc.shutdown_delay:g} s + shutdown_timeout {lc.shutdown_timeout:g} s"
            f" + {GRACE_HEADROOM:g} s headroom = {total + GRACE_HEADROOM:g} s <= grace period "
            f"{grace:g} s ({source})"
        )
    return lines


def _grace(lc: LifecycleSettings, grace_period: float | None) -> tuple[float | None, str]:
    """The platform's grace period and where it came from: ``--grace-period`` over the setting."""
    if grace_period is not None:
        return grace_period, "--grace-period"
    return lc.grace_period, "lifecycle.grace_period"
