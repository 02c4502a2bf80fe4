"""The example service `make run` starts: HTTP + SQLite + a worker, every lifecycle feature on show."""
