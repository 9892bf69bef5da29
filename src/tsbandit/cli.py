"""The ``tsbandit`` command line (Typer): a thin shell over the library, lab and service.

Sub-commands import what they need lazily, so ``tsbandit --help`` stays fast: the lab, A/B and
OPE commands live in their own packages and are imported only when one of them runs (the help
lists them from the short descriptions in ``_LAZY``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np
import typer
from typer.core import TyperCommand, TyperGroup

#: sub-commands imported on first use: name -> (module, attribute, one-line help). The attribute
#: is a Typer app (a command group) or a command function.
_LAZY: dict[str, tuple[str, str, str]] = {
    "scenarios": ("tsbandit.lab.cli", "scenarios",
                  "List the named scenarios, their defaults and the policies they accept."),
    "simulate": ("tsbandit.lab.cli", "simulate",
                 "Run a scenario: print a table, write DIR/results.json and the plots."),
    "abtest": ("tsbandit.experiments.cli", "app",
               "Bayesian A/B/n tests: analyse counts (--arm NAME=SUCCESSES/TRIALS) or simulate "
               "designs."),
    "evaluate": ("tsbandit.evaluation.cli", "app",
                 "Off-policy evaluation: estimate how a policy would have done on logged "
                 "decisions."),
}


def _load_command(name: str) -> Any:
    """The real click command of a lazy sub-command (imports its module)."""
    module, attribute, _ = _LAZY[name]
    target = getattr(importlib.import_module(module), attribute)
    if not isinstance(target, typer.Typer):
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        target = single
    command = typer.main.get_command(target)
    command.name = name
    return command


class _LazyCommand(TyperCommand):
    """A placeholder listed in the help; running it parses the arguments with the real
    command (``--help`` included), imported only then."""

    def __init__(self, name: str, short_help: str) -> None:
        super().__init__(name, help=short_help, short_help=short_help, add_help_option=False,
                         context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True,
                                           "allow_interspersed_args": False})

    def invoke(self, ctx: Any) -> Any:
        assert self.name is not None
        real = _load_command(self.name)
        with real.make_context(ctx.info_name, list(ctx.args), parent=ctx.parent) as sub:
            return real.invoke(sub)


class _Group(TyperGroup):
    """The root group: its own commands, then the lazy ones."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in _LAZY if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _LAZY:
            command = _LazyCommand(cmd_name, _LAZY[cmd_name][2])
        return command


app = typer.Typer(
    name="tsbandit",
    help="Thompson-sampling personalization engine: policies, simulation lab, decision service.",
    no_args_is_help=True,
    add_completion=False,
    cls=_Group,
)

TUTORIAL_OFFERS = (
    "cashback_grocery_2pct",
    "travel_miles_3x",
    "balance_transfer_0apr",
    "business_expense_card",
    "premium_rewards_500bonus",
)
TUTORIAL_RATES = (0.030, 0.045, 0.028, 0.015, 0.060)


def _version_callback(value: bool) -> None:
    if value:
        from . import __version__

        print(f"tsbandit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version."
    ),
) -> None:
    """Thompson-sampling personalization engine."""


@app.command()
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
    from . import __version__
    from .service.server import serve as _serve

    print(f"tsbandit {__version__}: API on http://{host}:{port} (docs /docs), "
          f"dashboard http://{host}:{port}/dashboard, metrics /metrics", file=sys.stderr)
    _serve(host=host, port=port, workers=workers, store_url=store, api_key=api_key,
           max_staleness_ms=max_staleness_ms, log_level=log_level)


