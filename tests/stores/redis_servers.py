"""Start and stop real ``redis-server`` processes for tests: one standalone server, or a
3-node Redis Cluster. Plain functions (no pytest), so other test areas can reuse them::

    from stores.redis_servers import RedisCluster, RedisServer   # tests/ is on sys.path
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["RedisCluster", "RedisServer", "free_port", "redis_binaries"]


def redis_binaries() -> tuple[str, str] | None:
    """Paths of ``redis-server`` and ``redis-cli``, or None when either is missing."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    return (server, cli) if server and cli else None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(bus: bool = False) -> int:
    """A free TCP port on 127.0.0.1 (with ``bus``: port + 10000 free too, for cluster nodes)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not bus:
            return port
        if port + 10000 < 65536 and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port found")


def _cli(port: int, *args: str, timeout: float = 10.0) -> str:
    out = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return out.stdout + out.stderr


def _wait(predicate, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


class RedisServer:
    """One ``redis-server`` without persistence on a free port, in ``workdir``."""

    def __init__(self, workdir: Path, port: int | None = None, *, cluster: bool = False) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port(bus=cluster)
        self.cluster = cluster
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.workdir),
            "--loglevel", "warning",
        ]  # fmt: skip
        if self.cluster:
            args += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{self.port}.conf",
                "--cluster-node-timeout", "2000",
            ]  # fmt: skip
        log = open(self.workdir / f"redis-{self.port}.log", "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        _wait(lambda: "PONG" in _cli(self.port, "ping", timeout=2), f"redis on {self.port}")

    def kill(self) -> None:
        """SIGKILL the server (no clean shutdown) and wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def cli(self, *args: str) -> str:
        return _cli(self.port, *args)


class RedisCluster:
    """A real Redis Cluster of ``n`` primaries (no replicas) on free ports."""

    def __init__(self, workdir: Path, n: int = 3) -> None:
        self.nodes: list[RedisServer] = []
        try:
            for i in range(n):
                self.nodes.append(RedisServer(Path(workdir) / f"node{i}", cluster=True))
            hosts = [f"127.0.0.1:{s.port}" for s in self.nodes]
            create = ["redis-cli", "--cluster", "create", *hosts]
            create += ["--cluster-replicas", "0", "--cluster-yes"]
            out = subprocess.run(
                create,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout}{out.stderr}")
            _wait(self._ok, "cluster_state:ok on every node", timeout=30)
        except BaseException:
            self.stop()
            raise

    def _ok(self) -> bool:
        for s in self.nodes:
            info = s.cli("cluster", "info")
            known = f"cluster_known_nodes:{len(self.nodes)}"
            if "cluster_state:ok" not in info or known not in info:
                return False
        return True

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.nodes)
        return f"redis+cluster://{hosts}"

    def stop(self) -> None:
        for s in self.nodes:
            s.stop()

    def kill(self) -> None:
        for s in self.nodes:
            s.kill()


def env_ci() -> bool:
    """True under ``CI=true`` (missing Redis is then a failure, not a skip)."""
    return os.environ.get("CI", "").lower() in {"true", "1", "yes"}
