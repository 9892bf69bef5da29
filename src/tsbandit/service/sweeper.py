"""The background sweeper: every worker keeps the store settled and bounded.

Each worker of the service runs one :class:`Sweeper` thread (started and stopped by the app's
lifespan). Every ``TSBANDIT_SWEEP_INTERVAL`` seconds it calls :meth:`Engine.sweep
<tsbandit.engine.Engine.sweep>` over all bandits: decisions past their reward window are
settled (with the bandit's ``default_reward``, or nothing) exactly once -- the store's claims
make that so however many workers sweep at the same moment -- then consumed decisions past
their retention are purged and the event log is trimmed to ``events_maxlen``.

The sweep runs in its own thread, never on the event loop and never in the request executor.
A failing sweep (the store is down) is logged and tried again at the next tick; it never stops
the thread or the app.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Engine, SweepResult

__all__ = ["Sweeper"]

log = logging.getLogger("tsbandit.service")


class Sweeper:
    """Run ``engine().sweep(limit=..., purge=...)`` every ``interval`` seconds in a thread.

    Parameters
    ----------
    engine
        Returns the worker's engine (called at each tick: the store opens lazily).
    interval
        Seconds between the end of one sweep and the start of the next (> 0).
    limit, purge
        Passed to :meth:`Engine.sweep <tsbandit.engine.Engine.sweep>`.
    """

    def __init__(self, engine: Callable[[], Engine], interval: float, *, limit: int = 1000,
                 purge: bool = True) -> None:
        self._engine = engine
        self.interval = float(interval)
        self.limit = int(limit)
        self.purge = bool(purge)
        self.runs = 0  #: sweeps completed
        self.failures = 0  #: sweeps that raised
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> dict[str, SweepResult]:
        """One sweep now, in the calling thread."""
        out = self._engine().sweep(limit=self.limit, purge=self.purge)
        settled = sum(r.settled for r in out.values())
        purged = sum(r.purged for r in out.values())
        trimmed = sum(r.trimmed for r in out.values())
        if settled or purged or trimmed:
            log.info("sweep: %d decisions settled, %d purged, %d events trimmed",
                     settled, purged, trimmed)
        return out

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
                self.runs += 1
            except Exception as exc:  # the store is down, a bandit is broken...: next tick
                self.failures += 1
                if self._stop.is_set():
                    return  # shutting down: the store may be closed under us
                log.warning("sweep failed (%s: %s); retrying in %.3g s",
                            type(exc).__name__, exc, self.interval)

    def start(self) -> None:
        """Start the thread (a daemon: it never holds the process up)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="tsbandit-sweeper",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait up to ``timeout`` seconds for a sweep under way."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()
