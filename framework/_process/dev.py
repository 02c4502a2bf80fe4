"""The development loop: ``framework dev`` runs the application and rolls it on every saved change.

`develop` is the supervisor (`framework._process.supervisor`) with one worker and a file watcher
(watchfiles) in a daemon thread. A change asks the supervisor for a rolling restart, the one SIGHUP
gives: the new code starts in a new process on the same sockets and the old process is stopped
gracefully only once the new one is ready (its requests served, its database drained and closed).
A new process that fails (a syntax error, an import error, an invalid configuration, a failed
start) prints its own short error and is discarded; the old one keeps serving and the next change
tries again. Changes that come together (an editor saving many files, ``git checkout``) are
grouped by watchfiles into one set, and changes seen while a restart runs give one more restart.

What is watched (`watch_roots`, `DevFilter`): the ``*.py`` files under the current directory, every
file of the configuration directory and ``.env``, and every file under each ``--watch`` path. Never
anything inside a virtual environment, ``.git``, caches or build output: they change without the
code changing (and a virtual environment is thousands of folders to watch).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from framework._process.supervisor import Supervisor
    from framework._runtime.application import Application

__all__ = ("IGNORED_DIRS", "DevFilter", "develop", "wait_for_change", "watch_roots")

# Folder names never looked into: version control, virtual environments, caches, build output.
IGNORED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".idea",
        ".vscode",
        "node_modules",
        "site-packages",
        "build",
        "dist",
        ".eggs",
    }
)
# File names that are an editor's or a tool's, never the code (swap files, backups, bytecode).
_IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", ".swx", ".swo", "~", ".tmp")
# watchfiles groups changes until none came for STEP ms (at most DEBOUNCE ms): one burst, one set.
STEP_MS = 50
DEBOUNCE_MS = 1600
# How long the watcher waits in watchfiles before it looks at its stop event again.
RUST_TIMEOUT_MS = 500


def _is_venv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def _ignored_dir(path: Path) -> bool:
    return path.name in IGNORED_DIRS or path.name.endswith(".egg-info") or _is_venv(path)


class DevFilter:
    """Which changed paths restart the application (see the module docstring)."""

    def __init__(self, root: Path, config_dir: Path, extra: Sequence[Path]) -> None:
        self.root = root.resolve()
        self.config_dir = config_dir.resolve()
        self.extra = [p.resolve() for p in extra]
        self._venvs: dict[Path, bool] = {}

    def __call__(self, path: str | Path) -> bool:
        path = Path(path)
        if path.name.endswith(_IGNORED_SUFFIXES) or path.name.startswith(".#"):
            return False
        if any(self._skip(parent) for parent in path.parents):
            return False
        if any(path == p or p in path.parents for p in (*self.extra, self.config_dir)):
            return True
        if path == self.root / ".env":
            return True
        return path.suffix == ".py" and self.root in path.parents

    def _skip(self, folder: Path) -> bool:
        if folder.name in IGNORED_DIRS or folder.name.endswith(".egg-info"):
            return True
        if folder not in self._venvs:
            self._venvs[folder] = _is_venv(folder)
        return self._venvs[folder]


def watch_roots(
    root: Path, config_dir: Path, extra: Sequence[Path]
) -> tuple[list[Path], list[Path]]:
    """(folders watched alone, paths watched with all below them).

    The current directory is watched alone (its own files), each of its folders that is not ignored
    with everything below it, so that a virtual environment inside the project is never walked.
    """
    root = root.resolve()
    deep = [p for p in sorted(root.iterdir()) if p.is_dir() and not _ignored_dir(p)]
    for path in (config_dir.resolve(), *(p.resolve() for p in extra)):
        if path.exists() and path != root and not any(d == path or d in path.parents for d in deep):
            deep.append(path)
    return [root], deep


class Watcher:
    """Daemon threads running watchfiles over the roots; ``on_change`` gets each burst's paths.

    The two watchers (the current directory alone, its folders in depth) feed one queue, read by
    one thread that takes what arrives within `STEP_MS` of a change as the same burst.
    """

    def __init__(self, roots: tuple[list[Path], list[Path]], accept: Callable[[str], bool]) -> None:
        self.roots = roots
        self.accept = accept
        self.stop = threading.Event()
        self._queue: queue.SimpleQueue[list[str]] = queue.SimpleQueue()

    def start(self, on_change: Callable[[list[str]], None]) -> None:
        flat, deep = self.roots
        for paths, recursive in ((flat, False), (deep, True)):
            if paths:
                self._thread(self._watch, paths, recursive)
        self._thread(self._dispatch, on_change)

    def _thread(self, target: Callable[..., None], *args: object) -> None:
        threading.Thread(target=target, args=args, name="framework-dev-watch", daemon=True).start()

    def _watch(self, paths: list[Path], recursive: bool) -> None:
        import logging

        from watchfiles import watch

        # its "N changes detected" at INFO would say again what the dev loop says
        logging.getLogger("watchfiles").setLevel(logging.WARNING)
        for changes in watch(
            *paths,
            watch_filter=lambda _change, path: self.accept(path),
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            stop_event=self.stop,
            rust_timeout=RUST_TIMEOUT_MS,
            recursive=recursive,
            ignore_permission_denied=True,
        ):
            if changes:
                self._queue.put([path for _, path in changes])

    def _dispatch(self, on_change: Callable[[list[str]], None]) -> None:
        while not self.stop.is_set():
            try:
                paths = set(self._queue.get(timeout=RUST_TIMEOUT_MS / 1000))
            except queue.Empty:
                continue
            with contextlib.suppress(queue.Empty):
                while True:
                    paths.update(self._queue.get(timeout=STEP_MS / 1000))
            if not self.stop.is_set():
                on_change(sorted(paths))


def _describe(paths: Iterable[str], root: Path) -> str:
    names = []
    for path in paths:
        try:
            names.append(str(Path(path).relative_to(root)))
        except ValueError:
            names.append(path)
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def develop(
    app: Application,
    command: Sequence[str],
    *,
    config_dir: Path,
    extra: Sequence[Path] = (),
) -> tuple[int, bool]:
    """Supervise one worker running ``command``, rolled on each change; (exit code, stopped).

    ``stopped`` is False when the first worker failed before it was ready: the caller waits for a
    change and starts again (`wait_for_change`).
    """
    from loguru import logger

    from framework._process.supervisor import supervise

    root = Path.cwd().resolve()
    log = logger.bind(logger_name="framework._process.dev")
    watcher = Watcher(watch_roots(root, config_dir, extra), DevFilter(root, config_dir, extra))
    state: dict[str, Supervisor] = {}

    def on_change(paths: list[str]) -> None:
        log.info(f"dev: {_describe(paths, root)} changed: starting the new code")
        state["supervisor"].request_reload()

    def prepare(supervisor: Supervisor) -> None:
        state["supervisor"] = supervisor
        watcher.start(on_change)

    try:
        code = supervise(app, command, workers=1, prepare=prepare)
    finally:
        watcher.stop.set()
    supervisor = state.get("supervisor")
    return code, supervisor is None or supervisor.stop_signal is not None


def wait_for_change(root: Path, config_dir: Path, extra: Sequence[Path]) -> bool:
    """Block until a watched file changes (True) or SIGINT/SIGTERM arrives (False)."""
    import signal

    watcher = Watcher(watch_roots(root, config_dir, extra), DevFilter(root, config_dir, extra))
    changed = threading.Event()
    got_signal = threading.Event()

    def on_signal(number: int, frame: object) -> None:
        got_signal.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        watcher.start(lambda paths: changed.set())
        while not (changed.is_set() or got_signal.is_set()):
            changed.wait(0.1)
    finally:
        watcher.stop.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return changed.is_set() and not got_signal.is_set()


def restart_command() -> list[str]:
    """The command line this process was started with (to start afresh after a change)."""
    import sys

    return list(sys.orig_argv) or [sys.executable, *sys.argv]


def exec_again() -> None:
    """Replace this process with a fresh start of the same command: every module imported anew."""
    import sys

    argv = restart_command()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *argv[1:]])  # noqa: S606 (this same command)
