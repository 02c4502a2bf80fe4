"""One worker process of the supervisor: spawned on the shared sockets, heard over sd_notify, reaped.

A worker is ``command`` (normally ``python -m framework run module:App ...``) started with:

- the listening sockets at fds 3, 4, ... and ``LISTEN_FDS``/``LISTEN_PID``/``LISTEN_FDNAMES`` for
  its own pid (socket activation, `framework._runtime.systemd.take_inherited_socket` on the worker side);
- ``NOTIFY_SOCKET`` naming a datagram socket the supervisor owns for this worker alone, so its
  ``READY=1`` and ``STOPPING=1`` (`framework._runtime.systemd.Notifier`) tell the supervisor its state;
- ``FRAMEWORK_WORKER`` set to its slot number (`worker_slot`), so it never supervises in turn;
- its own process group (a Ctrl-C at the terminal reaches the supervisor only, which forwards one
  SIGTERM) and, on Linux, SIGTERM when the supervisor dies, so no worker outlives it.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import random
import signal
import socket
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from framework._runtime.heartbeat import BEAT, HEARTBEAT_ENV, REQUESTS, RSS
from framework._runtime.stacks import STACKS_FD_ENV
from framework._runtime.systemd import SD_LISTEN_FDS_START, WORKER_ENV, listen_environment

if TYPE_CHECKING:
    from loguru import Logger

    from framework._config.settings import ProcessSettings
    from framework._process.listeners import Listener

__all__ = (
    "WORKER_ENV",
    "Pool",
    "Worker",
    "spawn_worker",
    "worker_command",
)

_PR_SET_PDEATHSIG = 1


@dataclass(eq=False)
class Worker:
    """A worker process and what the supervisor knows of it."""

    pid: int
    slot: int
    notify: socket.socket
    started_at: float
    ready_at: float | None = None
    stopping: bool = False  # it said STOPPING=1
    retiring: bool = False  # the supervisor stopped it on purpose: its exit is expected
    terminated: bool = False  # it was sent SIGTERM
    wait_status: int | None = None
    status: str = ""
    messages: list[str] = field(default_factory=list)
    stacks: int | None = None  # the read end of the pipe its stacks are written to, on demand
    beat_at: float | None = None  # its last heartbeat (framework._runtime.heartbeat)
    requests: int = 0  # HTTP requests served, as its last heartbeat said
    rss: int = 0  # resident memory in bytes, as its last heartbeat said
    request_limit: int = 0  # replaced once it has served this many (0: never)
    reason: str = ""  # why the supervisor replaces it: max_requests, max_memory, timeout
    successor: Worker | None = None  # the new worker that replaces it once ready
    retire_by: float | None = None  # a recycled worker still running then is killed

    @property
    def alive(self) -> bool:
        return self.wait_status is None

    @property
    def ready(self) -> bool:
        return self.ready_at is not None and self.alive

    @property
    def exit_code(self) -> int | None:
        """The exit code; ``-N`` when killed by signal N; ``None`` while it runs."""
        if self.wait_status is None:
            return None
        return os.waitstatus_to_exitcode(self.wait_status)

    def describe_exit(self) -> str:
        code = self.exit_code
        if code is None:
            return "is running"
        if code < 0:
            return f"was killed by {_signal_name(-code)}"
        return f"exited with code {code}"

    def read_messages(self) -> bool:
        """Take every sd_notify datagram waiting on this worker's socket; whether it became ready."""
        became_ready = False
        while True:
            try:
                data = self.notify.recv(4096)
            except OSError:  # nothing waiting (BlockingIOError), or closed
                return became_ready
            for line in data.decode(errors="replace").splitlines():
                self.messages.append(line)
                if line == "READY=1" and self.ready_at is None:
                    self.ready_at = time.monotonic()
                    became_ready = True
                elif line == "STOPPING=1":
                    self.stopping = True
                elif line.startswith("STATUS="):
                    self.status = line.removeprefix("STATUS=")
                else:
                    self._heard(line)

    def _heard(self, line: str) -> None:
        """A heartbeat field: when it beat, what it served, its memory."""
        key, _, value = line.partition("=")
        if key == BEAT:
            self.beat_at = time.monotonic()
        elif key in (REQUESTS, RSS) and value.isdigit():
            setattr(self, "requests" if key == REQUESTS else "rss", int(value))

    def send(self, sig: signal.Signals) -> None:
        """Send ``sig`` unless it has exited already."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        """SIGTERM, once: a second one would force the worker's shutdown."""
        if not self.terminated:
            self.terminated = True
            self.send(signal.SIGTERM)

    def close(self) -> None:
        self.notify.close()
        if self.stacks is not None:
            with contextlib.suppress(OSError):
                os.close(self.stacks)
            self.stacks = None


