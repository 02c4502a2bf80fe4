"""After rendering: drop the files of the variants not chosen; write config/default.toml from the
settings models so that every knob is present and commented."""

import math
import os
import sys
from pathlib import Path

DATABASE = "{{ cookiecutter.include_database }}" == "yes"
if not DATABASE:
    for name in ("database.py", "orders.py"):
        Path("{{ cookiecutter.package_name }}", name).unlink()
if DATABASE:  # more than one replica needs a shared database first: not applied with deploy/k8s/
    Path("deploy/k8s/shared-database").mkdir()
    Path("deploy/k8s/hpa.yaml").rename("deploy/k8s/shared-database/hpa.yaml")
if "{{ cookiecutter.web }}" != "fastapi":
    Path("{{ cookiecutter.package_name }}", "endpoints.py").unlink()


def without_section(text: str, section: str) -> str:
    """``text`` without the TOML table ``[section]`` (up to the next table)."""
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("["):
            skipping = line.strip() == f"[{section}]"
        if not skipping:
            kept.append(line)
    return "".join(kept)


sys.path.insert(0, os.getcwd())
from framework._config.defaults import render_defaults  # noqa: E402

from {{ cookiecutter.package_name }}.settings import AppSettings  # noqa: E402

values = AppSettings(
    http={"port": int("{{ cookiecutter.port }}")},
    lifecycle={
        "stop_timeout": 7.0,
        "shutdown_delay": float("{{ cookiecutter.shutdown_delay }}"),
        "shutdown_timeout": float("{{ cookiecutter.shutdown_timeout }}"),
        # = terminationGracePeriodSeconds: shutdown_timeout (the delay counts inside it) + 2 s, rounded up
        "grace_period": float(math.ceil(float("{{ cookiecutter.shutdown_timeout }}") + 2)),
    },
    database={"url": "sqlite+aiosqlite:///./{{ cookiecutter.package_name }}.db"},
)
header = """{{ cookiecutter.project_name }}: every setting, its meaning and its default.
Later sources win: this file < config/<env>.toml < .env < {{ cookiecutter.env_prefix }}* environment variables < --set.
Environment variables nest with __, e.g. {{ cookiecutter.env_prefix }}LIFECYCLE__SHUTDOWN_TIMEOUT=20.
lifecycle.grace_period matches terminationGracePeriodSeconds in deploy/k8s/deployment.yaml."""
text = render_defaults(AppSettings, header, values)
if not DATABASE:  # the app has no database service: no [database] section to puzzle over
    text = without_section(text, "database")
Path("config", "default.toml").write_text(text, encoding="utf-8")
