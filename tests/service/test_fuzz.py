"""Property-based fuzzing of the OpenAPI spec (Schemathesis), in process over ASGI, against the
service on SQLite and on Redis.

* every operation gets generated requests, valid and invalid, and every answer must pass
  **all** of Schemathesis' checks: no 5xx, a documented status, a body matching the documented
  schema, invalid data refused, valid data accepted...;
* the stateful phase chains operations through the links Schemathesis infers from the schema
  (create a bandit, decide, reward the decision, read it back...), under the same checks.

``positive_data_acceptance`` expects 400, 410 and 422 besides its defaults: a static schema
cannot say that a Beta bandit takes rewards 0 or 1 only, that a context must have the bandit's
``n_features`` numbers, or that a prior must stay within the bounds that keep its posterior
finite; schema-valid requests that break such rules are rightly refused with those statuses.
Both phases are bounded (fixed example counts, derandomized) so a run takes about a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from stores.backends import make_backend
from stores.redis_servers import env_ci
from tsbandit.engine import BanditSpec, Engine
from tsbandit.policies.registry import model_from_config
from tsbandit.service import Settings, create_app

try:
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import ensure_resource_availability
    from schemathesis.config import SchemathesisConfig
except ModuleNotFoundError:  # pragma: no cover - the dev extra installs it
    if env_ci():
        raise
    pytest.skip("schemathesis is not installed (pip install -e '.[dev]')",
                allow_module_level=True)

#: statuses a schema-valid request may get (Schemathesis' defaults plus the domain refusals;
#: 414: a schema-valid query can be longer than the longest target the service reads, 64 KiB)
ACCEPTED = ["2xx", "3xx", "400", "401", "403", "404", "409", "410", "414", "422", "429", "5xx"]
#: statuses that reject a schema-violating request (Schemathesis' defaults plus 414 for one
#: whose target is also over the URL limit: refused before its values are read)
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "414", "415", "422", "428",
            "429", "5xx"]
CONFIG = {"checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED},
                     "negative_data_rejection": {"expected-statuses": REJECTED}}}
#: examples per operation and generation mode
EXAMPLES = 10
BOUNDED = dict(deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def api_schema(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The service's schema, served by an app over a fresh SQLite file or Redis prefix with
    two bandits (Beta and linear) to find."""
    backend = make_backend(request.param, request, tmp_path)
    engine = Engine(backend.open(), seed=0)
    _reset(engine)
    app = create_app(Settings(store="memory://", seed=0, max_body_bytes=50_000_000,
                              max_url_bytes=65_535, default_bandit=False), engine=engine)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app,
                                            config=SchemathesisConfig.from_dict(CONFIG))
    schema.tsbandit_engine = engine  # for the stateful phase's per-scenario reset
    yield schema
    backend.close()


def _reset(engine: Engine) -> None:
    """The store as every scenario starts: bandits "ads" (Beta) and "lin" (linear, d = 2)."""
    for name in engine.list_bandits():
        engine.delete_bandit(name)
    engine.create_bandit(BanditSpec(name="ads", arms=["a", "b", "c"]))
    engine.create_bandit(BanditSpec(name="lin", arms=["a", "b"],
                                    model=model_from_config({"kind": "linear",
                                                             "n_features": 2})))


def test_openapi_fuzz(api_schema):
    """Every operation, valid and invalid requests (bounded), all checks."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, **BOUNDED)
            def check(case: Any) -> None:
                case.call_and_validate()

            try:
                check()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, op.label


def test_openapi_stateful(api_schema):
    """Chains of linked operations (Schemathesis' stateful phase), all checks.

    One reading is narrowed: ``ensure_resource_availability`` takes any 404 on an operation
    whose path parameters all come from a just-created resource as that resource gone. A
    reward for a made-up ``decision_id`` on a just-created bandit is such a 404, but its code
    says what is missing (``decision_not_found``: the id in the body, not the bandit), so that
    check is left out for those answers only; every other check still runs on them.
    """
    base = api_schema.as_state_machine()
    engine = api_schema.tsbandit_engine

    class Machine(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            # every scenario starts from the same store, so a failing one replays the same
            _reset(engine)

        def validate_response(self, response: Any, case: Any,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            if response.status_code == 404 and _error_code(response) == "decision_not_found":
                case.validate_response(response, additional_checks=additional_checks,
                                       excluded_checks=[ensure_resource_availability],
                                       transport_kwargs=kwargs or None, recorder=self.recorder)
                return
            super().validate_response(response, case, additional_checks, **kwargs)

    Machine.run(settings=settings(max_examples=25, stateful_step_count=8, **BOUNDED))


def _error_code(response: Any) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
