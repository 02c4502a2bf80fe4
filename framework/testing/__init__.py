"""Testing kit: run an application in-process, spy on its lifecycle, catch leaks."""

__all__: tuple[str, ...] = ()
