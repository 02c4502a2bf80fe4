"""`simulate_termination`: ``framework simulate kubernetes`` from a test.

```python
from framework.testing import simulate_termination

def test_a_rolling_update_loses_nothing():
    report = simulate_termination("acme_orders.app:App", endpoint_lag=2.0)
    assert report.ok, report.text()
```
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from framework._cli.kubelet import SimulationReport

__all__ = ("simulate_termination",)


def simulate_termination(
    target: str,
    *,
    config_dir: Path | str | None = None,
    env: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    sets: Sequence[str] = (),
    clients: int = 4,
    endpoint_lag: float = 2.0,
    pre_stop: float = 0.0,
    grace: float | None = None,
    workers: int | None = None,
    path: str | None = None,
) -> SimulationReport:
    """Run ``target`` (``module:App``) in a subprocess and delete its pod as Kubernetes would.

    The same knobs as ``framework simulate kubernetes``; ``overrides`` are settings by dotted key
    (as for `run_app`), passed on as ``--set`` options after ``sets``. Returns the report: ``sent``,
    ``answered``, ``failed``, ``unanswered``, ``exit_code``, ``sigkill``, ``timeline``, ``ok``
    (every request answered, no SIGKILL) and ``text()``. Raises `framework.ConfigError` for a bad
    target, setting or knob and ``SimulationError`` when the application never gets ready.
    """
    # imported here: the command line's modules are for this function only (import time)
    from framework._cli.commands import load_target
    from framework._cli.simulate import run_simulation

    all_sets = [*sets, *(f"{key}={json.dumps(value)}" for key, value in (overrides or {}).items())]
    return run_simulation(
        load_target(target),
        target,
        config_dir=Path(config_dir) if config_dir is not None else None,
        env=env,
        sets=all_sets,
        clients=clients,
        endpoint_lag=endpoint_lag,
        pre_stop=pre_stop,
        grace=grace,
        workers=workers,
        path=path,
    )
