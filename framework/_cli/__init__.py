"""The command line: ``framework`` and ``python -m framework``.

`main` is the entry point. Its first act, before the framework, the application and their
dependencies are imported (a second or more on a loaded machine), is to make SIGTERM and SIGINT
end the process at once with exit 0 and one line (`framework._runtime.signals.exit_if_early`):
nothing has started yet, so there is nothing to stop, and a supervisor or an orchestrator that
stops the process this early sees a clean exit rather than death by signal.
"""

from __future__ import annotations

__all__ = ("main",)


def main() -> None:
    """Console script entry point."""
    from framework._runtime.signals import exit_if_early

    exit_if_early()
    from framework._cli.commands import main as run_command

    run_command()
