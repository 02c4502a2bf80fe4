"""A supervisor's worker reports in: a heartbeat from its event loop, with what it has served.

The supervisor asks for it with ``FRAMEWORK_HEARTBEAT=<seconds>`` in the worker's environment.
`heartbeat_loop` then sends, every that many seconds, one small datagram on the worker's
``NOTIFY_SOCKET`` (the socket the supervisor already reads for ``READY=1``)::

    FRAMEWORK_BEAT=1
    FRAMEWORK_REQUESTS=<HTTP requests served by this process>
    FRAMEWORK_RSS=<resident memory, bytes>

It runs as a task on the event loop: a loop blocked by synchronous code stops the beats, which is
how the supervisor tells a hung worker (``process.worker_timeout``). The supervisor decides on
the figures (``process.max_requests``, ``process.max_memory_mib``); the worker only reports them.

HTTP services register a counter with `count_requests`; the runtime does not know them otherwise.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from framework._runtime.systemd import Notifier

__all__ = (
    "BEAT",
    "HEARTBEAT_ENV",
    "REQUESTS",
    "RSS",
    "count_requests",
    "heartbeat_fields",
    "heartbeat_interval",
    "heartbeat_loop",
    "requests_served",
    "resident_bytes",
)

HEARTBEAT_ENV = "FRAMEWORK_HEARTBEAT"
BEAT = "FRAMEWORK_BEAT"
REQUESTS = "FRAMEWORK_REQUESTS"
RSS = "FRAMEWORK_RSS"

_counters: list[Callable[[], int]] = []
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def count_requests(counter: Callable[[], int]) -> None:
    """Add ``counter`` (requests served so far by one server) to what this process reports."""
    _counters.append(counter)


def requests_served() -> int:
    """The HTTP requests served by this process so far (every registered counter, summed)."""
    total = 0
    for counter in list(_counters):
        with contextlib.suppress(Exception):  # a server gone with its state counts no more
            total += int(counter())
    return total


def resident_bytes() -> int:
    """This process's resident memory: ``/proc/self/statm`` on Linux, else the peak (rusage)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def heartbeat_fields() -> tuple[str, ...]:
    """One heartbeat's ``KEY=VALUE`` fields."""
    return (f"{BEAT}=1", f"{REQUESTS}={requests_served()}", f"{RSS}={resident_bytes()}")


def heartbeat_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between heartbeats the supervisor asked for; ``None``: not a worker, or none asked."""
    value = (os.environ if environ is None else environ).get(HEARTBEAT_ENV, "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


async def heartbeat_loop(notifier: Notifier, interval: float) -> None:
    """Send a heartbeat every ``interval`` seconds from the event loop, until cancelled."""
    from framework._runtime.stacks import arm_stack_signal

    arm_stack_signal()
    while True:
        notifier.notify(*heartbeat_fields())
        await anyio.sleep(interval)
