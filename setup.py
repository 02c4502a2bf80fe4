"""Build step: ship ``app_template/`` inside the package as ``framework/_app_template``.

``app_template/`` stays the one place the template is edited; every non-editable build (wheel,
``pip install <path>``, sdist then wheel) copies it into the built package, so ``framework new``
works from any installation. Editable installs read it from the source tree instead.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATE = Path(__file__).resolve().parent / "app_template"


class BuildPyWithTemplate(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "framework" / "_app_template"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(TEMPLATE, target, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))


setup(cmdclass={"build_py": BuildPyWithTemplate})
