"""The one exception tree of tsbandit.

Every error the library raises on purpose derives from :class:`TsbanditError`, and also from the
builtin that fits (``ValueError`` for bad values, ``KeyError`` for unknown names), so callers may
catch either. The service maps each class to one HTTP status and one stable ``code``.

::

    TsbanditError
    ├── ConfigurationError (ValueError)            400 invalid_configuration
    │   ├── InvalidSplitError                      a report's intended split (the service: 422)
    │   └── WarmStartError                         a warm start's statistics, counts or weight
    ├── InvalidRewardError (ValueError)            422 invalid_reward
    │   ├── UnknownMetricError (KeyError)          422 unknown_metric
    │   └── GivenNotMetError                       422 given_not_met
    ├── GivenNotObservedError (ValueError)         409 given_not_observed
    ├── InvalidContextError (ValueError)           422 invalid_context
    │   └── CustomerFieldError                     a raw customer field of the lab's offers
    ├── ArmError
    │   ├── UnknownArmError (KeyError)             404 unknown_arm
    │   ├── DuplicateArmError (ValueError)         409 duplicate_arm
    │   ├── EligibilityError (ValueError)          422 invalid_eligible_arms
    │   └── LastArmError (ValueError)              409 last_arm
    ├── SerializationError (ValueError)            400 invalid_state
    │   └── InvalidLogError                        400 invalid_log
    ├── BanditNotFoundError (KeyError)             404 bandit_not_found
    ├── BanditExistsError (ValueError)             409 bandit_exists
    ├── DecisionNotFoundError (KeyError)           404 decision_not_found
    ├── DecisionExpiredError (ValueError)          410 decision_expired
    ├── DecisionExistsError (ValueError)           409 decision_exists
    ├── IdempotencyConflictError (ValueError)      409 idempotency_conflict
    ├── VersionConflictError (ValueError)          409 version_conflict
    ├── StoreUnavailableError (ConnectionError)    503 store_unavailable
    ├── AuthenticationError (PermissionError)      401 unauthorized
    ├── PayloadTooLargeError (ValueError)          413 payload_too_large
    ├── ArmMismatchError (ValueError)              409 arm_mismatch
    ├── SchemaError (KeyError)                     the OpenAPI document lost a field (a bug)
    └── ClientError                                raised client-side (tsbandit.client, the demo)
        ├── ServiceError                           an answer whose code names no class above
        │   └── InvalidRequestError (ValueError)   the service refused the request's shape
        ├── ServiceConnectionError (ConnectionError)   no answer (connection_error)
        │   └── ServiceTimeoutError (TimeoutError)     no answer in time (timeout)
        └── RewardFlushError                       buffered rewards not recorded

Examples
--------
>>> from tsbandit.errors import UnknownArmError
>>> try:
...     raise UnknownArmError("unknown arm 'x'; known arms: ['a', 'b']")
... except KeyError as exc:
...     print(exc)
unknown arm 'x'; known arms: ['a', 'b']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ArmError",
    "ArmMismatchError",
    "AuthenticationError",
    "BanditExistsError",
    "BanditNotFoundError",
    "ClientError",
    "ConfigurationError",
    "CustomerFieldError",
    "DecisionExistsError",
    "DecisionExpiredError",
    "DecisionNotFoundError",
    "DuplicateArmError",
    "EligibilityError",
    "GivenNotMetError",
    "GivenNotObservedError",
    "IdempotencyConflictError",
    "InvalidContextError",
    "InvalidLogError",
    "InvalidRequestError",
    "InvalidRewardError",
    "InvalidSplitError",
    "LastArmError",
    "PayloadTooLargeError",
    "RewardFlushError",
    "SchemaError",
    "SerializationError",
    "ServiceConnectionError",
    "ServiceError",
    "ServiceTimeoutError",
    "StoreUnavailableError",
    "TsbanditError",
    "UnknownArmError",
    "UnknownMetricError",
    "VersionConflictError",
    "WarmStartError",
]


class TsbanditError(Exception):
    """Base class of every error tsbandit raises on purpose.

    ``code`` is the stable machine-readable name the service puts in its JSON errors and
    ``http_status`` the status it answers with.
    """

    code: str = "error"
    http_status: int = 400

    def __str__(self) -> str:
        # KeyError's own __str__ would wrap the message in quotes; messages are for people.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class ConfigurationError(TsbanditError, ValueError):
    """A hyper-parameter or prior is invalid (``epsilon == 1.2, must be <= 1``)."""

    code = "invalid_configuration"
    http_status = 400


class InvalidSplitError(ConfigurationError):
    """The intended split of an experiment report is malformed (not one finite weight > 0 per
    arm). The service answers it as the bad query value it is: 422 ``invalid_request``."""


class WarmStartError(ConfigurationError):
    """A warm start cannot be built: statistics of another model's layout, A/B counts that are
    negative or inconsistent (successes above trials), a weight outside ``(0, 1]``, an arm map
    that names no arm."""


class InvalidRewardError(TsbanditError, ValueError):
    """A reward is outside the model's domain (not 0/1 for a Beta model, NaN, infinite)."""

    code = "invalid_reward"
    http_status = 422


class UnknownMetricError(InvalidRewardError, KeyError):
    """A reward (or an objective, a constraint) names a metric the bandit does not declare."""

    code = "unknown_metric"


class GivenNotMetError(InvalidRewardError):
    """A reward for a metric declared ``given`` another binary metric, for a decision where
    that metric was 0: the metric is observed only when its ``given`` metric is 1."""

    code = "given_not_met"


class GivenNotObservedError(TsbanditError, ValueError):
    """A reward for a metric declared ``given`` another, for a decision whose ``given`` metric
    has not been observed yet: send that metric first, or in the same request."""

    code = "given_not_observed"
    http_status = 409


