"""The last resort (`framework._runtime.watchdog`) with an injected timer and exit: no thread, no exit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from framework._runtime.watchdog import Watchdog


class FakeTimer:
    """Records what would run, and when; ``go()`` runs it as the timer thread would."""

    def __init__(self, seconds: float, function: Callable[..., object], *args: Any) -> None:
        self.seconds, self.function, self.args = seconds, function, args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def go(self) -> None:
        assert not self.cancelled
        self.function(*self.args)


class Clock:
    def __init__(self) -> None:
        self.timers: list[FakeTimer] = []
        self.exits: list[int] = []
        self.said: list[tuple[int, str]] = []

    def start_timer(self, seconds: float, function: Callable[..., object], *args: Any) -> FakeTimer:
        timer = FakeTimer(seconds, function, *args)
        self.timers.append(timer)
        return timer

    def watchdog(self, last_words: Callable[[int, str], None] | None = None) -> Watchdog:
        return Watchdog(
            last_words or (lambda code, why: self.said.append((code, why))),
            start_timer=self.start_timer,
            exit=self.exits.append,
        )


def test_armed_watchdog_says_why_then_exits_with_the_code() -> None:
    """When the deadline passes: the last words (log, report, flush), then the exit code."""
    clock = Clock()
    dog = clock.watchdog()
    dog.arm(2.5, 1, "the shutdown outlived lifecycle.shutdown_timeout")
    assert [t.seconds for t in clock.timers] == [2.5]
    assert clock.exits == []
    clock.timers[0].go()
    assert clock.said == [(1, "the shutdown outlived lifecycle.shutdown_timeout")]
    assert clock.exits == [1]


def test_arming_again_replaces_the_deadline_and_disarm_cancels_it() -> None:
    """At most one deadline: a second signal's short deadline replaces the shutdown's long one."""
    clock = Clock()
    dog = clock.watchdog()
    dog.arm(32.0, 1, "long")
    dog.arm(0.5, 130, "second SIGTERM")
    assert clock.timers[0].cancelled and not clock.timers[1].cancelled
    dog.disarm()
    assert clock.timers[1].cancelled
    dog.disarm()  # idempotent


def test_the_exit_happens_even_when_the_last_words_fail() -> None:
    """A broken report or flush never keeps the process alive."""
    clock = Clock()

    def broken(code: int, why: str) -> None:
        raise OSError("disk full")

    dog = clock.watchdog(broken)
    with pytest.raises(OSError):
        dog.fire(130, "SIGTERM received 3 times")
    assert clock.exits == [130]


def test_exit_later_exits_without_last_words() -> None:
    """After run() returned with a stop left behind: only the exit, the logs are flushed already."""
    clock = Clock()
    dog = clock.watchdog()
    dog.exit_later(0.5, 0)
    clock.timers[0].go()
    assert clock.exits == [0] and clock.said == []


def test_an_earlier_deadline_is_never_postponed() -> None:
    """arm_within keeps a nearer deadline (the first signal's) and replaces a later one."""
    clock = Clock()
    dog = clock.watchdog()
    dog.arm_within(0.5, 130, "second SIGTERM")
    dog.arm_within(30.0, 1, "the shutdown outlived lifecycle.shutdown_timeout")
    assert [t.seconds for t in clock.timers] == [0.5]
    dog.arm_within(0.1, 130, "SIGTERM received 3 times")
    assert clock.timers[0].cancelled and clock.timers[1].seconds == 0.1


def test_last_words_that_block_never_hold_the_exit() -> None:
    """Last words stuck (a log write blocked on a stalled pipe): after the bound, the last line
    is written straight to stderr and the exit happens anyway."""
    import threading

    clock = Clock()
    stuck = threading.Event()
    lines: list[str] = []
    dog = Watchdog(
        lambda code, why: stuck.wait(10),
        last_line=lambda code, why: lines.append(f"exit code {code}") or "",
        start_timer=clock.start_timer,
        exit=clock.exits.append,
        last_words_bound=0.3,
    )
    dog.fire(130, "second SIGTERM")
    stuck.set()
    assert clock.exits == [130] and lines == ["exit code 130"]
