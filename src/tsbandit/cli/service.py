"""``tsbandit serve`` and ``tsbandit demo``: the decision service, and the tutorial's offers
sent through it (or through the tutorial's in-process class).

FastAPI, uvicorn and httpx are imported inside the commands.
"""

from __future__ import annotations

import typer

from ._options import DEFAULT_STORE, fail

__all__ = ["demo", "serve"]

TUTORIAL_OFFERS = (
    "cashback_grocery_2pct",
    "travel_miles_3x",
    "balance_transfer_0apr",
    "business_expense_card",
    "premium_rewards_500bonus",
)
TUTORIAL_RATES = (0.030, 0.045, 0.028, 0.015, 0.060)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Worker processes (share SQLite or Redis)."),
    store: str | None = typer.Option(
        None, help="State store URL: sqlite:///tsbandit.db (default), redis://host:6379/0, "
        "redis+cluster://h1:p1,h2:p2 or memory:// (env TSBANDIT_STORE)."),
    api_key: str | None = typer.Option(
        None, help="Require 'Authorization: Bearer KEY' on mutating endpoints "
        "(env TSBANDIT_API_KEY).", show_default=False),
    max_staleness_ms: float | None = typer.Option(
        None, min=0, help="Let a worker reuse a snapshot this old "
        "(env TSBANDIT_MAX_STALENESS_MS)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Run the decision service (FastAPI on uvicorn); settings also from TSBANDIT_* variables."""
    from .. import __version__
    from ..service.server import serve as _serve

    typer.echo(f"tsbandit {__version__}: API on http://{host}:{port} (docs /docs), "
               f"dashboard http://{host}:{port}/dashboard, metrics /metrics", err=True)
    _serve(host=host, port=port, workers=workers, store_url=store, api_key=api_key,
           max_staleness_ms=max_staleness_ms, log_level=log_level)


def demo(
    customers: int = typer.Option(2000, "--customers", "--rounds", min=1,
                                  help="Simulated customers."),
    seed: int = typer.Option(42, help="Seed of the simulated customers (and in-process bandit)."),
    store: str = typer.Option(DEFAULT_STORE, help="Store of the service the demo starts."),
    url: str | None = typer.Option(
        None, help="Use the service already running at this URL instead of starting one."),
    in_process: bool = typer.Option(
        False, "--in-process", help="No service: the tutorial's ThompsonSamplingBandit, "
        "in-process."),
) -> None:
    """Thompson sampling picks credit-card offers for simulated customers (tutorial Part 5-9).

    By default it starts `tsbandit serve` on the embedded SQLite store, sends every customer
    through the HTTP API (batched decisions, one reward per decision) and prints what the
    service learned; the true application rates stay hidden from the service.
    """
    if in_process:
        _demo_in_process(customers, seed)
        return
    import httpx
    import numpy as np

    from ..errors import TsbanditError
    from .demo import LocalService, run_demo

    try:
        if url is not None:
            result = run_demo(url, customers=customers, seed=seed)
        else:
            typer.echo(f"Starting tsbandit serve on {store} ...")
            with LocalService(store) as service:
                typer.echo(f"Service up at {service.base_url}; serving {customers} "
                           "customers ...")
                result = run_demo(service.base_url, customers=customers, seed=seed)
    except (httpx.HTTPError, RuntimeError, TsbanditError) as exc:
        fail(f"demo failed: {exc}", 1)
    uniform = np.mean(list(result.rates.values())) * customers
    typer.echo(result.table())
    typer.echo(f"\nTraffic to the best offer ({result.best_arm}): {result.best_share:.1%}")
    typer.echo(f"Applications: {result.applications} of {result.customers} customers "
               f"(always-best oracle expects {result.rates[result.best_arm] * customers:.0f}, "
               f"uniform random {uniform:.0f})")
    typer.echo(f"{result.requests} HTTP requests in {result.seconds:.1f} s. "
               f"Bandit {result.bandit!r} stays in {store if url is None else url}; "
               "`tsbandit serve` serves it.")


def _demo_in_process(rounds: int, seed: int) -> None:
    import numpy as np

    from ..tutorial import ThompsonSamplingBandit

    bandit = ThompsonSamplingBandit(list(TUTORIAL_OFFERS), seed=seed)
    rates = dict(zip(TUTORIAL_OFFERS, TUTORIAL_RATES, strict=True))
    customers = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    u = customers.random(rounds)
    applied = 0
    for i in range(rounds):
        offer = bandit.select_arm()
        reward = int(u[i] < rates[offer])
        applied += reward
        bandit.update(offer, reward)
    typer.echo(bandit.summary())
    best = max(rates, key=rates.__getitem__)
    share = bandit.arms[best].total_pulls / rounds
    oracle = rates[best] * rounds
    typer.echo("\nTrue rates (hidden from the bandit): "
               + ", ".join(f"{k}={v:.3f}" for k, v in rates.items()))
    typer.echo(f"Traffic to the best offer ({best}): {share:.1%}")
    typer.echo(f"Applications: {applied} (always-best oracle expects {oracle:.0f}, "
               f"uniform random {np.mean(TUTORIAL_RATES) * rounds:.0f})")
