"""10. The development loop: save to first new response, ``framework dev`` against ``uvicorn --reload``.

The same FastAPI app, written to a temporary folder: ``api.py`` has ``VERSION`` and ``app =
FastAPI()`` with ``GET /`` answering ``VERSION``; ``service.py`` serves ``api.app`` with an
`HttpService` (``App``). Two servers, each on a free loopback port, each with its defaults:

- ``framework dev service:App`` (the ``framework`` console script beside this interpreter);
- ``uvicorn api:app --reload`` (the ``uvicorn`` console script beside it).

While a server runs, a client thread asks ``GET /`` over one keep-alive ``http.client``
connection, a request every `PACE` s, reconnecting after a failure. The benchmark rewrites
``api.py`` with a new ``VERSION``, `RELOADS` times; each time it takes the time from the write to
the first answer carrying the new version (at most `BOUND` s), then waits `PAUSE` s before the
next edit. A request that fails (refused, reset or closed before its answer, timed out after
`TIMEOUT` s, or a 5xx) is counted, by kind. A round is one session of each server, one after
the other; the second round runs them in the other order, when the first took less than
`SECOND_ROUND_IF` s. The servers get SIGINT at the end (killed after `STOP_BOUND` s), and their
process group is checked to be empty.

Both run with ``PYTHONDONTWRITEBYTECODE=1``: two edits within the same second keep the size of
``api.py``, and a cached ``.pyc`` (stamped with the source's mtime in whole seconds) would serve
the old version.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench._common import PYTHON, TIMES, Figure, Result, child_env, free_port, median, wait_status
from bench._common import workdir as temp_folder

RELOADS = 20
PAUSE = 0.5  # seconds between a new version's first answer and the next edit
BOUND = 30.0  # seconds a new version may take to answer
PACE = 0.005  # seconds between two requests of the client
TIMEOUT = 5.0  # seconds a request may take
STOP_BOUND = 20.0
SECOND_ROUND_IF = 80.0  # seconds the first round may have taken for a second one to run
BIN = Path(PYTHON).parent

API = '''"""The app under development: GET / answers VERSION."""

from fastapi import FastAPI

VERSION = "{version}"

app = FastAPI()


@app.get("/")
def version() -> str:
    return VERSION
'''

SERVICE = '''"""`api.app` served by the framework's HttpService."""

from dependency_injector import containers, providers

from api import app
from framework import Application, Settings
from framework.services import HttpService


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    http = providers.Singleton(
        HttpService, app=providers.Object(app), settings=settings.provided.http
    )


class App(Application):
    container_class = Container
