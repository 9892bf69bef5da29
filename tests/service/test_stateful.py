"""Stateful property test: random sequences of API calls keep the books exact.

Hypothesis drives bandit creation, decisions, rewards (valid, repeated, out of domain, late),
arm changes and deletions through the HTTP API; after every step the per-arm pulls and
successes the service reports must equal what the model of the test counted, and no answer is
a 5xx or leaves the error shape.
"""

from __future__ import annotations

import warnings

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")

from fastapi.testclient import TestClient  # noqa: E402

from tsbandit.engine import Engine  # noqa: E402
from tsbandit.service import Settings, create_app  # noqa: E402
from tsbandit.stores.memory import MemoryStore  # noqa: E402

from .conftest import FakeClock  # noqa: E402

ARM_NAMES = st.sampled_from(["a", "b", "c", "d", "e"])
WINDOW = 100.0


class ApiMachine(RuleBasedStateMachine):
    decisions = Bundle("decisions")

    @initialize()
    def start(self) -> None:
        self.clock = FakeClock()
        engine = Engine(MemoryStore(), seed=0, clock=self.clock)
        app = create_app(Settings(store="memory://", default_bandit=False), engine=engine)
        self.client = TestClient(app)
        r = self.client.post("/v1/bandits", json={"name": "b", "arms": ["a", "b"],
                                                   "reward_window": WINDOW})
        assert r.status_code == 201
        self.arms: dict[str, list[int]] = {"a": [0, 0], "b": [0, 0]}  # arm -> [pulls, wins]
        self.incarnation: dict[str, int] = {"a": 0, "b": 0}  # bumped when an arm is re-added
        self.rewarded: set[str] = set()
        self.exists = True
        self.generation = 0  # bumped when the bandit is deleted: older decisions are gone

    def teardown(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, body: object = None):
        r = self.client.request(method, path, json=body)
        assert r.status_code < 500, r.text
        if r.status_code >= 400:
            assert set(r.json()) == {"error"} and r.json()["error"]["code"], r.text
        return r

    @rule(target=decisions, k=st.integers(1, 3))
    def decide(self, k: int):
        r = self.call("POST", "/v1/bandits/b/decisions", {"k": k})
        if not self.exists:
            assert r.status_code == 404
            return "b~" + "f" * 32
        if k > len(self.arms):
            assert r.status_code == 422
            return "b~" + "e" * 32
        assert r.status_code == 200
        d = r.json()
        assert d["arm"] in self.arms and len(d["ranking"]) == k
        return (d["decision_id"], d["arm"], d["deadline"], self.generation,
                self.incarnation[d["arm"]])

    @rule(d=decisions, reward=st.sampled_from([0, 1, 1.0, 0.5, 2, -1]))
    def reward(self, d, reward) -> None:
        if isinstance(d, str):  # a decision that was never made
            r = self.call("POST", "/v1/bandits/b/rewards", {"decision_id": d, "reward": 1})
            assert r.status_code == 404
            return
        did, arm, deadline, generation, incarnation = d
        r = self.call("POST", "/v1/bandits/b/rewards", {"decision_id": did, "reward": reward})
        if not self.exists:
            assert r.status_code == 404
        elif reward not in (0, 1):  # the bandit exists: its reward domain is checked first
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_reward"
        elif generation != self.generation:  # made before the bandit was deleted
            assert r.status_code == 404
        elif did in self.rewarded:
            assert r.status_code == 200 and r.json()["duplicate"] is True
        elif self.clock() > deadline:
            assert r.status_code == 410
        else:
            self.rewarded.add(did)
            if arm in self.arms and self.incarnation[arm] == incarnation:
                assert r.status_code == 200 and r.json()["status"] == "applied", r.text
                self.arms[arm][0] += 1
                self.arms[arm][1] += int(reward)
            else:  # retired since the decision (maybe re-added): consumed, not learned
                assert r.status_code == 200 and r.json()["status"] == "arm_retired", r.text

    @rule(arm=ARM_NAMES)
    def add_arm(self, arm: str) -> None:
        r = self.call("POST", "/v1/bandits/b/arms", {"arm": arm})
        if not self.exists:
            assert r.status_code == 404
        elif arm in self.arms:
            assert r.status_code == 409
        else:
            assert r.status_code == 201
            self.arms[arm] = [0, 0]
            self.incarnation[arm] = self.incarnation.get(arm, 0) + 1

    @rule(arm=ARM_NAMES)
    def retire_arm(self, arm: str) -> None:
        r = self.call("DELETE", f"/v1/bandits/b/arms/{arm}")
        if not self.exists:
            assert r.status_code == 404
        elif arm not in self.arms:
            assert r.status_code == 404
        elif len(self.arms) == 1:
            assert r.status_code == 409
        else:
            assert r.status_code == 200
            del self.arms[arm]

    @rule(seconds=st.sampled_from([1.0, 30.0, WINDOW + 1]))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def delete_and_recreate(self) -> None:
        r = self.call("DELETE", "/v1/bandits/b")
        assert r.status_code == (204 if self.exists else 404)
        self.exists = False
        r = self.call("POST", "/v1/bandits", {"name": "b", "arms": ["a", "b"],
                                              "reward_window": WINDOW})
        assert r.status_code == 201
        self.exists = True
        self.arms = {"a": [0, 0], "b": [0, 0]}
        self.incarnation = {"a": 0, "b": 0}
        self.rewarded = set()
        self.generation += 1

    @invariant()
    def books_balance(self) -> None:
        if not hasattr(self, "client"):
            return
        r = self.call("GET", "/v1/bandits/b/stats")
        assert r.status_code == 200
        got = {row["arm"]: [row["pulls"], row["alpha"] - 1.0] for row in r.json()["arms"]}
        assert got == {a: [float(p), float(w)] for a, (p, w) in self.arms.items()}


ApiMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None,
                                        suppress_health_check=list(HealthCheck))
test_api_state_machine = ApiMachine.TestCase
