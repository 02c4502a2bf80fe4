"""The machine line and the Markdown page (``docs/benchmarks.md``) made from the results."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from typing import Any

from bench._common import TIMES

PACKAGES = (
    "anyio",
    "uvicorn",
    "h11",
    "dependency-injector",
    "loguru",
    "pydantic",
    "pydantic-settings",
    "starlette",
    "sqlalchemy",
    "trio",
)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=5)
        versions["wrk"] = (wrk.stdout + wrk.stderr).split()[1]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        versions["wrk"] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "packages": versions,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit == "µs":
        return f"{value / 1000:.0f} ms"
    if unit in ("count", "lines"):
        return f"{value:.0f}"
    return f"{value:,.0f} {unit}"


def _met(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "**no**")


def render(results: dict[str, Any], order: list[str]) -> str:
    m = results["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    lines = [
        "# Benchmarks",
        "",
        "Measured by `make bench` (`python -m bench`; `python -m bench --quick` for fewer runs, "
        f"`python -m bench NAME...` for some of: {', '.join(f'`{n}`' for n in order)}). Each run "
        "rewrites this page; the raw figures, every run of each, are in `bench/results.json`.",
        "",
        f"**Machine:** {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['implementation']} {m['python']}, {m['os']}; {packages}. {m['date']}"
        + (f"; whole run {results['duration_s']:.0f} s" if results.get("duration_s") else "")
        + (" (quick run: fewer repetitions)." if results.get("quick") else "."),
        "",
        "The machine's cores are shared and noisy: every figure is set against a baseline measured "
        "in the same run, in alternating order, and is the median of several runs (a ratio is the "
        "median of the per-run ratios). Counts (requests or lines lost) are the worst run.",
        "",
        "| figure | ours | baseline | ratio | goal | met? |",
        "|---|---|---|---|---|---|",
    ]
    benches = results["benches"]
    stale = []
    for name in order:
        bench = benches.get(name)
        if bench is None:
            continue
        if bench.get("error"):
            lines.append(f"| {name}: failed to run: {bench['error']} | — | — | — | — | **no** |")
            continue
        if bench.get("measured_at") != m["date"]:
            stale.append(f"`{name}` ({bench.get('measured_at')})")
        for f in bench["figures"]:
            base = fmt(f["baseline"], f["unit"])
            if f["baseline"] is not None and f["baseline_name"]:
                base += f" ({f['baseline_name']})"
            ratio = "—" if f["ratio"] is None else f"{f['ratio']:.2f}{TIMES}"
            lines.append(
                f"| {f['name']} | {fmt(f['ours'], f['unit'])} | {base} | {ratio} "
                f"| {f['goal'] or '—'} | {_met(f['met'])} |"
            )
    if stale:
        lines += [
            "",
            "Not measured in this run, kept from an earlier one: " + ", ".join(stale) + ".",
        ]
    lines += ["", "## Details", ""]
    for name in order:
        bench = benches.get(name)
        for block in bench.get("details", []) if bench else []:
            lines += [block, ""]
    lines += ["## Notes", ""]
    for name in order:
        bench = benches.get(name)
        for note in bench.get("notes", []) if bench else []:
            lines += [f"- {note}"]
    misses = [
        f
        for name in order
        if name in benches
        for f in benches[name].get("figures", [])
        if f["met"] is False
    ]
    if misses:
        lines += ["", "### Figures that miss their goal", ""]
        for f in misses:
            lines += [
                f"- **{f['name']}** ({fmt(f['ours'], f['unit'])}, goal {f['goal']}): "
                f"{f['miss_note'] or 'not analysed.'}"
            ]
    return "\n".join(lines).rstrip() + "\n"
