"""Service settings, read from ``TSBANDIT_*`` environment variables (pydantic-settings).

>>> from tsbandit.service.settings import Settings
>>> s = Settings(store="memory://", api_key="k")
>>> s.store, s.api_key.get_secret_value(), s.open_reads
('memory://', 'k', True)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["TUTORIAL_ARMS", "Settings"]

#: The tutorial's five credit-card offers (Part 9), the arms of the default bandit.
TUTORIAL_ARMS = (
    "cashback_grocery_2pct",
    "travel_miles_3x",
    "balance_transfer_0apr",
    "business_expense_card",
    "premium_rewards_500bonus",
)


class Settings(BaseSettings):
    """Everything the service reads at start-up.

    Each field is also the environment variable ``TSBANDIT_<FIELD>`` (``TSBANDIT_STORE``,
    ``TSBANDIT_API_KEY``...). Values given to the constructor win over the environment.
    """

    model_config = SettingsConfigDict(env_prefix="TSBANDIT_", extra="ignore", frozen=True)

    store: str = Field(
        default="sqlite:///tsbandit.db",
        description="State store URL: sqlite:///path.db, redis://host:port/db, rediss://..., "
        "a Redis Cluster URL, or memory:// (one process only).",
    )
    api_key: SecretStr | None = Field(
        default=None, description="When set, mutating endpoints and reads of personal data "
        "(decisions, events) need 'Authorization: Bearer <key>'."
    )
    open_reads: bool = Field(
        default=True,
        description="With an api_key: leave read-only endpoints open (False: key needed)."
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1,
        description="Larger request bodies are refused with 413 before parsing."
    )
    max_url_bytes: int = Field(
        default=8192, ge=1, le=65_535,
        description="Longer request targets (path and query) are refused with 414 "
        "uri_too_long before routing (at most 65,535: what uvicorn's parser takes).")
    max_staleness_ms: float = Field(
        default=0.0, ge=0.0,
        description="A worker may reuse a bandit snapshot this old (0: always read)."
    )
    max_batch: int = Field(default=1000, ge=1, description="Most decisions in one batch request.")
    max_arms: int = Field(default=1000, ge=1, description="Most arms a bandit may have.")
    max_features: int = Field(default=256, ge=1,
                              description="Largest context dimension of a bandit.")
    default_bandit: bool = Field(
        default=True,
        description="Create the tutorial's bandit of five credit-card offers at start-up."
    )
    default_bandit_name: str = Field(
        default="credit_card_offers",
        description="Name of the bandit behind /recommend, /reward, /stats."
    )
    tutorial_join_capacity: int = Field(
        default=100_000, ge=1,
        description="Customers whose latest /recommend this worker remembers for /reward.",
    )
    offload: bool = Field(
        default=True,
        description="Run engine calls in a thread pool (True), or on the event loop (False: "
        "less CPU per request, but a slow store stalls every request of the worker).")
    coalesce: bool = Field(
        default=True,
        description="Serve concurrent single decisions of one bandit (same eligible arms and "
        "k) that arrive while a decision of theirs is being served with one batch: one store "
        "read, one vectorized draw, one write; concurrent rewards of one bandit likewise, with "
        "one atomic store write. A lone request goes straight through.")
    fast_path: bool = Field(
        default=True,
        description="Answer the hottest routes (POST /v1/bandits/{name}/decisions, POST "
        "/v1/bandits/{name}/rewards, GET /recommend/{customer_id}, POST /reward) without "
        "FastAPI's per-request routing, dependency injection and validation when the "
        "request is of the exact shape they take; any other request, and every error, goes "
        "through the declared route (same answers).")
    gc_freeze: bool = Field(
        default=True,
        description="At start-up, after the store is open, move every object then alive out "
        "of the cyclic garbage collector's reach (gc.freeze), so collections stop rescanning "
        "the worker's long-lived objects: the collector's pauses were most of the decide p99.")
    threads: int = Field(
        default=32, ge=1, le=1024,
        description="Threads per worker for engine calls (store round trips wait there).")
    seed: int | None = Field(
        default=None,
        description="Seed of the decision stream (tests); leave unset with several workers."
    )
    docs: bool = Field(default=True, description="Serve /docs and /openapi.json.")
    blas_threads: int = Field(
        default=1, ge=0, le=1024,
        description="BLAS threads per worker (0: the library's default). Decisions use tiny "
        "matrices, where more threads only add overhead and oversubscribe the cores.")
    # ----- store lifecycle (service/sweeper.py) -----
    sweep_interval: float = Field(
        default=30.0, ge=0.0,
        description="Seconds between two runs of this worker's background sweeper: it settles "
        "decisions past their reward window (default reward, exactly once however many "
        "workers sweep), purges consumed decisions past their retention and trims the event "
        "log. 0 disables it (then run `tsbandit sweep` yourself).")
    sweep_limit: int = Field(
        default=1000, ge=1, le=100_000,
        description="Expired decisions claimed per round of a sweep (rounds repeat until one "
        "comes back short).")
    sweep_purge: bool = Field(
        default=True, description="Let the sweeper purge and trim (False: settle only).")
    retention: float | None = Field(
        default=None, ge=0.0,
        description="Seconds a consumed decision is remembered after its deadline (a repeated "
        "reward answers duplicate; afterwards the sweep purges it and a reward for it answers "
        "404 decision_not_found). Unset: 7 days. A retention= in the store URL wins.")
    events_maxlen: int | None = Field(
        default=None, ge=1,
        description="Keep about this many newest events per bandit (the sweep trims the rest; "
        "Redis also at each append). Unset: all. An events_maxlen= in the store URL wins.")
    # ----- observability (service/metrics.py, service/logs.py, service/dashboard.py) -----
    metrics: bool = Field(default=True, description="Serve Prometheus metrics at /metrics "
                          "and count decisions, rewards, latencies.")
    log_format: Literal["json", "text", "none"] = Field(
        default="json", description="Log lines on stdout: JSON objects, plain text, or none "
        "(leave logging to the host application).")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Level of the tsbandit loggers (info: one line per "
        "decision, reward and request).")
    log_requests: bool = Field(default=True,
                               description="One access-log line per request (tsbandit.access).")
    dashboard: bool = Field(default=True, description="Serve the dashboard at /dashboard.")
    dashboard_refresh_seconds: float = Field(
        default=5.0, ge=0.5, le=3600.0, description="How often the dashboard refreshes itself.")