def spawn_worker(
    command: Sequence[str],
    listeners: Sequence[Listener],
    slot: int,
    env: Mapping[str, str],
    heartbeat: float | None = None,
) -> Worker:
    """Fork and exec ``command`` as worker ``slot`` on ``listeners`` (see the module docstring).

    With ``heartbeat`` (seconds), the worker reports in that often and gets a pipe, after its
    sockets, for its stacks (`framework._runtime.heartbeat`, `framework._runtime.stacks`).
    """
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"@framework-{os.getpid()}-{slot}-{uuid.uuid4().hex[:12]}"
    notify.bind(b"\0" + name[1:].encode())
    notify.setblocking(False)
    child_env = {
        key: value
        for key, value in env.items()
        if key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
    }
    child_env.update(listen_environment([lst.name for lst in listeners], 0))
    child_env.update({"NOTIFY_SOCKET": name, WORKER_ENV: str(slot)})
    argv = [str(arg) for arg in command]
    fds = [lst.sock.fileno() for lst in listeners]
    stacks_r = stacks_w = None
    if heartbeat is not None:
        stacks_r, stacks_w = os.pipe()
        os.set_blocking(stacks_r, False)
        child_env[HEARTBEAT_ENV] = f"{heartbeat:g}"
        child_env[STACKS_FD_ENV] = str(SD_LISTEN_FDS_START + len(fds))
        fds.append(stacks_w)
    parent = os.getpid()
    set_death_signal = _death_signal_setter()
    pid = os.fork()
    if pid == 0:  # the child: only what is needed before exec
        try:
            _child(argv, child_env, fds, parent, set_death_signal)
        finally:
            os._exit(127)
    if stacks_w is not None:
        os.close(stacks_w)
    return Worker(pid=pid, slot=slot, notify=notify, started_at=time.monotonic(), stacks=stacks_r)


def _child(
    argv: list[str], env: dict[str, str], fds: list[int], parent: int, set_death_signal: object
) -> None:
    os.setpgid(0, 0)
    if callable(set_death_signal):
        set_death_signal(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != parent:  # the supervisor died before the death signal was armed
        return
    first = SD_LISTEN_FDS_START
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, first + len(fds)) for fd in fds]
    for index, fd in enumerate(high):
        os.dup2(fd, first + index, inheritable=True)
    env["LISTEN_PID"] = str(os.getpid())
    try:
        os.execve(argv[0], argv, env)  # noqa: S606 (argv is the worker command, no shell)
    except OSError as exc:
        os.write(2, f"cannot start the worker {argv[0]}: {exc}\n".encode())


