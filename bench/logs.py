"""5. Log durability and cost.

Durability: ``framework run bench.apps:LogApp`` with a log file; at shutdown ``burst`` logs 200,000
lines in its ``stop()``. Graceful: one SIGTERM. Forced: once the burst is logged, ``hang``'s stop
never returns (shielded from cancellation), and a second SIGTERM forces the exit (exit code 130).
Every line logged must be in the file, with the file sink written directly and with
``logging.enqueue=true`` (a background thread writes, drained at exit).

Cost: lines/s through the sinks `setup_logging` configures (a file, ``stderr=false``) against
loguru alone with a plain file sink (``logger.add(path)``), in the same process, interleaved.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from loguru import logger

from bench._common import Figure, Result, framework_cmd, median, spawn, workdir
from framework.services._logging import LoggingSettings, setup_logging

LINES = 200_000
_BURST = re.compile(rb"burst line (\d+)")


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


def _durability(tmp: Path, run: int, *, forced: bool, enqueue: bool) -> dict[str, float]:
    tag = f"{'forced' if forced else 'graceful'}-{'enqueue' if enqueue else 'direct'}-{run}"
    log, marker = tmp / f"{tag}.log", tmp / f"{tag}.done"
    cmd = framework_cmd(
        "bench.apps:LogApp",
        f"logging.file={log}",
        "logging.stderr=false",
        f"logging.enqueue={str(enqueue).lower()}",
        f"burst.lines={LINES}",
        f"burst.hang={str(forced).lower()}",
        f"burst.marker={marker}",
        "lifecycle.stop_timeout=120",
        "lifecycle.shutdown_timeout=120",
    )
    proc = spawn(cmd, tmp, tmp / f"{tag}.out")
    try:
        _wait_for(lambda: log.exists() and b"startup complete" in log.read_bytes(), 30, "startup")
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        if forced:
            _wait_for(marker.exists, 120, "the burst")
            time.sleep(0.1)  # hang's stop() is now hanging
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=150)
        seconds = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seen = {int(m.group(1)) for m in _BURST.finditer(log.read_bytes())}
    return {"lost": LINES - len(seen), "exit_code": code, "seconds": seconds}


def _rate_ours(path: Path, n: int) -> float:
    sink = setup_logging(LoggingSettings(file=path, stderr=False))
    t0 = time.perf_counter()
    for i in range(n):
        logger.info("burst line {}", i)
    sink.flush_sync()
    rate = n / (time.perf_counter() - t0)
    logger.remove()
    logger.configure(patcher=None)
    return rate


def _rate_loguru(path: Path, n: int) -> float:
    logger.remove()
    handler = logger.add(path)
    t0 = time.perf_counter()
    for i in range(n):
        logger.info("burst line {}", i)
    logger.remove(handler)
    return n / (time.perf_counter() - t0)


def run(quick: bool) -> Result:
    res = Result()
    durability_runs = 1 if quick else 2
    rate_runs, rate_lines = (2, 30_000) if quick else (5, 100_000)
    lost: dict[tuple[bool, bool], list[dict[str, float]]] = {}
    ours_rates: list[float] = []
    base_rates: list[float] = []
    with workdir("logs") as tmp:
        for r in range(durability_runs):
            for forced in (False, True):
                for enqueue in (False, True):
                    lost.setdefault((forced, enqueue), []).append(
                        _durability(tmp, r, forced=forced, enqueue=enqueue)
                    )
        for r in range(rate_runs):
            for which in ("ours", "loguru") if r % 2 == 0 else ("loguru", "ours"):
                path = tmp / f"rate-{which}-{r}.log"
                if which == "ours":
                    ours_rates.append(_rate_ours(path, rate_lines))
                else:
                    base_rates.append(_rate_loguru(path, rate_lines))
                path.unlink()
    logger.remove()
    logger.add(sys.stderr)  # loguru's default again

    rows = [
        "| exit | sink | lines lost (worst run) | exit code | SIGTERM to exit |",
        "|---|---|---|---|---|",
    ]
    for (forced, enqueue), xs in lost.items():
        kind = "forced (2nd SIGTERM while a stop hangs)" if forced else "graceful (SIGTERM)"
        sink = "file, `enqueue=true`" if enqueue else "file"
        worst = max(int(x["lost"]) for x in xs)
        rows.append(
            f"| {kind} | {sink} | {worst} | {', '.join(str(int(x['exit_code'])) for x in xs)} "
            f"| {median([x['seconds'] for x in xs]):.2f} s |"
        )
        fig = Figure(
            "logs",
            f"log lines lost of {LINES:,} logged at shutdown: {kind}, {sink}",
            "lines",
            worst,
            goal="0",
            runs=[x["lost"] for x in xs],
            miss_note=MISS_LOST,
        )
        fig.met = worst == 0
        res.figures.append(fig)
    fig = Figure(
        "logs",
        "log lines/s: framework-configured file sink / loguru alone (`logger.add(path)`)",
        "lines/s",
        median(ours_rates),
        median(base_rates),
        "loguru alone",
        "(reported)",
        ratio=median([o / b for o, b in zip(ours_rates, base_rates, strict=True)]),
        runs=ours_rates,
        baseline_runs=base_rates,
    )
    res.figures.append(fig)
    res.details.append(
        f"**Log durability** ({LINES:,} lines logged by a service's `stop()`; {durability_runs} "
        f"run(s) each) and cost ({rate_lines:,} lines, {rate_runs} interleaved runs):\n\n"
        + "\n".join(rows)
    )
    res.notes.append(
        "Logs: 'lines lost' counts the distinct line numbers missing from the file after the "
        "process has exited. The forced exit goes through the last-resort path: the hanging stop "
        "ignores cancellation, so the process exits from the watchdog thread half a second after "
        "the second signal, removing (and so draining) the sinks first. With `enqueue=true` the "
        "exit takes longer because loguru sends each record through a multiprocessing pipe to its "
        "writer thread, which has 200,000 records to drain. Throughput compares the "
        "same `logger.info` calls into a file: the framework's text format (a format function, the "
        "secret-masking patcher) against loguru's default format."
    )
    res.data = {
        "durability": {f"forced={f},enqueue={e}": xs for (f, e), xs in lost.items()},
        "rate_ours": ours_rates,
        "rate_loguru": base_rates,
    }
    return res


MISS_LOST = (
    "Lines logged but missing from the file: the sink was not drained before the process "
    "ended (see the exit code and `bench/results.json`)."
)
