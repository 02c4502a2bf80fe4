"""The HTTP service on real loopback sockets: probes, drain, cut-off, metrics, start errors, SIGTERM.

uvicorn runs on asyncio, so these tests do too (the trio test checks the error that says so).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from dependency_injector import providers
from pydantic import ValidationError

import framework
from framework import Application, ServiceState, StartupError
from framework._engine.events import Outcome
from framework._engine.readiness import AppState
from framework.services import HttpService, HttpSettings
from framework.services._http import HttpServiceError, ListenError, RequestsCutOffError
from tests._process import free_port

from ._http_helpers import SIGTERM_APP, Gate, api, app_class, fetch, wait_until

pytestmark = pytest.mark.anyio

Build = Callable[..., Application]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Build:
    """Make an application around an ASGI app, reading no configuration but ``overrides``."""
    monkeypatch.chdir(tmp_path)

    def build(asgi: Any, overrides: dict[str, Any] | None = None, **services: Any) -> Application:
        cls = app_class(asgi, **services)
        return cls(config_dir=tmp_path, overrides={"http.port": 0, **(overrides or {})})

    return build


ROOT = Path(framework.__file__).resolve().parents[1]


def http_of(app: Application) -> HttpService:
    service = app.container.http()
    assert isinstance(service, HttpService)
    return service


# -- probes ---------------------------------------------------------------------------------------


async def test_probes_answer_200_in_front_of_the_app_when_ready(build: Build) -> None:
    """Once started, /livez and /readyz answer 200 and the app's own routes are served."""
    app = build(api())
    async with app.running():
        http = http_of(app)
        assert http.port != 0
        assert http.url == f"http://127.0.0.1:{http.port}"
        async with httpx.AsyncClient(base_url=http.url) as client:
            livez = await client.get("/livez")
            readyz = await client.get("/readyz")
            hello = await client.get("/hello")
    assert (livez.status_code, readyz.status_code, readyz.json()) == (200, 200, {"status": "ready"})
    assert (hello.status_code, hello.text) == (200, "hello")
    assert app.exit_code == 0


async def test_readyz_is_503_until_every_service_has_started(build: Build) -> None:
    """While another service is still starting, /readyz is 503 and /livez 200; then /readyz is 200."""
    opened, done = anyio.Event(), anyio.Event()
    app = build(api(), gate=providers.Singleton(Gate, opened=providers.Object(opened)))
    http = http_of(app)

    async def run_app() -> None:
        async with app.running():
            await done.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_app)
        await wait_until(lambda: http.state is ServiceState.STARTED, "the http service to start")
        async with httpx.AsyncClient(base_url=http.url) as client:
            starting = await client.get("/readyz")
            livez = await client.get("/livez")
            opened.set()
            await wait_until(lambda: app.readiness.ready, "the application to be ready")
            ready = await client.get("/readyz")
        done.set()
    assert (starting.status_code, starting.json()) == (503, {"status": "starting"})
    assert livez.status_code == 200
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_readyz_details_list_service_names_and_states_only(build: Build) -> None:
    """With readyz_details, /readyz is JSON: the status and each service's state, no settings."""
    opened = anyio.Event()
    opened.set()
    app = build(
        api(),
        {"http.readyz_details": True},
        gate=providers.Singleton(Gate, opened=providers.Object(opened)),
    )
    async with app.running():
        async with httpx.AsyncClient(base_url=http_of(app).url) as client:
            response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "status": "ready",
        "services": {"gate": "started", "http": "started"},
    }


async def test_readyz_turns_503_during_the_shutdown_delay_while_routes_still_answer(
    build: Build,
) -> None:
    """During lifecycle.shutdown_delay /readyz is 503, while /livez and the app still answer 200."""
    app = build(api(), {"lifecycle.shutdown_delay": 1.5})
    seen: dict[str, Any] = {}

    async def probe(client: httpx.AsyncClient, url: str) -> None:
        await wait_until(lambda: app.readiness.state is AppState.SHUTTING_DOWN, "the shutdown")
        for path in ("/readyz", "/livez", "/hello"):
            seen[path] = (await client.get(url + path)).status_code
        seen["http state"] = http_of(app).state  # its stop has not begun: still in the delay

    async with httpx.AsyncClient() as client:
        async with anyio.create_task_group() as tg:
            async with app.running():
                tg.start_soon(probe, client, http_of(app).url)
    assert seen == {
        "/readyz": 503,
        "/livez": 200,
        "/hello": 200,
        "http state": ServiceState.STARTED,
    }


# -- drain on stop --------------------------------------------------------------------------------