def _death_signal_setter() -> object:
    """libc's prctl (Linux), looked up before fork; ``None`` elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def worker_command(target: str, options: Sequence[str] = ()) -> list[str]:
    """``python -m framework run TARGET OPTIONS --set process.workers=0``: what each worker runs.

    ``options`` are the run options given to the supervisor (``--config-dir``, ``--env``,
    ``--set``, ``--backend``, ...) without ``--workers``.
    """
    return [
        sys.executable,
        "-m",
        "framework",
        "run",
        target,
        *options,
        "--set",
        "process.workers=0",
    ]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class Pool:
    """The supervisor's workers: spawned per slot, reaped, replaced after a doubling backoff."""

    def __init__(
        self,
        command: Sequence[str],
        listeners: Sequence[Listener],
        size: int,
        process: ProcessSettings,
        env: Mapping[str, str],
        log: Logger,
    ) -> None:
        self.command = list(command)
        self.listeners = list(listeners)
        self.size = size
        self.process = process
        self.env = dict(env)
        self.log = log
        self.workers: list[Worker] = []  # running, and exited ones not yet accounted for
        self._due: dict[int, float] = {}  # slot -> when its replacement starts
        self._backoff: dict[int, float] = {}
        self.heartbeat: float | None = None  # seconds between a worker's heartbeats; None: none
        self.replacements: dict[str, int] = {}  # replacements by reason

    def spawn(self, slot: int) -> Worker:
        worker = spawn_worker(self.command, self.listeners, slot, self.env, self.heartbeat)
        if self.process.max_requests:
            jitter = random.randint(0, self.process.max_requests_jitter)  # noqa: S311
            worker.request_limit = self.process.max_requests + jitter
        self.workers.append(worker)
        self.log.info(f"worker {worker.pid} started (slot {slot}/{self.size})")
        return worker

    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.alive]

    def current(self) -> list[Worker]:
        """The live workers that are not being stopped."""
        return [w for w in self.workers if w.alive and not w.retiring]

    def reap(self) -> list[Worker]:
        """Collect the exit of every worker that ended; the ones that did."""
        ended: list[Worker] = []
        for worker in self.live():
            try:
                pid, status = os.waitpid(worker.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = worker.pid, 255 << 8
            if pid == worker.pid:
                worker.wait_status = status
                worker.read_messages()
                ended.append(worker)
        return ended

    def forget(self, worker: Worker) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
        worker.close()

    def replace_dead(self) -> None:
        """Schedule a replacement for each worker that exited unexpectedly; start the due ones."""
        now = time.monotonic()
        for worker in [w for w in self.workers if not w.alive]:
            self.forget(worker)
            if worker.retiring:
                if worker.reason:  # recycled: its successor serves already
                    self.log.info(
                        f"worker {worker.pid} (slot {worker.slot}) {worker.describe_exit()}"
                    )
                continue
            if any(w.slot == worker.slot and w.alive for w in self.workers):
                continue  # a new worker already serves this slot
            delay = self._next_backoff(worker, now)
            self._due[worker.slot] = now + delay
            reason = worker.reason or f"exited {worker.exit_code}"
            self.count(reason)
            self.log.bind(exit_code=worker.exit_code, reason=reason).error(
                f"worker {worker.pid} (slot {worker.slot}) {worker.describe_exit()}"
                f"{'' if worker.reason else ' unexpectedly'}; replacing it in {delay:g} s "
                f"(reason: {reason})"
            )
        for slot, due in sorted(self._due.items()):
            if due <= now:
                del self._due[slot]
                self.spawn(slot)

    def count(self, reason: str) -> None:
        """One more replacement for ``reason``."""
        self.replacements[reason] = self.replacements.get(reason, 0) + 1

    def replacement_counts(self) -> str:
        """``max_requests 23, timeout 1``: the replacements so far by reason; ``none``."""
        counts = sorted(self.replacements.items())
        return ", ".join(f"{reason} {n}" for reason, n in counts) if counts else "none"

    def _next_backoff(self, worker: Worker, now: float) -> float:
        first, most = self.process.restart_backoff, self.process.restart_backoff_max
        stable = worker.ready_at is not None and now - worker.ready_at >= most
        delay = first if stable else self._backoff.get(worker.slot, first)
        self._backoff[worker.slot] = min(most, delay * 2)
        return delay

    def signal_all(self, sig: signal.Signals) -> None:
        for worker in self.live():
            worker.send(sig)

    def discard(self, worker: Worker) -> None:
        """Kill ``worker`` (a new one that failed) and forget it."""
        worker.retiring = True
        worker.send(signal.SIGKILL)
        self._reap_within([worker], 2.0)
        self.forget(worker)

    def kill_all(self) -> None:
        """SIGKILL every live worker and collect its exit (bounded)."""
        self._due.clear()
        live = self.live()
        for worker in live:
            worker.retiring = True
            worker.send(signal.SIGKILL)
        self._reap_within(live, 0.15)  # SIGKILL is quick; the supervisor's exit bound is close

    def _reap_within(self, workers: list[Worker], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while any(w.alive for w in workers) and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.01)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
