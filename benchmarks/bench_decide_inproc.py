"""Microseconds per request of the decision endpoints, in process, two source trees side by side.

Usage::

    python benchmarks/bench_decide_inproc.py --old /work/wt-base/src         # this tree vs that
    python benchmarks/bench_decide_inproc.py --profile recommend --store sqlite   # cProfile

Each tree runs in a worker process of its own (``PYTHONPATH=<tree>/src``) holding one app
(defaults: offloaded engine calls, coalescing, metrics, JSON log lines written to /dev/null),
driven over ASGI directly (no sockets, no HTTP parsing: the app's own cost). The parent asks
the workers in turn for a round of ``n`` requests (:func:`harness.alternate`), so a neighbour's
load falls on both trees alike; a figure is the median of the rounds (wall clock).
Endpoints: ``decide`` (``POST /v1/bandits/{name}/decisions``, body ``{"user_id": ...}``) and
``recommend`` (``GET /recommend/{customer_id}``), one customer per request, ``c`` requests in
flight (closed loop).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness

HERE = Path(__file__).resolve()
NAME = "offers"


def _scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "scheme": "http", "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 1),
            "headers": [(b"host", b"x"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())]}


class Driver:
    """One app, driven over ASGI: ``round(endpoint, n, c)`` runs ``n`` requests."""

    def __init__(self, store: str) -> None:
        from tsbandit.service import Settings, create_app
        from tsbandit.service.logs import install_logging

        self.app = create_app(Settings(store=store, default_bandit_name=NAME,
                                       sweep_interval=0))
        install_logging("json", "info", stream=open(os.devnull, "w"))
        self.counter = 0
        self.statuses: set[int] = set()

    async def request(self, endpoint: str) -> None:
        self.counter += 1
        if endpoint == "recommend":
            scope = _scope("GET", f"/recommend/c{self.counter}", b"")
            body = b""
        else:
            body = json.dumps({"user_id": f"u{self.counter}"}).encode()
            scope = _scope("POST", f"/v1/bandits/{NAME}/decisions", body)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.statuses.add(message["status"])

        await self.app(scope, receive, send)

    async def round(self, endpoint: str, n: int, c: int) -> None:
        async def loop(count: int) -> None:
            for _ in range(count):
                await self.request(endpoint)

        await asyncio.gather(*(loop(n // c) for _ in range(c)))
        assert self.statuses == {200}, self.statuses


async def _worker(store: str) -> None:
    """Serve rounds on request: a line ``endpoint n c`` in, a line ``ok`` out."""
    driver = Driver(store)
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with driver.app.router.lifespan_context(driver.app):
        await driver.request("recommend")  # creates the default bandit if needed
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while line := (await reader.readline()).decode().split():
            endpoint, n, c = line[0], int(line[1]), int(line[2])
            await driver.round(endpoint, n, c)
            sys.stdout.write("ok\n")
            sys.stdout.flush()


def _run(coro: Any) -> Any:
    try:
        import uvloop  # the loop uvicorn runs on
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


class Worker:
    """A worker process on one source tree."""

    def __init__(self, src: str, store: str) -> None:
        env = {**os.environ, "PYTHONPATH": src}
        self.proc = subprocess.Popen([sys.executable, str(HERE), "--worker", store], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        got = self.proc.stdout.readline().strip()
        if got != "ready":
            raise RuntimeError(f"worker on {src} did not start: {got!r}")

    def round(self, endpoint: str, n: int, c: int) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{endpoint} {n} {c}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"
        return n // c * c

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _store_url(kind: str, tmp: Path, tag: str) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'{tag}.db'}"
    return os.environ.get("TSBANDIT_BENCH_REDIS", "redis://127.0.0.1:6379/0")


def compare(old: str, stores: list[str], endpoints: list[str], cs: list[int], n: int,
            repeats: int) -> None:
    new = str(HERE.parents[1] / "src")
    print(f"old {old}\nnew {new}\nload average {harness.load_average()}")
    print(harness.markdown_header("store", "endpoint", "c", "old us/req", "new us/req",
                                  "old/new", align=["---", "---", *["---:"] * 4]))
    with tempfile.TemporaryDirectory() as d:
        for store in stores:
            workers = [Worker(old, _store_url(store, Path(d), "old")),
                       Worker(new, _store_url(store, Path(d), "new"))]
            try:
                for endpoint in endpoints:
                    for c in cs:
                        fns = [functools.partial(w.round, endpoint, n, c) for w in workers]
                        wall = harness.alternate(fns, repeats, per_op=True)
                        w_old, w_new = (harness.pick(s) for s in wall)
                        print(harness.markdown_row(store, endpoint, c, f"{w_old:.0f}",
                                                   f"{w_new:.0f}", harness.ratio(w_old, w_new)),
                              flush=True)
            finally:
                for w in workers:
                    w.close()
    print(f"load average {harness.load_average()}")


def profile(endpoint: str, store: str, n: int, c: int, top: int) -> None:
    import cProfile
    import pstats

    with tempfile.TemporaryDirectory() as d:
        driver = Driver(_store_url(store, Path(d), "prof"))

        async def go() -> None:
            async with driver.app.router.lifespan_context(driver.app):
                await driver.round(endpoint, 400, c)  # warm-up (and the default bandit)
                prof = cProfile.Profile()
                t0 = time.perf_counter()
                prof.enable()
                await driver.round(endpoint, n, c)
                prof.disable()
                print(f"{(time.perf_counter() - t0) / n * 1e6:.0f} us/request under cProfile")
                stats = pstats.Stats(prof)
                stats.sort_stats("tottime").print_stats(top)

        _run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--old", help="the other tree's src folder")
    parser.add_argument("--stores", default="memory,sqlite")
    parser.add_argument("--endpoints", default="decide,recommend")
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("-n", type=int, default=1600, help="requests per round")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--profile", choices=["decide", "recommend"])
    parser.add_argument("--store", default="memory", help="with --profile")
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    if args.worker:
        _run(_worker(args.worker))
        return
    cs = [int(c) for c in args.concurrency.split(",")]
    if args.profile:
        profile(args.profile, args.store, args.n, cs[0], args.top)
        return
    if not args.old:
        parser.error("--old or --profile")
    compare(args.old, args.stores.split(","), args.endpoints.split(","), cs, args.n,
            args.repeats)


if __name__ == "__main__":
    main()