async def test_twenty_requests_in_flight_at_shutdown_all_get_200(build: Build) -> None:
    """20 slow requests in flight when the shutdown begins all finish with 200; lifespan runs."""
    journal: list[str] = []
    app = build(api(journal))
    results: list[int | str] = []
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        async with anyio.create_task_group() as tg:
            async with app.running():
                http = http_of(app)
                for _ in range(20):
                    tg.start_soon(fetch, client, f"{http.url}/slow?s=0.5", results)
                await wait_until(lambda: http.in_flight == 20, "20 requests in flight")
            # leaving running() stopped the application while the 20 were in flight
    assert results == [200] * 20
    assert (http.drained, http.cut_off) == (20, 0)
    assert app.exit_code == 0
    assert journal == ["startup", "shutdown"]


async def test_a_request_longer_than_the_stop_bound_is_cut_off_within_the_bound(
    build: Build,
) -> None:
    """A request outrunning services.http.stop_timeout is answered 503 and counted; stop keeps to
    its bound, the app's lifespan shutdown still runs, and the exit code says the stop failed."""
    journal: list[str] = []
    app = build(api(journal), {"services.http.stop_timeout": 2.0})
    results: list[int | str] = []
    async with httpx.AsyncClient(timeout=30) as client:
        async with anyio.create_task_group() as tg:
            async with app.running():
                http = http_of(app)
                tg.start_soon(fetch, client, f"{http.url}/slow?s=60", results)
                await wait_until(lambda: http.in_flight == 1, "the request in flight")
                began = anyio.current_time()
            took = anyio.current_time() - began
    assert results == [503]
    assert (http.drained, http.cut_off) == (0, 1)
    assert took < 2.0 + 3.0  # the bound, and a generous margin for a busy machine; not 60 s
    assert journal == ["startup", "shutdown"]
    assert app.exit_code == 1
    assert app.lifecycle is not None
    record = app.lifecycle.records["http"]
    assert record.stop_outcome is Outcome.FAILED
    assert isinstance(record.errors[-1].cause, RequestsCutOffError)
    assert "services.http.stop_timeout" in str(record.errors[-1])


async def test_a_cancelled_stop_cuts_off_at_once_and_ends_the_server() -> None:
    """When stop() is cancelled (a forced shutdown), requests left are cut off, the server ends at
    once and the lifespan shutdown is skipped; the cancellation goes on."""
    journal: list[str] = []
    http = HttpService(api(journal), HttpSettings(port=0))
    await http.start()
    results: list[int | str] = []
    async with httpx.AsyncClient(timeout=30) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch, client, f"{http.url}/slow?s=60", results)
            await wait_until(lambda: http.in_flight == 1, "the request in flight")
            with anyio.CancelScope() as scope:  # no deadline: only the cancellation ends the drain
                tg.start_soon(_cancel_later, scope, 0.3)
                await http.stop()
        assert scope.cancelled_caught
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{http.url}/hello")
    assert results == [503]
    assert (http.drained, http.cut_off) == (0, 1)
    assert journal == ["startup"]


async def _cancel_later(scope: anyio.CancelScope, seconds: float) -> None:
    await anyio.sleep(seconds)
    scope.cancel()


# -- start errors ---------------------------------------------------------------------------------


async def test_a_port_in_use_is_a_clear_start_error_and_the_app_rolls_back(build: Build) -> None:
    """Starting on a port another socket listens on fails naming host:port; the app rolls back."""
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        app = build(api(), {"http.port": port})
        with pytest.raises(StartupError) as caught:
            async with app.running():
                pytest.fail("started on a port already in use")
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in str(caught.value)
    assert app.exit_code == 1
    assert app.lifecycle is not None
    record = app.lifecycle.records["http"]
    assert isinstance(record.errors[0].cause, ListenError)
    assert isinstance(record.errors[0].cause, OSError)
    assert (record.start_outcome, record.stop_outcome) == (Outcome.FAILED, Outcome.OK)


async def test_a_failed_lifespan_startup_is_a_start_error_and_frees_the_port(build: Build) -> None:
    """If the app's lifespan startup fails, start() says so and the socket is released."""
    app = build(api(fail_startup=True))
    with pytest.raises(StartupError, match="lifespan startup failed"):
        async with app.running():
            pytest.fail("started although the lifespan startup failed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", http_of(app).port))  # free again


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_on_trio_start_fails_saying_to_use_asyncio(build: Build) -> None:
    """On trio the start fails with a message naming the asyncio backend, not a traceback."""
    app = build(api())
    with pytest.raises(StartupError) as caught:
        async with app.running():
            pytest.fail("started on trio")
    assert "HttpService needs the asyncio backend" in str(caught.value)
    assert "backend='asyncio'" in str(caught.value)


