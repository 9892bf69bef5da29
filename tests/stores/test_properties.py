"""Property: any sequence of adds, rewards, scales and decays leaves every store with the same
float64 bits as a plain numpy computation (so a bandit behaves the same on every store)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tsbandit.stores import MemoryStore, Store

from .conftest import SHARED_KINDS, make_backend

K = 3
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def deltas(draw):  # type: ignore[no-untyped-def]
    rows = draw(st.lists(st.booleans(), min_size=K, max_size=K))  # arms left untouched
    mask = np.array(rows, dtype=float)
    n = draw(arrays(np.float64, (K,), elements=finite)) * mask
    b = draw(arrays(np.float64, (K, 2), elements=finite)) * mask[:, None]
    return {"n": n, "b": b}


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), deltas()),
        st.tuples(st.just("reward"), deltas()),
        st.tuples(st.just("scale"), st.floats(0.0, 2.0)),
        st.tuples(st.just("decay"), st.floats(0.1, 100.0), st.floats(-5.0, 50.0)),
    ),
    max_size=12,
)


def _apply(store: Store, name: str, seq: list) -> None:
    now = 1000.0
    for i, op in enumerate(seq):
        if op[0] == "add":
            store.add(name, op[1])
        elif op[0] == "reward":
            store.put_pending(name, f"d{i}", {}, 1e12)
            store.apply_reward(name, f"d{i}", op[1], None, now)
        elif op[0] == "scale":
            store.scale(name, op[1])
        else:
            now += op[2]
            store.decay(name, op[1], now)


def _reference(seq: list) -> dict[str, np.ndarray]:
    out = {"n": np.zeros(K), "b": np.zeros((K, 2))}
    now, last = 1000.0, None
    for op in seq:
        if op[0] in ("add", "reward"):
            for k in out:
                out[k] = out[k] + op[1][k]
        elif op[0] == "scale":
            out = {k: v * op[1] for k, v in out.items()}
        else:
            now += op[2]
            if last is not None and now > last:
                g = 0.5 ** ((now - last) / op[1])
                if g != 1.0:
                    out = {k: v * g for k, v in out.items()}
            if last is None or now > last:
                last = now
    return out


@pytest.fixture(scope="module", params=SHARED_KINDS)
def other(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    backend = make_backend(request.param, request, tmp_path_factory.mktemp("prop"))
    yield backend.open()
    backend.close()


_names = itertools.count()


@example(
    seq=[
        ("add", {"n": np.array([-1.0, 0, 0]), "b": np.zeros((K, 2))}),
        ("scale", 0.0),
        ("add", {"n": np.zeros(K), "b": np.ones((K, 2))}),
    ]
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(seq=ops)
def test_every_store_computes_the_same_bits(other: Store, seq: list) -> None:
    name = f"p{next(_names)}"
    memory = MemoryStore()
    for store in (memory, other):
        store.create_bandit(name, {}, {"n": np.zeros(K), "b": np.zeros((K, 2))})
        _apply(store, name, seq)
    want = _reference(seq)
    a, b = memory.read(name), other.read(name)
    assert a.version == b.version
    for k, v in want.items():
        # "+ 0.0" equates -0.0 and 0.0: Redis skips all-zero delta rows, numpy adds them
        assert (a.arrays[k] + 0.0).tobytes() == (v + 0.0).tobytes(), k
        assert (b.arrays[k] + 0.0).tobytes() == (v + 0.0).tobytes(), k
    other.delete_bandit(name)
