"""The timeline report: what happened to each service, built from the engine's records.

Every text in it that may carry an exception's message (the errors, the reason) goes through
`framework._engine.secrets.mask`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from framework._engine.records import ServiceRecord
from framework._engine.secrets import mask
from framework._runtime import messages

__all__ = ("final_report", "logs_info", "render_timeline", "timeline", "write_report")


def final_report(
    records: Iterable[ServiceRecord] | None, code: int, reason: str, path: Path | None
) -> None:
    """The last log line (the timeline, ``exit code N``) and the ``--report`` file, if asked for.

    The table has a line per service: it is built only when a sink takes INFO or a file is asked.
    """
    from framework._runtime.signals import wait_for_stacks

    wait_for_stacks()  # a forced shutdown's stack dump reaches the log before the final line
    logged = logs_info()
    entries = timeline(records if logged or path is not None else None)
    if logged:
        messages.runner_log().bind(exit_code=code).info(
            render_timeline(entries) + f"\nexit code {code}"
        )
    if path is not None:
        try:
            write_report(path, entries, code, reason)
        except OSError as exc:
            messages.runner_log().error(messages.report_not_written(path, exc))


def timeline(records: Iterable[ServiceRecord] | None) -> list[dict[str, Any]]:
    """One entry per service, in start order: start and stop outcome and duration, errors, and
    each restart of its ``run()`` (seconds after the first start began, cause, backoff)."""
    records = list(records or ())
    origin = min((r.start_began for r in records if r.start_began is not None), default=0.0)
    out = []
    for rec in sorted(records, key=lambda r: (r.start_began is None, r.start_began or 0.0)):
        out.append(
            {
                "service": rec.name,
                "start": {
                    "outcome": rec.start_outcome.value,
                    "seconds": _round(rec.start_duration),
                },
                "stop": {
                    "outcome": rec.stop_outcome.value if rec.stop_outcome else "not stopped",
                    "seconds": _round(rec.stop_duration),
                }
                if rec.began
                else {"outcome": "never started", "seconds": None},
                "errors": [mask(str(e)) for e in rec.errors],
                "restarts": [
                    {"at": round(r.at - origin, 6), "cause": mask(r.cause), "backoff": r.backoff}
                    for r in rec.restarts
                ],
                **({"run": rec.run_ended} if rec.run_ended is not None else {}),
                **({"tasks_cancelled": list(rec.tasks_cancelled)} if rec.tasks_cancelled else {}),
            }
        )
    return out


def logs_info() -> bool:
    """Whether any log sink takes INFO records (the timeline's level)."""
    from framework._compat.loguru import min_level

    return min_level() <= _INFO


_INFO = 20


def render_timeline(entries: list[dict[str, Any]]) -> str:
    """A compact table for the log."""
    if not entries:
        return "timeline: no services"
    width = max(len(e["service"]) for e in entries)
    lines = ["timeline:"]
    for e in entries:
        start, stop = e["start"], e["stop"]
        line = f"  {e['service']:<{width}}  start {_cell(start)}  stop {_cell(stop)}"
        restarts = len(e.get("restarts", ()))
        line += f"  run {e['run']}" if "run" in e else ""
        line += f"  restarts {restarts}" if restarts else ""
        cancelled = e.get("tasks_cancelled", ())
        lines.append(line + (f"  tasks cancelled: {', '.join(cancelled)}" if cancelled else ""))
    return "\n".join(lines)


def write_report(path: Path, entries: list[dict[str, Any]], exit_code: int, reason: str) -> None:
    """The ``--report`` JSON: exit code, reason (masked: a crash's carries its exception text)."""
    payload = {"exit_code": exit_code, "reason": mask(reason), "services": entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _cell(phase: dict[str, Any]) -> str:
    seconds = phase["seconds"]
    return f"{phase['outcome']:<13} {'' if seconds is None else f'{seconds:.3f} s':>9}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
