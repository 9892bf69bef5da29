"""The demo behind ``tsbandit demo``: simulated customers served by a live decision service.

:func:`run_demo` talks to a running service over HTTP exactly as an application would,
through :class:`tsbandit.client.Client`: it (re)creates a bandit of the tutorial's five
credit-card offers, asks for decisions in batches of customers (``POST
/v1/bandits/{name}/decisions/batch``), answers each decision with the customer's simulated
response (``POST /v1/bandits/{name}/rewards``, one per decision, sent concurrently from a
reward buffer after the batch -- delayed feedback, as in production) and finally reads
``/stats``. The true
application rates are hidden from the service; the demo only uses them to simulate customers.

:class:`LocalService` starts ``tsbandit serve`` in a subprocess on a free port and stops it.

>>> from tsbandit.cli.demo import DEMO_RATES
>>> max(DEMO_RATES, key=DEMO_RATES.__getitem__)
'premium_rewards_500bonus'
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

import numpy as np

from ..errors import (
    BanditNotFoundError,
    ConfigurationError,
    ServiceConnectionError,
    ServiceTimeoutError,
)
from ..service.settings import TUTORIAL_ARMS

__all__ = ["DEMO_BANDIT", "DEMO_RATES", "DemoResult", "LocalService", "run_demo"]

#: The tutorial's true application rates (Part 6), hidden from the service.
DEMO_RATES: dict[str, float] = dict(
    zip(TUTORIAL_ARMS, (0.030, 0.045, 0.028, 0.015, 0.060), strict=True))
DEMO_BANDIT = "demo_credit_card_offers"


@dataclass
class DemoResult:
    """What the demo did and what the service learned.

    ``stats`` is the service's ``/v1/bandits/{name}/stats`` answer (the client's
    :class:`~tsbandit.client.Stats` as a dict); ``shown`` counts the offers the service chose,
    ``applications`` the simulated customers who applied; ``requests`` and ``seconds`` are
    the HTTP requests made and the wall time they took.
    """

    base_url: str
    bandit: str
    customers: int
    applications: int
    shown: dict[str, int]
    stats: dict[str, Any]
    seconds: float
    requests: int
    rates: dict[str, float] = field(default_factory=lambda: dict(DEMO_RATES))

    @property
    def best_arm(self) -> str:
        """The offer with the highest true rate."""
        return max(self.rates, key=self.rates.__getitem__)

    @property
    def best_share(self) -> float:
        """Share of customers shown the best offer."""
        return self.shown.get(self.best_arm, 0) / self.customers

    def table(self) -> str:
        """The service's view per offer beside the hidden truth, as text."""
        head = (f"{'offer':<26}{'shown':>7}{'share':>8}{'post. mean':>12}{'95% interval':>18}"
                f"{'P(best)':>9}{'true rate':>11}")
        lines = [head, "-" * len(head)]
        for row in self.stats["arms"]:
            arm = row["arm"]
            n = self.shown.get(arm, 0)
            interval = f"[{row['lower']:.4f}, {row['upper']:.4f}]"
            lines.append(
                f"{arm:<26}{n:>7}{n / self.customers:>8.1%}{row['mean']:>12.4f}{interval:>18}"
                f"{row['prob_best']:>9.3f}{self.rates.get(arm, float('nan')):>11.3f}")
        return "\n".join(lines)


def run_demo(base_url: str, *, customers: int = 2000, seed: int = 42, batch: int = 100,
             bandit: str = DEMO_BANDIT, api_key: str | None = None,
             rates: dict[str, float] | None = None, timeout: float = 10.0) -> DemoResult:
    """Serve ``customers`` simulated customers through the service at ``base_url``.

    It talks to the service through :class:`tsbandit.client.Client`, as an application
    would: batched decisions, then each batch's rewards from a reward buffer (sent
    concurrently, all applied before the next batch is decided).
    The bandit ``bandit`` is deleted first if it exists, so every run starts from the prior.
    Customers' responses are drawn from ``rates`` (default :data:`DEMO_RATES`) with ``seed``.

    Raises
    ------
    tsbandit.errors.ConfigurationError
        ``customers`` or ``batch`` below 1.
    tsbandit.errors.TsbanditError
        The service could not be reached (``ServiceConnectionError``) or refused a request
        (the exception its error ``code`` names).
    """
    from ..client import Client

    if customers < 1 or batch < 1:
        raise ConfigurationError(
            f"customers == {customers!r} and batch == {batch!r}, both must be >= 1")
    truth = dict(DEMO_RATES if rates is None else rates)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    shown = dict.fromkeys(truth, 0)
    applications = 0
    with Client(base_url, api_key=api_key, timeout=timeout) as client:
        try:
            client.delete(bandit)
        except BanditNotFoundError:
            pass
        client.create(bandit, list(truth))
        served = 0
        with client.reward_buffer(max_size=batch, max_wait=None) as rewards:
            while served < customers:
                n = min(batch, customers - served)
                users = [f"customer_{served + i}" for i in range(n)]
                decisions = client.decide_batch(bandit, n, user_ids=users)
                applied = rng.random(n) < np.array([truth[d.arm] for d in decisions])
                for d, r in zip(decisions, applied, strict=True):
                    shown[d.arm] += 1
                    rewards.add(d, int(r))
                rewards.flush()  # delayed feedback: the batch's rewards before the next batch
                applications += int(applied.sum())
                served += n
        stats = client.stats(bandit)
    requests = 3 + customers + -(-customers // batch)  # delete, create, stats; batches
    return DemoResult(base_url, bandit, customers, applications, shown, asdict(stats),
                      time.perf_counter() - start, requests, truth)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalService:
    """``tsbandit serve`` in a subprocess, for the demo; a context manager.

    >>> with LocalService("memory://") as svc:           # doctest: +SKIP
    ...     svc.base_url
    'http://127.0.0.1:...'
    """

    def __init__(self, store: str = "sqlite:///tsbandit.db", *, host: str = "127.0.0.1",
                 port: int = 0, ready_timeout: float = 30.0) -> None:
        self.store = store
        self.host = host
        self.port = port or _free_port()
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """Where the service listens."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalService:
        """Start the service and wait until ``/healthz`` answers.

        Raises :class:`~tsbandit.errors.ServiceConnectionError` when the service exits first,
        :class:`~tsbandit.errors.ServiceTimeoutError` when it does not answer in
        ``ready_timeout`` seconds."""
        import httpx

        cmd = [sys.executable, "-m", "tsbandit", "serve", "--host", self.host,
               "--port", str(self.port), "--store", self.store, "--log-level", "warning"]
        # the demo prints its own summary: the service logs warnings only, unless told otherwise
        env = {"TSBANDIT_LOG_LEVEL": "warning", "TSBANDIT_LOG_REQUESTS": "false", **os.environ}
        self.process = subprocess.Popen(cmd, env=env)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceConnectionError(
                    f"the service exited with code {self.process.returncode}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServiceTimeoutError(f"the service did not answer on {self.base_url} within "
                           f"{self.ready_timeout:.0f} s")

    def stop(self) -> None:
        """Stop the service (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
