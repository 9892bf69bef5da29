"""How long do `import tsbandit` and the command line take to start, beside the interpreter?

Runs each command as a fresh process, interleaved (one round runs every command once), and
prints the median and best wall time and the time over `python -c pass` from the same run.
Goal (issue 13): `tsbandit --help` under 0.5 s over the interpreter's start; `import tsbandit`
without SciPy.

Run: ``python benchmarks/bench_startup.py [--rounds 15]``. Rounds, medians and the table go
through ``benchmarks/harness.py``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import harness
from harness import Col, Table

SCRIPT = Path(sys.executable).with_name("tsbandit")

COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass", [sys.executable, "-c", "pass"]),
    ("python -c 'import numpy'", [sys.executable, "-c", "import numpy"]),
    ("python -c 'import tsbandit'", [sys.executable, "-c", "import tsbandit"]),
    ("tsbandit --version", [str(SCRIPT), "--version"]),
    ("tsbandit --help", [str(SCRIPT), "--help"]),
    ("tsbandit abtest --help", [str(SCRIPT), "abtest", "--help"]),
]


def run_once(cmd: list[str]) -> None:
    out = subprocess.run(cmd, capture_output=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.decode()[-500:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_once(cache_dir: str | None) -> tuple[float, float]:
    """Seconds from `tsbandit serve` (memory store) starting to /healthz answering 200, and to
    its first decision answered."""
    port = _free_port()
    env = dict(os.environ)
    if cache_dir is not None:  # an empty kernel cache: compilation on this start
        env["TSBANDIT_CACHE_DIR"] = cache_dir
    base = f"http://127.0.0.1:{port}"
    t = time.perf_counter()
    proc = subprocess.Popen([str(SCRIPT), "serve", "--port", str(port), "--store", "memory://"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=0.5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.01)
            if proc.poll() is not None or time.perf_counter() - t > 120:
                raise SystemExit("tsbandit serve did not start")
        up = time.perf_counter() - t
        req = urllib.request.Request(f"{base}/v1/bandits/credit_card_offers/decisions",
                                     data=b"{}", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
        return up, time.perf_counter() - t
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--serve-rounds", type=int, default=5)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    # one round runs every command once (a first, untimed round warms the file cache)
    samples = harness.alternate([lambda cmd=cmd: run_once(cmd) for _, cmd in COMMANDS],
                                args.rounds)
    times = {name: runs for (name, _), runs in zip(COMMANDS, samples, strict=True)}
    base = harness.pick(times["python -c pass"])
    print(f"{args.rounds} interleaved rounds; load average {load_start:.2f} -> "
          f"{os.getloadavg()[0]:.2f}")
    table = Table(Col("command", 38, align="<"), Col("median s", 10, ".3f"),
                  Col("best s", 10, ".3f"), Col("over pass s", 13, ".3f"), sep="")
    print(table.header())
    for name, _ in COMMANDS:
        med = harness.pick(times[name])
        print(table.row(name, med, min(times[name]), med - base))
    probe = subprocess.run([sys.executable, "-c", "import sys, tsbandit; "
                            "print('scipy' in sys.modules)"], capture_output=True, text=True,
                           check=True)
    print(f"`import tsbandit` imports SciPy: {probe.stdout.strip()}")
    if args.serve_rounds:
        warm, cold = [], []
        for _ in range(args.serve_rounds):
            warm.append(serve_once(None))
            with tempfile.TemporaryDirectory() as empty:
                cold.append(serve_once(empty))
        print(f"\n`tsbandit serve` (memory store), {args.serve_rounds} starts each, median s:")
        serve = Table(Col("kernel cache", 38, align="<"), Col("port open", 10, ".2f"),
                      Col("1st decision", 14, ".2f"), sep="")
        print(serve.header())
        for name, runs in (("warm (loaded in the background)", warm),
                           ("empty (compiled in the background)", cold)):
            print(serve.row(name, harness.pick(r[0] for r in runs),
                            harness.pick(r[1] for r in runs)))


if __name__ == "__main__":
    main()
