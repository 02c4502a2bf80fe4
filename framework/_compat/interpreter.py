"""The interpreter's private parts the framework uses, and why.

- ``atexit._run_exitfuncs``: the command line ends its process with ``os._exit`` once a command
  is over, its atexit handlers run and its streams flushed. The interpreter's own teardown
  (clearing every module, a last collector pass over the whole heap) takes 0.1-0.4 s after a
  server's last log line and does nothing a finished command needs. Every CPython the framework
  supports has this function (``tests/test_compat.py`` checks the one it runs on); where it is
  missing (another interpreter, a later CPython), `run_exit_handlers` says so and the caller exits
  the usual way: slower, nothing skipped.

No version range is checked here: ``pyproject.toml``'s ``requires-python`` is the interpreter's,
and each reach is looked up when used, with the ordinary way out when it is not there.
"""

from __future__ import annotations

import atexit

__all__ = ("run_exit_handlers",)


def run_exit_handlers() -> bool:
    """Run the atexit handlers now (each once: they are unregistered as they run); False when
    this interpreter has no way to, and nothing was run."""
    run = getattr(atexit, "_run_exitfuncs", None)
    if not callable(run):
        return False
    run()
    return True
