"""`framework simulate kubernetes` and `framework.testing.simulate_termination`: a real subprocess,
real keep-alive clients on 127.0.0.1, real SIGTERM and SIGKILL."""

from __future__ import annotations

import json
import math

import pytest

from framework.testing import simulate_termination
from tests._process import REPO, run_cli, with_sets

TARGET = "tests.simulate_apps:App"
QUIET = ('logging.level="WARNING"',)


def simulate(*args: str) -> tuple[int, dict]:
    """The CLI with --json: its exit code and its report."""
    result = run_cli(REPO, "simulate", "kubernetes", TARGET, "--json", *args, timeout=90)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


@pytest.mark.slow
def test_a_delay_longer_than_the_endpoint_lag_loses_nothing() -> None:
    """lag 2 s, shutdown_delay 3 s: every request answered, no SIGKILL, exit 0; the default grace
    period is the smallest `framework check` accepts, ceil(shutdown_timeout + 2)."""
    sets = with_sets(*QUIET, "lifecycle.shutdown_delay=3", "lifecycle.shutdown_timeout=8.5")
    code, report = simulate("--endpoint-lag", "2", *sets)
    assert code == 0, report
    assert report["sent"] > 0
    assert report["answered"] == report["sent"]
    assert report["failed"] == report["unanswered"] == 0
    assert report["exit_code"] == 0 and report["sigkill"] is False and report["ok"] is True
    assert report["knobs"]["grace"] == math.ceil(8.5 + 2)
    events = [e["event"] for e in report["timeline"]]
    assert events[1] == "SIGTERM"
    assert any(e.startswith("out of the endpoints") for e in events)


@pytest.mark.slow
def test_a_pre_stop_sleep_delays_sigterm_and_loses_nothing() -> None:
    """--pre-stop 1.5: SIGTERM comes no sooner than 1.5 s after the deletion, the lag counts from
    SIGTERM, the default grace period adds the sleep, ceil(8 + 2 + 1.5) = 12; with the delay over
    the lag every request is answered and the process exits 0 on its own."""
    sets = with_sets(*QUIET, "lifecycle.shutdown_delay=2", "lifecycle.shutdown_timeout=8")
    code, report = simulate("--endpoint-lag", "1", "--pre-stop", "1.5", *sets)
    assert code == 0, report
    assert report["knobs"]["pre_stop"] == 1.5
    assert report["knobs"]["grace"] == math.ceil(8 + 2 + 1.5)
    at = {e["event"].split(" (")[0]: e["t"] for e in report["timeline"]}
    assert at["SIGTERM"] >= 1.5
    assert at["out of the endpoints"] >= at["SIGTERM"] + 1.0
    assert at["process exited with 0"] >= at["SIGTERM"] + 2.0
    assert report["answered"] == report["sent"] > 0
    assert report["failed"] == report["unanswered"] == 0
    assert report["exit_code"] == 0 and report["sigkill"] is False and report["ok"] is True


@pytest.mark.slow
def test_no_delay_reports_what_a_cluster_would_drop_and_fails() -> None:
    """shutdown_delay 0 under a 2 s lag: the process exits at once, the requests still routed to
    it are refused; they count as failed, and the simulator exits 1 saying so."""
    sets = with_sets(*QUIET, "lifecycle.shutdown_delay=0", "lifecycle.shutdown_timeout=8")
    result = run_cli(REPO, "simulate", "kubernetes", TARGET, "--endpoint-lag", "2", *sets)
    assert result.returncode == 1, result.stderr
    assert "SIGKILL needed: no" in result.stdout
    assert "x connection refused" in result.stdout
    assert "outcome: requests lost or process killed" in result.stdout
    assert "first request lost" in result.stdout


@pytest.mark.slow
def test_a_stop_that_hangs_past_the_grace_period_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop stuck in synchronous code for 30 s, a 2 s grace period: the simulator's kubelet
    sends SIGKILL at 2 s and the report (from the public function) says so and is not ok."""
    monkeypatch.chdir(REPO)
    report = simulate_termination(
        TARGET,
        overrides={"hang.seconds": 30, "lifecycle.shutdown_timeout": 5, "logging.level": "WARNING"},
        clients=2,
        endpoint_lag=0.5,
        grace=2,
    )
    assert report.sigkill is True
    assert report.exit_code is None
    assert report.ok is False
    assert "SIGKILL (grace period 2 s)" in report.text()


@pytest.mark.slow
def test_two_workers_lose_nothing_either() -> None:
    """--workers 2 (a supervisor and two worker processes on one socket): with the delay over
    the lag, the same figures: everything answered, no SIGKILL."""
    sets = with_sets(*QUIET, "lifecycle.shutdown_delay=3", "lifecycle.shutdown_timeout=8")
    code, report = simulate("--endpoint-lag", "2", "--workers", "2", *sets)
    assert code == 0, report
    assert report["answered"] == report["sent"] > 0
    assert report["sigkill"] is False


@pytest.mark.slow
def test_bad_knobs_are_one_clear_error() -> None:
    """Knobs out of range: exit 78, each option named with what it takes, no traceback."""
    result = run_cli(
        REPO, "simulate", "kubernetes", TARGET, "--clients", "0", "--endpoint-lag", "-1"
    )
    assert result.returncode == 78
    assert "--clients 0: expected a whole number from 1 to 64" in result.stderr
    assert "--endpoint-lag -1.0: expected seconds from 0 to 600" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_check_accepts_exactly_the_grace_period_the_watchdog_needs() -> None:
    """One formula: `check --grace-period` accepts shutdown_timeout + 2 s (the delay counts
    inside the timeout) and warns just below it."""
    sets = with_sets("lifecycle.shutdown_delay=5", "lifecycle.shutdown_timeout=20")
    fits = run_cli(REPO, "check", TARGET, *sets, "--grace-period", "22", "--strict")
    assert fits.returncode == 0, fits.stderr
    short = run_cli(REPO, "check", TARGET, *sets, "--grace-period", "21.9", "--strict")
    assert short.returncode == 78
    assert "set the grace period to at least 22 s" in short.stderr
