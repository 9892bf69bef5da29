"""Service fixtures: in-process clients and real uvicorn servers (Redis fixtures: root conftest)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

# starlette >= 1.x warns that its TestClient's httpx backend is deprecated; harmless here
warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")

from fastapi.testclient import TestClient  # noqa: E402

from fakes import FakeClock  # noqa: E402
from tsbandit.engine import Engine  # noqa: E402
from tsbandit.service import Settings, create_app  # noqa: E402
from tsbandit.stores.memory import MemoryStore  # noqa: E402

# ``clock`` (a FakeClock) comes from tests/conftest.py.


@pytest.fixture
def engine(clock: FakeClock) -> Engine:
    """An engine over a fresh MemoryStore with a fake clock and a fixed seed."""
    return Engine(MemoryStore(), seed=0, clock=clock)


@pytest.fixture
def make_client(engine: Engine) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**settings)`` -> a started TestClient over ``engine``."""
    stack = contextlib.ExitStack()

    def make(engine_: Engine | None = engine, **overrides: Any) -> TestClient:
        settings = Settings(**{"store": "memory://", "seed": 0, **overrides})
        app = create_app(settings, engine=engine_)
        return stack.enter_context(TestClient(app, raise_server_exceptions=True))

    with stack:
        yield make


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


# ----- real services ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ``redis_url`` (the Redis at 127.0.0.1:6379; under CI=true its absence fails the test) and
# ``redis_server`` come from the root conftest (tests/stores/backends.py).


@pytest.fixture
def unique() -> str:
    """A unique bandit-name suffix (tests share one Redis)."""
    return uuid.uuid4().hex[:10]


class Server:
    """A uvicorn subprocess serving ``app_from_env`` on a free port."""

    def __init__(self, env: dict[str, str], workers: int = 1, log: Path | None = None,
                 via_serve: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        full = {**os.environ, **env}
        cmd = [sys.executable, "-m", "uvicorn", "tsbandit.service.app:app_from_env",
               "--factory", "--host", "127.0.0.1", "--port", str(self.port),
               "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
        if via_serve:  # what `tsbandit serve` calls
            cmd = [sys.executable, "-c", "from tsbandit.service import serve; "
                   f"serve('127.0.0.1', {self.port}, {workers}, log_level='warning')"]
        with open(log or os.devnull, "wb") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(cmd, env=full, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode}: {self.logs()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"uvicorn not ready after {timeout} s: {self.logs()}")

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``serve(env, workers=1)`` -> a ready uvicorn server; stopped at teardown."""
    servers: list[Server] = []

    def start(env: dict[str, str], workers: int = 1, via_serve: bool = False) -> Server:
        server = Server(env, workers, log=tmp_path / f"uvicorn-{len(servers)}.log",
                        via_serve=via_serve)
        servers.append(server)
        server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()