class InvalidContextError(TsbanditError, ValueError):
    """A context has the wrong shape, or holds NaN or infinite values."""

    code = "invalid_context"
    http_status = 422


class CustomerFieldError(InvalidContextError):
    """A raw customer field (the lab's credit-card offers world) is missing, unknown, not a
    number or out of range. ``field`` names it (and ``index`` the customer, for column input).
    """

    def __init__(self, message: str, field: str, index: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.index = index


class ArmError(TsbanditError):
    """Base class of errors about arm names and arm sets."""


class UnknownArmError(ArmError, KeyError):
    """An arm name (or index) that the bandit does not have."""

    code = "unknown_arm"
    http_status = 404


class DuplicateArmError(ArmError, ValueError):
    """An arm name given twice, or an empty arm name or arm list."""

    code = "duplicate_arm"
    http_status = 409


class EligibilityError(ArmError, ValueError):
    """The eligible arms of a request are empty, unknown, or fewer than ``k``."""

    code = "invalid_eligible_arms"
    http_status = 422


class LastArmError(ArmError, ValueError):
    """Removing the last remaining arm of a bandit."""

    code = "last_arm"
    http_status = 409


class SerializationError(TsbanditError, ValueError):
    """Serialized state that cannot be read (unknown format version, wrong shapes)."""

    code = "invalid_state"
    http_status = 400


class InvalidLogError(SerializationError):
    """A logged-data file or array that off-policy evaluation cannot use: malformed records,
    impossible propensities, unequal lengths (library and ``tsbandit evaluate``)."""

    code = "invalid_log"


class BanditNotFoundError(TsbanditError, KeyError):
    """No bandit of that name in the store."""

    code = "bandit_not_found"
    http_status = 404


class BanditExistsError(TsbanditError, ValueError):
    """A bandit of that name already exists."""

    code = "bandit_exists"
    http_status = 409


class DecisionNotFoundError(TsbanditError, KeyError):
    """A reward for a decision id that was never issued (or was already swept away)."""

    code = "decision_not_found"
    http_status = 404


class DecisionExpiredError(TsbanditError, ValueError):
    """A reward arrived after its decision's reward window closed."""

    code = "decision_expired"
    http_status = 410


class DecisionExistsError(TsbanditError, ValueError):
    """A pending decision with that id already exists (decision ids must be unique)."""

    code = "decision_exists"
    http_status = 409


class IdempotencyConflictError(TsbanditError, ValueError):
    """An idempotency key reused for a different request (other context, arms, ``k``, users,
    count), or whose decisions were partly purged; use a new key."""

    code = "idempotency_conflict"
    http_status = 409


class VersionConflictError(TsbanditError, ValueError):
    """The bandit's configuration changed since the caller read it; re-read and retry."""

    code = "version_conflict"
    http_status = 409


class StoreUnavailableError(TsbanditError, ConnectionError):
    """The state store cannot be reached or cannot take writes now. On a write the outcome is
    "not known to be applied": a timeout may strike after the store applied it, and a Redis
    store with ``min_replicas`` raises it for a write the primary applied but not enough
    replicas acknowledged. Retry: a reward with the same decision id, a decision with the same
    idempotency key (both are applied at most once)."""

    code = "store_unavailable"
    http_status = 503


class AuthenticationError(TsbanditError, PermissionError):
    """A mutating request without the right ``Authorization: Bearer <key>`` (service)."""

    code = "unauthorized"
    http_status = 401


class PayloadTooLargeError(TsbanditError, ValueError):
    """A request body larger than the service accepts (service)."""

    code = "payload_too_large"
    http_status = 413


class ArmMismatchError(TsbanditError, ValueError):
    """A tutorial ``/reward`` names another arm than the customer was recommended (service)."""

    code = "arm_mismatch"
    http_status = 409


class SchemaError(TsbanditError, KeyError):
    """The OpenAPI document lacks a schema or field the service writes its limits into: a
    request model changed shape (a bug, raised when the document is built)."""


# Short aliases used in the issue texts and the engine's docs.
DecisionNotFound = DecisionNotFoundError
DecisionExpired = DecisionExpiredError


# ----- the Python client's side (tsbandit.client) -------------------------------------------
class ClientError(TsbanditError):
    """Raised on the client's side (:mod:`tsbandit.client`, the demo's local service): what
    happened between the client and the service. The service never answers with these (they
    have no row in its error table)."""

    code = "client_error"


class ServiceError(ClientError):
    """An error answer whose ``code`` names no class of this tree (``internal_error``,
    ``not_found``, a proxy's 502...); ``http_status`` and ``code`` are the answer's."""

    def __init__(self, detail: str, *, status: int, code: str) -> None:
        super().__init__(detail)
        self.http_status = status
        self.code = code


class InvalidRequestError(ServiceError, ValueError):
    """The service refused the request's shape (``invalid_request``, ``malformed_json``...)."""


class ServiceConnectionError(ClientError, ConnectionError):
    """The service could not be reached (after the retries that were safe)."""

    code = "connection_error"


class ServiceTimeoutError(ServiceConnectionError, TimeoutError):
    """The service did not answer within the client's timeout."""

    code = "timeout"


class RewardFlushError(ClientError):
    """Rewards of a buffer that the service refused or never got; ``failures`` holds them
    (:class:`tsbandit.client.RewardOutcome` records)."""

    code = "reward_flush_failed"

    def __init__(self, failures: Sequence[Any]) -> None:
        first = failures[0]
        super().__init__(f"{len(failures)} buffered reward(s) not recorded; first: "
                         f"{first.decision_id}: {first.error}")
        self.failures = list(failures)

