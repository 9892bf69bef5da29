"""``tsbandit export`` and ``tsbandit sweep``: offline work on a store, through the engine.

Exit codes: 2 when the store URL is refused, 1 when the engine refuses the operation.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ._options import engine_on, store_option

__all__ = ["export", "sweep"]


def export(
    name: str = typer.Argument(..., help="The bandit's name in the store."),
    store: str = store_option(),
    out: str = typer.Option("-", help="Write the bandit here (Bandit.to_dict() JSON); "
                            "- for standard output."),
    events: str | None = typer.Option(
        None, help="Also write its event log here, as JSON Lines (for tsbandit evaluate)."),
) -> None:
    """Write a service bandit as a library Bandit (and its event log), for offline work.

    The JSON is what `tsbandit evaluate LOG --state FILE` and `Bandit.from_dict` read: the
    bandit's arms, model, rule and current statistics. Nothing in the store changes.
    """
    with engine_on(store) as engine:
        text = json.dumps(engine.to_bandit(name).to_dict(), indent=1)
        if events is not None:
            with Path(events).open("w", encoding="utf-8") as fp:
                n = engine.export_events(name, fp)
            typer.echo(f"{n} events of {name!r} written to {events}", err=True)
    if out == "-":
        typer.echo(text)
    else:
        Path(out).write_text(text + "\n", encoding="utf-8")
        typer.echo(f"bandit {name!r} written to {out}", err=True)


def sweep(
    store: str = store_option(),
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
    options = {k: v for k, v in (("retention", retention), ("events_maxlen", events_maxlen))
               if v is not None}
    with engine_on(store, **options) as engine:
        results = engine.sweep(bandit, limit=limit, purge=purge)
    width = max([len("bandit"), *(len(n) for n in results)])
    typer.echo(f"{'bandit':<{width}}  {'settled':>9}  {'purged':>9}  {'trimmed':>9}")
    for name, r in results.items():
        typer.echo(f"{name:<{width}}  {r.settled:>9}  {r.purged:>9}  {r.trimmed:>9}")
    total = [sum(getattr(r, f) for r in results.values())
             for f in ("settled", "purged", "trimmed")]
    typer.echo(f"{len(results)} bandits: {total[0]} decisions settled, {total[1]} purged, "
               f"{total[2]} events trimmed")