'''

SERVERS = ("framework dev", "uvicorn --reload")


def _command(which: str, port: int) -> list[str]:
    if which == "framework dev":
        return [str(BIN / "framework"), "dev", "service:App", "--set", f"http.port={port}"]
    return [str(BIN / "uvicorn"), "api:app", "--reload", "--host", "127.0.0.1", "--port", str(port)]


@dataclass
class Session:
    """What one server did over its reloads."""

    server: str
    seconds: list[float] = field(default_factory=list)  # write to first new answer, per reload
    failed: dict[str, int] = field(default_factory=dict)  # failed requests, by kind
    answered: int = 0
    exit_code: int | None = None
    left: int = 0  # processes of its group still there after the stop (killed)

    @property
    def failures(self) -> int:
        return sum(self.failed.values())


class Client:
    """``GET /`` in a loop on a keep-alive connection (a thread): when each body was first seen."""

    def __init__(self, port: int, until: float) -> None:
        self.port = port
        self.until = until
        self.first_seen: dict[str, float] = {}
        self.failed: dict[str, int] = {}
        self.answered = 0
        self.done = threading.Event()
        self._seen = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="bench-dev-client", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.done.set()
        self._thread.join(TIMEOUT + 5)

    def wait_for(self, body: str, timeout: float) -> float | None:
        """The monotonic time ``body`` was first answered, waiting at most ``timeout`` s."""
        with self._seen:
            self._seen.wait_for(lambda: body in self.first_seen, timeout)
            return self.first_seen.get(body)

    def _fail(self, kind: str) -> None:
        self.failed[kind] = self.failed.get(kind, 0) + 1

    def _loop(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self.done.is_set() and time.monotonic() < self.until:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                body = response.read().decode()
            except (OSError, http.client.HTTPException) as exc:
                self._fail(_kind(exc))
                conn.close()
                conn = None
            else:
                self._answer(response.status, body, time.monotonic())
                if response.will_close:
                    conn.close()
                    conn = None
            time.sleep(PACE)
        if conn is not None:
            conn.close()

    def _answer(self, status: int, body: str, at: float) -> None:
        if status >= 500:
            self._fail(f"{status}")
            return
        self.answered += 1
        with self._seen:
            self.first_seen.setdefault(body, at)
            self._seen.notify_all()


def _kind(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected | BrokenPipeError):
        return "closed before the answer"  # (RemoteDisconnected is a ConnectionResetError)
    if isinstance(exc, ConnectionResetError):
        return "reset"
    return type(exc).__name__


def _stop(proc: subprocess.Popen[bytes], session: Session) -> None:
    """SIGINT, then SIGKILL to its group after `STOP_BOUND` s; count what is left of the group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_BOUND)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    session.exit_code = proc.returncode
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _group_alive(proc.pid):
        time.sleep(0.05)
    if _group_alive(proc.pid):
        session.left += 1
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _write(folder: Path, version: str) -> None:
    (folder / "api.py").write_text(API.format(version=version))


def session(which: str, reloads: int, tmp: Path) -> Session:
    """Start ``which`` in a fresh folder, edit ``api.py`` ``reloads`` times under the client."""
    folder = tmp / f"{which.split()[0]}-{time.monotonic_ns()}"
    folder.mkdir()
    _write(folder, "v0")
    (folder / "service.py").write_text(SERVICE)
    port = free_port()
    result = Session(which)
    with (folder / "server.log").open("ab") as log:
        proc = subprocess.Popen(
            _command(which, port),
            cwd=folder,
            env=child_env(PYTHONDONTWRITEBYTECODE="1"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    client = Client(port, time.monotonic() + reloads * (BOUND + PAUSE) + 60)
    try:
        wait_status(proc, port, "/", timeout=BOUND)
        client.start()
        time.sleep(PAUSE)
        for n in range(1, reloads + 1):
            result.seconds.append(_reload(folder, client, f"v{n}", which))
            time.sleep(PAUSE)
    finally:
        client.stop()
        _stop(proc, result)
    result.failed, result.answered = dict(client.failed), client.answered
    return result


def _reload(folder: Path, client: Client, version: str, which: str) -> float:
    wrote = time.monotonic()
    _write(folder, version)
    seen = client.wait_for(f'"{version}"', BOUND)
    if seen is None:
        log = (folder / "server.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{which}: {version} not served within {BOUND:g} s:\n{log}")
    return seen - wrote


def measure(reloads: int, second_round_if: float) -> list[list[Session]]:
    """One round (ours, then uvicorn's); a second in the other order if the first was quick."""
    rounds: list[list[Session]] = []
    began = time.monotonic()
    with temp_folder("dev") as tmp:
        rounds.append([session(which, reloads, tmp) for which in SERVERS])
        if time.monotonic() - began < second_round_if:
            rounds.append([session(which, reloads, tmp) for which in reversed(SERVERS)])
    return rounds


def _of(rounds: list[list[Session]], which: str) -> list[Session]:
    return [s for r in rounds for s in r if s.server == which]


def run(quick: bool) -> Result:
    reloads = 5 if quick else RELOADS
    rounds = measure(reloads, 0.0 if quick else SECOND_ROUND_IF)
    ours, theirs = (_of(rounds, which) for which in SERVERS)
    ours_s = [x for s in ours for x in s.seconds]
    theirs_s = [x for s in theirs for x in s.seconds]
    res = Result()
    save = Figure(
        "dev",
        f"save to first new response, `framework dev` / `uvicorn --reload` (median of "
        f"{len(ours_s)} reloads: {reloads} per server and round)",
        "s",
        median(ours_s),
        median(theirs_s),
        "`uvicorn --reload`, the same FastAPI app",
        f"≤ 1.0{TIMES}",
        runs=ours_s,
        baseline_runs=theirs_s,
        miss_note=MISS_SAVE,
    )
    save.met = save.ratio is not None and save.ratio <= 1.0
    worst, worst_theirs = max(s.failures for s in ours), max(s.failures for s in theirs)
    failed = Figure(
        "dev",
        f"failed requests during {reloads} reloads under a client loop: `framework dev` "
        f"(worst of {len(rounds)}; baseline `uvicorn --reload`)",
        "count",
        worst,
        worst_theirs,
        "`uvicorn --reload`, the same client loop",
        "0",
        runs=[s.failures for s in ours],
        baseline_runs=[s.failures for s in theirs],
    )
    failed.met = worst == 0 and all(s.exit_code == 0 and s.left == 0 for s in ours)
    res.figures += [save, failed]
    res.details.append(_details(reloads, rounds))
    res.notes.append(NOTE)
    res.data = {"rounds": [[vars(s) for s in r] for r in rounds]}
    return res


def _details(reloads: int, rounds: list[list[Session]]) -> str:
    rows = [
        "| round | server | save to first new response: median (min-max) | failed requests "
        "| answered | exit code, processes left |",
        "|---|---|---|---|---|---|",
    ]
    for i, sessions in enumerate(rounds, 1):
        for s in sessions:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(s.failed.items())) or "none"
            rows.append(
                f"| {i} | `{s.server}` | {median(s.seconds) * 1000:.0f} ms "
                f"({min(s.seconds) * 1000:.0f}-{max(s.seconds) * 1000:.0f}) "
                f"| {s.failures} ({kinds}) | {s.answered:,} | {s.exit_code}, {s.left} |"
            )
    return (
        f"**The development loop** ({reloads} edits of `api.py` per server and round, "
        f"{PAUSE:g} s apart; a keep-alive client asking `GET /` every {PACE * 1000:g} ms):\n\n"
        + "\n".join(rows)
    )


NOTE = (
    "Development loop: `framework dev` starts the new code in a new process on the same sockets "
    "and stops the old one once the new one is ready, so the old code answers meanwhile; "
    "`uvicorn --reload` stops the old process first, then starts the new one, and requests wait "
    "in the listen backlog (held by its reloader) in between. Both watch with watchfiles."
)

MISS_SAVE = (
    "Where a reload of `framework dev` goes: 100-150 ms from the write to the change seen "
    "(watchfiles' 50 ms step, then 50 ms more for the set of the other watcher: the project's "
    "root is watched flat and its folders in depth), 550-750 ms for the new process to start and "
    "import (beside uvicorn and the app: dependency-injector and the configuration loader, "
    "~120 ms), ~35 ms to start its services, ~20 ms to the first new answer once the old process "
    "is stopped. `uvicorn --reload` looks for changes every 0.25 s and stops the old process "
    "before it starts the new one, which imports uvicorn and the app only."
)


if __name__ == "__main__":  # pragma: no cover - a quick look: python -m bench.dev
    for r in measure(3, 0.0):
        for s in r:
            print(s)
