"""How long do `import tsbandit` and the command line take to start, beside the interpreter?

Runs each command as a fresh process, interleaved (one round runs every command once), and
prints the median and best wall time and the time over `python -c pass` from the same run.
Goal (issue 13): `tsbandit --help` under 0.5 s over the interpreter's start; `import tsbandit`
without SciPy.

Run: ``python benchmarks/bench_startup.py [--rounds 15]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("tsbandit")

COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass", [sys.executable, "-c", "pass"]),
    ("python -c 'import numpy'", [sys.executable, "-c", "import numpy"]),
    ("python -c 'import tsbandit'", [sys.executable, "-c", "import tsbandit"]),
    ("tsbandit --version", [str(SCRIPT), "--version"]),
    ("tsbandit --help", [str(SCRIPT), "--help"]),
    ("tsbandit abtest --help", [str(SCRIPT), "abtest", "--help"]),
]


def run_once(cmd: list[str]) -> float:
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, check=False)
    elapsed = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.decode()[-500:]}")
    return elapsed


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
    times: dict[str, list[float]] = {name: [] for name, _ in COMMANDS}
    load_start = os.getloadavg()[0]
    for _name, cmd in COMMANDS:  # warm the file cache
        run_once(cmd)
    for _ in range(args.rounds):
        for name, cmd in COMMANDS:
            times[name].append(run_once(cmd))
    base = statistics.median(times["python -c pass"])
    print(f"{args.rounds} interleaved rounds; load average {load_start:.2f} -> "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'command':<38}{'median s':>10}{'best s':>10}{'over pass s':>13}")
    for name, _ in COMMANDS:
        med = statistics.median(times[name])
        print(f"{name:<38}{med:>10.3f}{min(times[name]):>10.3f}{med - base:>13.3f}")
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
        print(f"{'kernel cache':<38}{'port open':>10}{'1st decision':>14}")
        for name, runs in (("warm (loaded in the background)", warm),
                           ("empty (compiled in the background)", cold)):
            print(f"{name:<38}{statistics.median(r[0] for r in runs):>10.2f}"
                  f"{statistics.median(r[1] for r in runs):>14.2f}")


if __name__ == "__main__":
    main()