async def test_a_server_that_stops_by_itself_shuts_the_application_down(build: Build) -> None:
    """If uvicorn stops serving while the application runs, it is a crash: shutdown, exit 1."""
    app = build(api())
    async with app.running():
        http = http_of(app)
        assert http._server is not None
        http._server.should_exit = True  # what an internal uvicorn failure looks like from outside
        with anyio.fail_after(10):
            await app.wait_for_shutdown()
    assert app.exit_code == 1
    assert app.lifecycle is not None
    errors = app.lifecycle.records["http"].errors
    assert "stopped serving unexpectedly: uvicorn's serve() returned" in str(errors[0])


# -- metrics --------------------------------------------------------------------------------------


async def test_metrics_count_requests_and_show_lifecycle_figures_without_config(
    build: Build,
) -> None:
    """/metrics shows requests in flight, requests by method and status, and lifecycle figures."""
    app = build(api(), {"http.metrics_path": "/metrics"})
    results: list[int | str] = []
    async with app.running():
        http = http_of(app)
        async with httpx.AsyncClient(base_url=http.url) as client:
            for _ in range(3):
                await client.get("/hello")
            await client.get("/missing")
            async with anyio.create_task_group() as tg:
                tg.start_soon(fetch, client, f"{http.url}/slow?s=0.5", results)
                await wait_until(lambda: http.in_flight == 1, "the request in flight")
                during = (await client.get("/metrics")).text
            after = await client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    assert "http_requests_in_flight 1.0" in during
    text = after.text
    assert "http_requests_in_flight 0.0" in text
    assert 'http_requests_total{method="GET",status="200"} 4.0' in text
    assert 'http_requests_total{method="GET",status="404"} 1.0' in text
    assert 'http_request_duration_seconds_count{method="GET"} 5.0' in text
    assert 'framework_app_state{state="ready"} 1.0' in text
    assert 'framework_service_start_seconds{service="http"}' in text
    assert "127.0.0.1" not in text
    assert "host" not in text
    assert "port" not in text


def test_each_service_has_its_own_metrics_registry() -> None:
    """Two services with metrics in one process do not clash; the default registry is untouched."""
    from prometheus_client import REGISTRY

    first = HttpService(api(), HttpSettings(metrics_path="/metrics"))
    second = HttpService(api(), HttpSettings(metrics_path="/metrics"))
    assert first.registry is not None
    assert first.registry is not second.registry
    assert REGISTRY.get_sample_value("http_requests_in_flight") is None
    assert HttpService(api()).registry is None


# -- standalone use and settings ------------------------------------------------------------------


async def test_standalone_any_asgi_app_ready_while_started_and_not_stopping() -> None:
    """Without an application, /readyz is 200 while the service runs; a raw ASGI app is served."""

    async def raw(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"raw"})

    http = HttpService(raw, HttpSettings(port=0))
    assert http.status is AppState.STARTING
    await http.start()
    try:
        async with httpx.AsyncClient(base_url=http.url) as client:
            readyz = await client.get("/readyz")
            body = await client.get("/anything")
    finally:
        await http.stop()
    assert (readyz.status_code, body.text) == (200, "raw")
    assert not http.ready
    await http.stop()  # idempotent


async def test_stop_after_a_start_that_never_began_serving_is_harmless() -> None:
    """stop() tolerates being called without start(), and after a failed start."""
    await HttpService(api()).stop()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        http = HttpService(api(), HttpSettings(port=blocker.getsockname()[1]))
        with pytest.raises(ListenError, match="address already in use"):
            await http.start()
        await http.stop()


def test_settings_and_arguments_are_checked_with_clear_messages() -> None:
    """Probe paths must start with '/'; the app must be an ASGI callable."""
    with pytest.raises(ValidationError, match="must start with '/'"):
        HttpSettings(readyz_path="readyz")
    with pytest.raises(HttpServiceError, match="not an ASGI application"):
        HttpService("main:app")  # type: ignore[arg-type]


