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

    def __init__(self, workdir: Path, port: int | None = None, *, cluster: bool = False,
                 node_timeout: int = 2000) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port(bus=cluster)
        self.cluster = cluster
        self.node_timeout = node_timeout
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
                "--cluster-node-timeout", str(self.node_timeout),
                "--repl-diskless-sync-delay", "0",  # a (re)joining replica syncs at once
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

    def wait_unpaused(self) -> None:
        """Return once a ``CLIENT PAUSE`` has ended (a PING waits for it, as every command
        does), and the commands it held have run."""
        assert self.cli("ping").strip() == "PONG"
        time.sleep(0.2)


class RedisCluster:
    """A real Redis Cluster of ``n`` primaries with ``replicas`` replicas each, on free ports.

    ``node_timeout`` (ms) is how long a node may be silent before it is failing: with replicas,
    a killed primary's replica takes over about 2-3 node timeouts later.
    """

    def __init__(self, workdir: Path, n: int = 3, *, replicas: int = 0,
                 node_timeout: int = 2000) -> None:
        self.nodes: list[RedisServer] = []
        self.replicas = replicas
        try:
            for i in range(n * (1 + replicas)):
                self.nodes.append(RedisServer(Path(workdir) / f"node{i}", cluster=True,
                                              node_timeout=node_timeout))
            hosts = [f"127.0.0.1:{s.port}" for s in self.nodes]
            create = ["redis-cli", "--cluster", "create", *hosts]
            create += ["--cluster-replicas", str(replicas), "--cluster-yes"]
            out = subprocess.run(
                create,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout}{out.stderr}")
            self.wait_healthy()
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

    def _healthy(self) -> bool:
        if not self._ok():
            return False
        if self.replicas == 0:
            return True
        primaries = 0
        for s in self.nodes:
            info = s.cli("info", "replication")
            if "role:master" in info:
                primaries += 1
                if f"connected_slaves:{self.replicas}" not in info:
                    return False
            elif "master_link_status:up" not in info:
                return False
        return primaries * (1 + self.replicas) == len(self.nodes)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until every node is up, ``cluster_state:ok`` and every primary has its
        replicas in sync."""
        _wait(self._healthy, "a healthy cluster", timeout=timeout)

    def primary_of(self, key: str) -> RedisServer:
        """The node that serves ``key``'s slot now."""
        node = self.serving(key)
        if node is None:
            raise RuntimeError(f"no live primary serves the slot of {key!r}")
        return node

    def serving(self, key: str) -> RedisServer | None:
        """The live primary that serves ``key``'s slot, if one does."""
        live = next(s for s in self.nodes if s.proc is not None)
        slot = int(live.cli("cluster", "keyslot", key).strip())
        for s in self.nodes:
            if s.proc is None:
                continue
            for line in s.cli("cluster", "nodes").splitlines():
                f = line.split()
                if "myself" not in f[2] or "master" not in f[2]:
                    continue
                for r in f[8:]:
                    lo, _, hi = r.partition("-")
                    if r[0].isdigit() and int(lo) <= slot <= int(hi or lo):
                        return s
        return None

    def replicas_of(self, primary: RedisServer) -> list[RedisServer]:
        """The live replicas of ``primary``."""
        out = []
        for s in self.nodes:
            if s is primary or s.proc is None:
                continue
            info = s.cli("info", "replication")
            if "role:slave" in info and f"master_port:{primary.port}" in info:
                out.append(s)
        return out

    def wait_state(self, state: str, timeout: float = 30.0) -> None:
        """Wait until every live node reports ``cluster_state:<state>``."""
        live = [s for s in self.nodes if s.proc is not None]
        _wait(lambda: all(f"cluster_state:{state}" in s.cli("cluster", "info") for s in live),
              f"cluster_state:{state}", timeout=timeout)

    def restart_dead(self, timeout: float = 30.0) -> None:
        """Start the killed nodes again (they rejoin from their nodes.conf) and wait until
        the cluster is healthy."""
        for s in self.nodes:
            if s.proc is None:
                s.start()
        self.wait_healthy(timeout)

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
