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
import statistics
import subprocess
import sys
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
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


if __name__ == "__main__":
    main()
