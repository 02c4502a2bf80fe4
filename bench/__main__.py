"""``python -m bench [--quick] [NAME...]``: run the benchmarks, write the results and the page."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import dev, http, idle_exit, logs, overhead, ready, shutdown, startup, telemetry
from bench._common import ROOT, Result
from bench.report import fmt, machine, render

BENCHES: dict[str, Callable[[bool], Result]] = {
    "startup": startup.run,
    "overhead": overhead.run,
    "shutdown": shutdown.run,
    "http": http.run,
    "logs": logs.run,
    "ready": ready.run,
    "exit": idle_exit.run,
    "telemetry": telemetry.run,
    "dev": dev.run,
}
RESULTS = ROOT / "bench" / "results.json"
PAGE = ROOT / "docs" / "benchmarks.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHES)}"
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    names = args.names or list(BENCHES)

    previous: dict[str, Any] = {}
    if RESULTS.exists() and set(names) != set(BENCHES):
        try:
            previous = json.loads(RESULTS.read_text())["benches"]
        except (ValueError, KeyError):
            previous = {}
    info = machine()
    began = time.monotonic()
    benches: dict[str, Any] = {k: v for k, v in previous.items() if k in BENCHES}
    failed = False
    for name in names:
        print(f"[bench] {name} ...", flush=True)
        t0 = time.monotonic()
        try:
            result = BENCHES[name](args.quick)
        except Exception as exc:
            traceback.print_exc()
            failed = True
            benches[name] = {"error": f"{type(exc).__name__}: {exc}", "measured_at": info["date"]}
            continue
        seconds = time.monotonic() - t0
        benches[name] = {
            "figures": [f.to_json() for f in result.figures],
            "details": result.details,
            "notes": result.notes,
            "data": result.data,
            "duration_s": seconds,
            "quick": args.quick,
            "measured_at": info["date"],
        }
        for f in result.figures:
            ratio = "" if f.ratio is None else f"  ratio {f.ratio:.3f}"
            met = {None: "", True: "  met", False: "  MISSED"}[f.met]
            print(
                f"  {f.name}: {fmt(f.ours, f.unit)} vs {fmt(f.baseline, f.unit)}{ratio}{met}",
                flush=True,
            )
        print(f"[bench] {name} done in {seconds:.0f} s", flush=True)
    results = {
        "machine": info,
        "quick": args.quick,
        "duration_s": time.monotonic() - began if set(names) == set(BENCHES) else None,
        "benches": benches,
    }
    RESULTS.write_text(json.dumps(results, indent=1, default=str) + "\n")
    PAGE.write_text(render(results, list(BENCHES)))
    print(f"[bench] wrote {RESULTS.relative_to(ROOT)} and {PAGE.relative_to(ROOT)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
