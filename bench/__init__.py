"""Benchmarks of `framework`: ``python -m bench [--quick] [NAME...]`` (``make bench``).

Every figure is measured against a baseline in the same run, several times, and the median is
reported. Results go to ``bench/results.json`` and ``docs/benchmarks.md``.

This package's ``__init__`` imports nothing: ``bench.asgi`` is served by bare uvicorn, and must not
pull in `framework`.
"""
