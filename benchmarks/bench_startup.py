"""How long do `import tsbandit` and the command line take to start, beside the interpreter?

Runs each command as a fresh process, interleaved (one round runs every command once), and
prints the median and best wall time and the time over `python -c pass` from the same run.
Goal (issue 13): `tsbandit --help` under 0.5 s over the interpreter's start; `import tsbandit`
without SciPy.

Run: ``python benchmarks/bench_startup.py [--rounds 15]``. With ``--beside SRC`` every command
also runs on the tree whose ``src`` folder is SRC (``PYTHONPATH=SRC``), interleaved in the same
rounds, and the table adds its figures and the ratio (e.g. ``PYTHONPATH=src python
benchmarks/bench_startup.py --beside ../old/src``). Rounds, medians and the table go through
``benchmarks/harness.py``.
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


def run_once(cmd: list[str], env: dict[str, str] | None = None) -> None:
    out = subprocess.run(cmd, capture_output=True, check=False, env=env)
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
    parser.add_argument("--beside", metavar="SRC", type=Path,
                        help="also time the tree whose src folder is SRC, interleaved")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    trees: list[dict[str, str] | None] = [None]
    if args.beside is not None:
        trees.append({**os.environ, "PYTHONPATH": str(args.beside.resolve())})
    runs = [(name, cmd, env) for name, cmd in COMMANDS for env in trees]
    # one round runs every command once (a first, untimed round warms the file cache)
    samples = harness.alternate([lambda cmd=cmd, env=env: run_once(cmd, env)
                                 for _, cmd, env in runs], args.rounds)
    times = {(name, env is None): s for (name, _, env), s in zip(runs, samples, strict=True)}
    base = harness.pick(times["python -c pass", True])
    print(f"{args.rounds} interleaved rounds; load average {load_start:.2f} -> "
          f"{os.getloadavg()[0]:.2f}")
    cols = [Col("command", 38, align="<"), Col("median s", 10, ".3f"), Col("best s", 10, ".3f"),
            Col("over pass s", 13, ".3f")]
    if args.beside is not None:
        cols += [Col("beside: median s", 18, ".3f"), Col("over pass s", 13, ".3f"),
                 Col("ratio (over pass)", 19)]
    table = Table(*cols, sep="")
    print(table.header())
    for name, _ in COMMANDS:
        med = harness.pick(times[name, True])
        row: list[object] = [name, med, min(times[name, True]), med - base]
        if args.beside is not None:
            other = harness.pick(times[name, False])
            over = other - harness.pick(times["python -c pass", False])
            row += [other, over, harness.ratio(med - base, over) if over > 0 else None]
        print(table.row(*row))
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