async def test_the_docs_example_serves_its_route_and_the_probes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example in docs/http.md runs as written."""
    doc = (ROOT / "docs" / "http.md").read_text(encoding="utf-8")
    found = re.search(r"```python\n(# service\.py\n.*?)```", doc, re.DOTALL)
    assert found, "docs/http.md lost its example"
    (tmp_path / "service.py").write_text(found.group(1), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("docs_http_example", tmp_path / "service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)
    app = module.App(config_dir=tmp_path, overrides={"http.port": 0})
    async with app.running():
        async with httpx.AsyncClient(base_url=http_of(app).url) as client:
            hello = await client.get("/hello")
            readyz = await client.get("/readyz")
    assert hello.json() == {"hello": "world"}
    assert readyz.status_code == 200


# -- a real signal --------------------------------------------------------------------------------


@pytest.mark.slow
async def test_sigterm_with_64_requests_in_flight_answers_every_accepted_one(
    tmp_path: Path,
) -> None:
    """`framework run`, 64 concurrent 0.3 s requests, SIGTERM while in flight: every request the
    app accepted gets 200, the process exits 0, soon after the last response."""
    (tmp_path / "sigterm_app.py").write_text(SIGTERM_APP)
    root = str(ROOT)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "framework",
                "run",
                "sigterm_app:App",
                "--set",
                f"http.port={port}",
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=err,
        )
    try:
        done: list[tuple[int | str, float]] = []
        limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
        async with httpx.AsyncClient(timeout=20, limits=limits) as client:
            await _wait_ready(client, url, proc, stderr)

            async def one() -> None:
                results: list[int | str] = []
                await fetch(client, f"{url}/slow", results)
                done.append((results[0], time.monotonic()))

            async with anyio.create_task_group() as tg:
                for _ in range(64):
                    tg.start_soon(one)
                with anyio.move_on_after(5):  # SIGTERM once all 64 have reached the app
                    for _ in range(500):
                        if int((await client.get(f"{url}/arrivals")).text) >= 64:
                            break
                        await anyio.sleep(0.005)
                sigterm_at = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                code = await anyio.to_thread.run_sync(functools.partial(proc.wait, timeout=30))
                exited_at = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    statuses = [status for status, _ in done]
    answered = [status for status in statuses if isinstance(status, int)]
    succeeded = answered.count(200)
    in_flight = [end for status, end in done if end > sigterm_at]
    served = int(re.findall(r"lifespan shutdown: arrived=(\d+)", stdout.read_text())[-1])
    drained, cut_off = map(int, re.findall(r"drained=(\d+) cut_off=(\d+)", stderr.read_text())[-1])
    report = {
        "sent": len(statuses),
        "accepted": len(answered),
        "succeeded": succeeded,
        "failed": len(answered) - succeeded,
        "not accepted": len(statuses) - len(answered),
        "finished after SIGTERM": len(in_flight),
        "server: drained": drained,
        "server: cut off": cut_off,
        "last response after SIGTERM (s)": round(
            max(in_flight, default=sigterm_at) - sigterm_at, 3
        ),
        "exit after SIGTERM (s)": round(exited_at - sigterm_at, 3),
        "exit code": code,
    }
    print(f"\nSIGTERM with 64 requests in flight: {report}")
    assert code == 0, stderr.read_text()
    assert answered == [200] * len(answered)  # every accepted request got 200
    assert served == succeeded  # every request the app began was answered 200
    assert in_flight, "no request was in flight at SIGTERM: the test proved nothing"
    assert cut_off == 0
    assert exited_at - sigterm_at < 10  # bounded: the default stop bound is 10 s


async def _wait_ready(
    client: httpx.AsyncClient, url: str, proc: subprocess.Popen[bytes], stderr: Path
) -> None:
    with anyio.move_on_after(30):
        while proc.poll() is None:
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await anyio.sleep(0.05)
    pytest.fail(f"the application did not become ready (exit {proc.poll()}):\n{stderr.read_text()}")


@pytest.mark.parametrize("access_log", [True, False])
@pytest.mark.anyio
async def test_access_log_setting_applies_to_this_server(
    build: Build, tmp_path: Path, access_log: bool
) -> None:
    """`http.access_log=false` silences this server's access lines, without touching the shared
    "uvicorn.access" logger."""
    log = tmp_path / "app.log"
    app = build(api(), {"http.access_log": access_log, "logging.file": str(log)})
    async with app.running():
        async with httpx.AsyncClient(base_url=http_of(app).url) as client:
            assert (await client.get("/hello")).status_code == 200
    lines = [line for line in log.read_text().splitlines() if "uvicorn.access" in line]
    assert bool(lines) is access_log


@pytest.mark.anyio
async def test_accepted_connections_disable_nagle(build: Build) -> None:
    """The listening socket is IPPROTO_TCP, so asyncio sets TCP_NODELAY on every connection."""
    app = build(api())
    async with app.running():
        sock = http_of(app)._socket
        assert sock is not None
        assert sock.proto == socket.IPPROTO_TCP


@pytest.mark.slow
def test_a_failing_lifespan_shutdown_is_a_failed_stop(tmp_path: Path) -> None:
    """Code after ``yield`` in a FastAPI lifespan raises: the stop of the HTTP service fails,
    naming the error, and the exit code is 1 (uvicorn alone only logs it)."""
    from tests._process import finish, free_port, spawn

    port = free_port()
    proc = spawn(tmp_path, "run", "tests.lifespan_apps:App", "--set", f"http.port={port}")
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "never listened"
            time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 1, err
    assert "lifespan shutdown failed (RuntimeError: could not flush the outbox)" in err
    assert "exit code 1" in err.strip().splitlines()[-1]