@app.command()
def demo(
    customers: int = typer.Option(2000, "--customers", "--rounds", min=1,
                                  help="Simulated customers."),
    seed: int = typer.Option(42, help="Seed of the simulated customers (and in-process bandit)."),
    store: str = typer.Option("sqlite:///tsbandit.db",
                              help="Store of the service the demo starts."),
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

    from .errors import TsbanditError
    from .service.demo import LocalService, run_demo

    try:
        if url is not None:
            result = run_demo(url, customers=customers, seed=seed)
        else:
            print(f"Starting tsbandit serve on {store} ...")
            with LocalService(store) as service:
                print(f"Service up at {service.base_url}; serving {customers} customers ...")
                result = run_demo(service.base_url, customers=customers, seed=seed)
    except (httpx.HTTPError, RuntimeError, TsbanditError) as exc:
        print(f"error: demo failed: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(result.table())
    print(f"\nTraffic to the best offer ({result.best_arm}): {result.best_share:.1%}")
    print(f"Applications: {result.applications} of {result.customers} customers "
          f"(always-best oracle expects {result.rates[result.best_arm] * customers:.0f}, "
          f"uniform random {np.mean(list(result.rates.values())) * customers:.0f})")
    print(f"{result.requests} HTTP requests in {result.seconds:.1f} s. "
          f"Bandit {result.bandit!r} stays in {store if url is None else url}; "
          "`tsbandit serve` serves it.")


@app.command()
def export(
    name: str = typer.Argument(..., help="The bandit's name in the store."),
    store: str = typer.Option("sqlite:///tsbandit.db", help="Store URL (as for serve)."),
    out: str = typer.Option("-", help="Write the bandit here (Bandit.to_dict() JSON); "
                            "- for standard output."),
    events: str | None = typer.Option(
        None, help="Also write its event log here, as JSON Lines (for tsbandit evaluate)."),
) -> None:
    """Write a service bandit as a library Bandit (and its event log), for offline work.

    The JSON is what `tsbandit evaluate LOG --state FILE` and `Bandit.from_dict` read: the
    bandit's arms, model, rule and current statistics. Nothing in the store changes.
    """
    import json
    from pathlib import Path

    from .engine import Engine
    from .errors import TsbanditError
    from .stores import open_store

    try:
        st = open_store(store)
    except TsbanditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    try:
        engine = Engine(st)
        text = json.dumps(engine.to_bandit(name).to_dict(), indent=1)
        if events is not None:
            with Path(events).open("w", encoding="utf-8") as fp:
                n = engine.export_events(name, fp)
            print(f"{n} events of {name!r} written to {events}", file=sys.stderr)
    except TsbanditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    finally:
        st.close()
    if out == "-":
        print(text)
    else:
        Path(out).write_text(text + "\n", encoding="utf-8")
        print(f"bandit {name!r} written to {out}", file=sys.stderr)


@app.command()
def sweep(
    store: str = typer.Option("sqlite:///tsbandit.db", help="Store URL (as for serve)."),
    bandit: str | None = typer.Option(None, help="Sweep only this bandit (default: all)."),
    limit: int = typer.Option(1000, min=1, help="Expired decisions claimed per round."),
    purge: bool = typer.Option(
        True, "--purge/--no-purge",
        help="Also delete consumed decisions past their retention and trim the event log."),
    retention: float | None = typer.Option(
        None, min=0, help="Seconds a consumed decision is kept after its deadline (default: "
        "the URL's retention=, else 7 days)."),
    events_maxlen: int | None = typer.Option(
        None, min=1, help="Keep this many newest events per bandit (default: the URL's "
        "events_maxlen=, else all)."),
) -> None:
    """Settle decisions past their reward window (default reward, exactly once), purge
    consumed decisions past their retention and trim event logs; print what was done.

    `tsbandit serve` does this in the background (TSBANDIT_SWEEP_INTERVAL); run this from cron
    when the service's sweeper is off, or to catch up once.
    """
    from .engine import Engine
    from .errors import TsbanditError
    from .stores import open_store

    options = {k: v for k, v in (("retention", retention), ("events_maxlen", events_maxlen))
               if v is not None}
    try:
        st = open_store(store, **options)
    except TsbanditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    try:
        results = Engine(st).sweep(bandit, limit=limit, purge=purge)
    except TsbanditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    finally:
        st.close()
    width = max([len("bandit"), *(len(n) for n in results)])
    print(f"{'bandit':<{width}}  {'settled':>9}  {'purged':>9}  {'trimmed':>9}")
    for name, r in results.items():
        print(f"{name:<{width}}  {r.settled:>9}  {r.purged:>9}  {r.trimmed:>9}")
    total = [sum(getattr(r, f) for r in results.values())
             for f in ("settled", "purged", "trimmed")]
    print(f"{len(results)} bandits: {total[0]} decisions settled, {total[1]} purged, "
          f"{total[2]} events trimmed")


def _demo_in_process(rounds: int, seed: int) -> None:
    from .tutorial import ThompsonSamplingBandit

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
    print(bandit.summary())
    best = max(rates, key=rates.__getitem__)
    share = bandit.arms[best].total_pulls / rounds
    oracle = rates[best] * rounds
    print("\nTrue rates (hidden from the bandit): "
          + ", ".join(f"{k}={v:.3f}" for k, v in rates.items()))
    print(f"Traffic to the best offer ({best}): {share:.1%}")
    print(f"Applications: {applied} (always-best oracle expects {oracle:.0f}, "
          f"uniform random {np.mean(TUTORIAL_RATES) * rounds:.0f})")


def main() -> None:
    """Console-script entry point."""
    app()
