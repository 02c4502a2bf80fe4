"""An application module that takes its time to import (a big dependency tree on a loaded
machine): it writes ``importing`` to the file named by ``SLOW_IMPORT_MARK``, then sleeps; with
``SLOW_IMPORT_WHEN`` set, only once the file it names exists (a later worker's import)."""

from __future__ import annotations

import os
import time
from pathlib import Path

_when = os.environ.get("SLOW_IMPORT_WHEN")
if _when is None or Path(_when).exists():
    Path(os.environ["SLOW_IMPORT_MARK"]).write_text("importing", encoding="utf-8")
    time.sleep(float(os.environ.get("SLOW_IMPORT_SECONDS", "30")))

from tests.sample_apps import App  # noqa: E402

__all__ = ("App",)
