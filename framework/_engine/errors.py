"""Every error the framework raises, under one base class.

Messages say what happened and what to do next, naming the service, the key or the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from framework._engine.events import Outcome
from framework._engine.secrets import mask

if TYPE_CHECKING:
    from framework._engine.events import Bound, Phase

__all__ = (
    "ConfigError",
    "DependencyCycleError",
    "FrameworkError",
    "GraphError",
    "ServiceError",
    "ShutdownError",
    "StartupError",
    "TargetError",
    "error_text",
    "failure",
)


class FrameworkError(Exception):
    """Base class of every error raised by the framework."""


class GraphError(FrameworkError):
    """The service dependency graph is invalid; nothing was started."""


class DependencyCycleError(GraphError):
    """Services depend on each other in a cycle."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        path = " -> ".join([*self.cycle, self.cycle[0]])
        super().__init__(
            f"dependency cycle between services: {path}; "
            "break it by removing one of these dependencies"
        )


class ConfigError(FrameworkError):
    """The configuration is invalid. Carries every problem found, not only the first."""

    def __init__(self, problems: Sequence[str], *, header: str = "invalid configuration") -> None:
        self.problems = tuple(problems)
        lines = [
            f"{header} ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):"
        ]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class TargetError(FrameworkError):
    """A `module:attr` target could not be loaded."""


class ServiceError(FrameworkError):
    """One service failed, timed out or was cancelled in one phase of its lifecycle."""

    def __init__(
        self,
        service: str,
        phase: Phase,
        outcome: Outcome,
        *,
        bound: Bound | None = None,
        cause: BaseException | None = None,
    ) -> None:
        self.service = service
        self.phase = phase
        self.outcome = outcome
        self.bound = bound
        self.cause = cause
        super().__init__(self._message())

    def _message(self) -> str:
        return failure(self.service, self.phase, self.outcome, self.bound, self.cause)


class _ServiceErrors(FrameworkError):
    summary = ""

    def __init__(self, errors: Sequence[ServiceError], reason: str = "") -> None:
        self.errors = tuple(errors)
        self.reason = reason
        body = "; ".join(str(e) for e in self.errors) or reason or "no service error recorded"
        super().__init__(f"{self.summary}: {body}")


class StartupError(_ServiceErrors):
    """Startup failed; every service that had begun starting was stopped again."""

    summary = "startup failed and was rolled back"


class ShutdownError(_ServiceErrors):
    """One or more services failed or timed out while stopping; the others were stopped."""

    summary = "shutdown finished with errors"


def error_text(error: BaseException | None) -> str:
    """``TypeName: message`` (secrets masked), or ``unknown error``."""
    return mask(f"{type(error).__name__}: {error}") if error is not None else "unknown error"


def failure(
    service: str,
    phase: Phase,
    outcome: Outcome,
    bound: Bound | None = None,
    cause: BaseException | None = None,
) -> str:
    """What went wrong with one service in one phase, e.g. ``service 'db' failed to stop: ...``."""
    verb = phase.value
    if outcome is Outcome.TIMED_OUT and bound is not None:
        return f"service {service!r} did not {verb} within {bound}"
    if outcome is Outcome.CANCELLED:
        return f"service {service!r}: {verb} was cancelled"
    return f"service {service!r} failed to {verb}: {error_text(cause)}"
