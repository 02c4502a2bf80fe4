"""`framework dev`: real processes, real files edited on disk, real signals, HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from framework._process.dev import DevFilter, watch_roots
from tests._http_helpers import Tally, keep_alive_client
from tests._process import framework_env, free_port, run_cli, with_sets

TIMEOUT = 40.0

# The app under development: GET / answers its VERSION, /hello "hello"; the `journal` service
# writes "started PID" and "stopped PID" to journal.txt, so a graceful stop of each version shows.
APP = textwrap.dedent(
    """
    import os
    from pathlib import Path

    from dependency_injector import containers, providers
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from framework import Application, Service, Settings
    from framework.services import HttpService

    VERSION = "one"


    async def version(request):
        return PlainTextResponse(VERSION)


    async def hello(request):
        return PlainTextResponse("hello")


    class Journal(Service):
        async def start(self):
            with open("journal.txt", "a") as f:
                f.write(f"started {os.getpid()} {VERSION}\\n")

        async def stop(self):
            with open("journal.txt", "a") as f:
                f.write(f"stopped {os.getpid()} {VERSION}\\n")


    api = Starlette(routes=[Route("/", version), Route("/hello", hello)])


    class Container(containers.DeclarativeContainer):
        settings = providers.Dependency(instance_of=Settings)
        journal = providers.Singleton(Journal)
        http = providers.Singleton(
            HttpService, app=providers.Object(api), settings=settings.provided.http
        )


    class App(Application):
        container_class = Container
    """
)


class Dev:
    """`python -m framework dev app:App` in ``folder``, its stderr in a file."""

    def __init__(self, folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.port = free_port()
        self.err_path = folder / "stderr.txt"
        sets = with_sets(f"http.port={self.port}", "lifecycle.shutdown_timeout=10")
        with self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "framework", "dev", "app:App", *sets, *args],
                cwd=folder,
                env=framework_env(env),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    @property
    def log(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_logged(self, text: str, count: int = 1) -> None:
        """Until ``text`` is in the log ``count`` times (bounded)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.log.count(text) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged {count} time(s):\n{self.log[-4000:]}")

    def get(self, path: str = "/") -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().read().decode()
        finally:
            conn.close()

    def wait_serving(self, body: str) -> None:
        """Until GET / answers ``body`` (bounded; connection errors while starting retried)."""
        deadline = time.monotonic() + TIMEOUT
        seen = ""
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                seen = self.get()
            except OSError:
                seen = "(no answer)"
            if seen == body:
                return
            time.sleep(0.05)
        raise AssertionError(f"never served {body!r} (last: {seen!r}):\n{self.log[-4000:]}")

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"framework dev did not exit:\n{self.log[-4000:]}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "default.toml").write_text("")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    """Rewrite ``path`` with ``old`` replaced, as an editor saves it."""
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def worker_pids(log: str) -> set[int]:
    return {
        int(line.split("worker ")[1].split()[0])
        for line in log.splitlines()
        if " started (slot" in line
    }


def assert_gone(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"process {pid} is still running")


@pytest.mark.slow
def test_edit_syntax_error_fix_then_sigint(project: Path) -> None:
    """An edit serves the new code; a syntax error keeps the old code serving and prints one short
    error naming app.py and its line; the fix serves; each old version stopped gracefully once the
    next was ready; SIGINT: exit 0 and no worker left."""
    dev = Dev(project)
    try:
        dev.wait_serving("one")
        edit(project / "app.py", 'VERSION = "one"', 'VERSION = "two"')
        dev.wait_serving("two")
        edit(project / "app.py", 'VERSION = "two"', 'VERSION = "three" +')
        dev.wait_logged("old worker(s) keep serving")
        assert dev.get() == "two"
        errors = [line for line in dev.log.splitlines() if "SyntaxError" in line]
        assert len(errors) == 1, dev.log[-4000:]
        assert f"{project / 'app.py'}, line 13" in errors[0], errors
        assert "Traceback" not in dev.log
        edit(project / "app.py", 'VERSION = "three" +', 'VERSION = "four"')
        dev.wait_serving("four")
        dev.wait_logged("rolling restart complete", 2)
        code = dev.stop(signal.SIGINT)
    finally:
        dev.kill()
    assert code == 0, dev.log[-4000:]
    assert_gone(worker_pids(dev.log))
    journal = (project / "journal.txt").read_text().splitlines()
    assert [line.split()[0] + " " + line.split()[2] for line in journal] == [
        "started one",
        "started two",
        "stopped one",
        "started four",
        "stopped two",
        "stopped four",
    ], journal


# The same app with a database: GET /slow writes its VERSION in a transaction that lasts 3 s.
# The endpoint reaches the database through wiring, so the HTTP service depends on it: at a reload
# the old process drains its requests, then drains and disposes its database.
DB_APP = textwrap.dedent(
    """
    import anyio
    from dependency_injector import containers, providers
    from dependency_injector.wiring import Provide, inject
    from sqlalchemy import text
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from framework import Application, Settings
    from framework.services import DatabaseService, HttpService

    VERSION = "one"


    async def version(request):
        return PlainTextResponse(VERSION)


    @inject
    async def slow(request, db: DatabaseService = Provide["db"]):
        async with db.engine.begin() as connection:
            await connection.execute(text("CREATE TABLE IF NOT EXISTS rows (v TEXT)"))
            await anyio.sleep(3)
            await connection.execute(text("INSERT INTO rows VALUES (:v)"), {"v": VERSION})
        return PlainTextResponse("written " + VERSION)


    api = Starlette(routes=[Route("/", version), Route("/slow", slow)])


    class Container(containers.DeclarativeContainer):
        wiring_config = containers.WiringConfiguration(modules=[__name__])
        settings = providers.Dependency(instance_of=Settings)
        db = providers.Singleton(DatabaseService, settings=settings.provided.database)
        http = providers.Singleton(
            HttpService, app=providers.Object(api), settings=settings.provided.http
        )


    class App(Application):
        container_class = Container
    """
)


@pytest.mark.slow
def test_a_reload_drains_the_old_database_and_its_transaction_commits(tmp_path: Path) -> None:
    """A save while a request of the old code is inside its database transaction: the request
    ends 200 with its row committed, the old process drains it before its database is disposed
    (nothing cut off, no connection left checked out), and the new code serves."""
    (tmp_path / "app.py").write_text(DB_APP)
    (tmp_path / "config").mkdir()
    database = tmp_path / "rows.db"
    (tmp_path / "config" / "default.toml").write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{database}"\n'
    )
    dev = Dev(tmp_path)
    answers: list[str] = []
    try:
        dev.wait_serving("one")

        def request_slow() -> None:
            answers.append(dev.get("/slow"))

        slow = threading.Thread(target=request_slow)
        slow.start()
        time.sleep(0.3)  # inside its transaction now
        edit(tmp_path / "app.py", 'VERSION = "one"', 'VERSION = "two"')
        dev.wait_serving("two")
        slow.join(timeout=TIMEOUT)
        dev.wait_logged("database pool disposed")
        code = dev.stop(signal.SIGINT)
    finally:
        dev.kill()
    assert answers == ["written one"], dev.log[-4000:]
    assert code == 0, dev.log[-4000:]
    # the old process: its HTTP service drained the request (which depends on the database, so
    # stops first), then its database was disposed with nothing checked out; then the new one's
    assert dev.log.count("database pool disposed") == 2, dev.log[-4000:]
    assert "request(s) drained, 0 cut off" in dev.log, dev.log[-4000:]
    assert "still checked out" not in dev.log, dev.log[-4000:]
    with sqlite3.connect(database) as connection:
        assert [row[0] for row in connection.execute("SELECT v FROM rows")] == ["one"]


@pytest.mark.slow
def test_a_burst_of_saves_gives_one_reload(project: Path) -> None:
    """Ten files saved in one go (as an editor's "save all" or a checkout): one reload."""
    for n in range(10):
        (project / f"part{n}.py").write_text("X = 0\n")
    dev = Dev(project)
    try:
        dev.wait_serving("one")
        for n in range(10):
            (project / f"part{n}.py").write_text("X = 1\n")
        edit(project / "app.py", 'VERSION = "one"', 'VERSION = "two"')
        dev.wait_serving("two")
        dev.wait_logged("rolling restart complete")
        time.sleep(1.0)  # a second reload, if any, would have begun by now
        log = dev.log
        code = dev.stop(signal.SIGTERM)
    finally:
        dev.kill()
    assert log.count("starting the new code") == 1, log[-4000:]
    assert log.count(" started (slot") == 2, log[-4000:]
    assert code == 0, dev.log[-4000:]
    assert_gone(worker_pids(dev.log))


RELOADS = 20


@pytest.mark.slow
def test_no_request_fails_across_reloads_under_load(project: Path) -> None:
    """Twenty reloads while four keep-alive clients loop on /hello: every request is answered 200,
    and each reload stopped its old worker (one rolling restart completed per save)."""
    dev = Dev(project)
    try:
        dev.wait_serving("one")
        until = time.monotonic() + TIMEOUT * RELOADS
        tallies = [Tally() for _ in range(4)]
        threads = [
            threading.Thread(target=keep_alive_client, args=(dev.port, until, t), daemon=True)
            for t in tallies
        ]
        for thread in threads:
            thread.start()
        for n in range(RELOADS):
            edit(
                project / "app.py",
                f'VERSION = "v{n}"' if n else 'VERSION = "one"',
                f'VERSION = "v{n + 1}"',
            )
            dev.wait_serving(f"v{n + 1}")
            dev.wait_logged("rolling restart complete", n + 1)
        before = sum(t.answered for t in tallies)
        time.sleep(0.3)
        log = dev.log
        code = dev.stop(signal.SIGINT)
        for thread in threads:
            thread.join(TIMEOUT)
    finally:
        dev.kill()
    total = Tally()
    for tally in tallies:
        total.add(tally)
    assert code == 0, dev.log[-4000:]
    assert log.count("rolling restart complete") == RELOADS, log[-4000:]
    assert before > 50, total
    # after SIGINT the listening socket closes: a refused connect then is the end, not a failure
    assert total.lost == 0 and total.unsent == 0, (total, dev.log[-3000:])
    assert set(total.statuses) == {200}, total
    assert_gone(worker_pids(dev.log))


@pytest.mark.slow
def test_an_import_error_on_a_reload_keeps_the_old_code(project: Path) -> None:
    """Once serving, a save that imports a missing module: the old code keeps serving, one short
    line names the error, app.py and its line, no traceback; the fix serves the new code."""
    dev = Dev(project)
    try:
        dev.wait_serving("one")
        edit(project / "app.py", "import os\n", "import os\nimport no_such_module_here\n")
        dev.wait_logged("old worker(s) keep serving")
        assert dev.get() == "one"
        errors = [line for line in dev.log.splitlines() if "no_such_module_here" in line]
        assert len(errors) == 1, dev.log[-4000:]
        assert "No module named 'no_such_module_here'" in errors[0], errors
        assert f"{project / 'app.py'}, line 3" in errors[0], errors
        assert "Traceback" not in dev.log
        edit(project / "app.py", "import no_such_module_here\n", "")
        edit(project / "app.py", 'VERSION = "one"', 'VERSION = "two"')
        dev.wait_serving("two")
        code = dev.stop(signal.SIGINT)
    finally:
        dev.kill()
    assert code == 0, dev.log[-4000:]
    assert_gone(worker_pids(dev.log))


@pytest.mark.slow
def test_a_change_under_a_watch_path_reloads(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`--watch PATH` outside the project: a file changed there (not a .py file) gives one reload,
    and the new code reads it."""
    assets = tmp_path_factory.mktemp("assets")
    (assets / "version.txt").write_text("one\n")
    edit(
        project / "app.py",
        'VERSION = "one"',
        f"VERSION = open({str(assets / 'version.txt')!r}).read().strip()",
    )
    dev = Dev(project, "--watch", str(assets))
    try:
        dev.wait_serving("one")
        (assets / "version.txt").write_text("two\n")
        dev.wait_serving("two")
        dev.wait_logged("rolling restart complete")
        log = dev.log
        code = dev.stop(signal.SIGINT)
    finally:
        dev.kill()
    assert code == 0, dev.log[-4000:]
    assert log.count("starting the new code") == 1, log[-4000:]
    assert_gone(worker_pids(dev.log))


@pytest.mark.slow
def test_bad_configuration_and_failed_start_keep_the_old_code(project: Path) -> None:
    """An invalid configuration file, then a start() that raises: each time the old process keeps
    serving; the next good save serves the new code."""
    dev = Dev(project)
    try:
        dev.wait_serving("one")
        (project / "config" / "default.toml").write_text("[process]\nready_timeout = 'soon'\n")
        dev.wait_logged("old worker(s) keep serving")
        assert dev.get() == "one"
        (project / "config" / "default.toml").write_text("")
        edit(
            project / "app.py",
            "async def start(self):\n",
            "async def start(self):\n        raise RuntimeError('no database')\n",
        )
        dev.wait_logged("old worker(s) keep serving", 2)
        assert dev.get() == "one"
        edit(project / "app.py", "        raise RuntimeError('no database')\n", "")
        edit(project / "app.py", 'VERSION = "one"', 'VERSION = "two"')
        dev.wait_serving("two")
        code = dev.stop(signal.SIGTERM)
    finally:
        dev.kill()
    assert code == 0, dev.log[-4000:]
    assert "process.ready_timeout: 'soon' is invalid" in dev.log
    assert "no database" in dev.log


@pytest.mark.slow
def test_a_broken_first_start_waits_for_the_fix(project: Path) -> None:
    """The code does not import when `framework dev` starts: the error names app.py and its line,
    nothing serves, and the fix starts it; SIGINT while waiting exits 0."""
    edit(project / "app.py", "import os\n", "import os\nimport no_such_module_here\n")
    dev = Dev(project)
    try:
        dev.wait_logged("waiting for a change")
        assert f"{project / 'app.py'}, line 3" in dev.log, dev.log
        edit(project / "app.py", "import no_such_module_here\n", "")
        dev.wait_serving("one")
        code = dev.stop(signal.SIGINT)
    finally:
        dev.kill()
    assert code == 0, dev.log[-4000:]
    assert_gone(worker_pids(dev.log))


@pytest.mark.slow
def test_without_watchfiles_the_error_names_the_extra(tmp_path: Path) -> None:
    """With watchfiles not importable, `framework dev` is one line naming the install, exit 78."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "watchfiles.py").write_text("raise ImportError('not installed')\n")
    (tmp_path / "app.py").write_text(APP)
    repo = framework_env()["PYTHONPATH"]
    result = run_cli(tmp_path, "dev", "app:App", env={"PYTHONPATH": f"{shadow}{os.pathsep}{repo}"})
    assert result.returncode == 78, result.stderr
    assert "pip install 'framework[dev-loop]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_what_is_watched(tmp_path: Path) -> None:
    """Python files under the project, the configuration folder, .env and --watch paths count;
    virtual environments (whatever their name), .git, caches, bytecode and swap files do not, and
    no virtual environment is walked by the watcher."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "config").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "myenv").mkdir()
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".git").mkdir()
    accept = DevFilter(tmp_path, tmp_path / "config", [tmp_path / "templates"])
    root = tmp_path.resolve()
    for path in (
        "app.py",
        "pkg/mod.py",
        "config/default.toml",
        "config/prod.toml",
        ".env",
        "templates/page.html",
    ):
        assert accept(str(root / path)), path
    for path in (
        "myenv/lib/python3.11/site-packages/x.py",
        ".venv/lib/x.py",
        ".git/index",
        "pkg/__pycache__/mod.cpython-311.pyc",
        ".mypy_cache/x.py",
        "pkg/.mod.py.swp",
        "pkg/mod.py~",
        "notes.txt",
        "build/lib/app.py",
    ):
        assert not accept(str(root / path)), path
    flat, deep = watch_roots(tmp_path, tmp_path / "config", [tmp_path / "templates"])
    assert flat == [root]
    assert sorted(p.name for p in deep) == ["config", "pkg", "templates"]
