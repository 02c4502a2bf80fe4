"""The `framework` command's own exit: quick, yet atexit handlers and non-daemon threads honoured."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

from tests import _process

APP = textwrap.dedent(
    """
    import atexit
    import threading
    import time
    from pathlib import Path

    from dependency_injector import containers, providers

    from framework import Application, Service

    HERE = Path(__file__).parent


    def _late() -> None:
        time.sleep(0.5)
        (HERE / "thread.txt").write_text("finished")


    class Marker(Service):
        async def start(self) -> None:
            if (HERE / "with-thread").exists():
                threading.Thread(target=_late, daemon=False).start()
            (HERE / "journal.txt").write_text("ready\\n")


    class Container(containers.DeclarativeContainer):
        marker = providers.Singleton(Marker)


    class App(Application):
        container_class = Container


    atexit.register(lambda: (HERE / "atexit.txt").write_text("ran"))
    """
)


def _run_and_stop(tmp_path: Path) -> tuple[int, str]:
    (tmp_path / "exitapp.py").write_text(APP)
    proc = _process.spawn(tmp_path, "run", "exitapp:App")
    _process.wait_for(tmp_path / "journal.txt", "ready")
    proc.send_signal(signal.SIGTERM)
    return _process.finish(proc)


def test_run_ends_right_after_its_last_line_and_atexit_handlers_still_run(tmp_path: Path) -> None:
    """After SIGTERM: exit 0, the last line on stderr is `exit code 0`, and the application's
    atexit handler ran (the process ends without the interpreter's teardown, not without those)."""
    code, err = _run_and_stop(tmp_path)
    assert code == 0, err
    assert err.strip().splitlines()[-1].startswith("exit code 0"), err
    assert (tmp_path / "atexit.txt").read_text() == "ran"


def test_a_non_daemon_thread_still_running_is_waited_for(tmp_path: Path) -> None:
    """A non-daemon thread still running at the end keeps the usual exit: it finishes first."""
    (tmp_path / "with-thread").touch()
    code, err = _run_and_stop(tmp_path)
    assert code == 0, err
    assert (tmp_path / "thread.txt").read_text() == "finished"
    assert (tmp_path / "atexit.txt").read_text() == "ran"
