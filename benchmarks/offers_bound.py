"""How good can any learner be on the tutorial's offer world (Part 8)? Ceilings, measured.

Usage::

    python benchmarks/offers_bound.py                 # everything (~3 minutes)
    python benchmarks/offers_bound.py --runs 100 --seeds 3

The ``offers`` scenario shows each of its four customer profiles about 750 times in 3000
rounds (``N_k ~ Binomial(3000, 1/4)``); every customer of a profile has the same features, so
there are four contexts in all. Four tables:

1. *The world*: each profile's best offer, its rate and its margin over the runner-up; for
   ``customers="around"`` (random customers around the profiles) the distribution of that
   margin over customers.
2. *Top-two genie* (exact, :func:`tsbandit.lab.bounds.top_two_value`): a learner told the
   profile, which two offers are its best two and both their rates, who only has to find out
   which is which. Its Bayes-optimal optimal-arm rate, averaged over ``N_k``. Every real
   policy knows less; averaged over the world and the worlds with a profile's two best offers
   swapped (each is again a linear world of the same form: four independent contexts in 11
   dimensions fit any rate table), none can do better.
3. *Told the profile* (simulated): each profile's five offers as a separate Bernoulli bandit
   of 750 rounds (priors x tempered Thompson sampling and greedy).
4. *Told the true functional form* (simulated): per-offer Bayesian linear regression on only
   the features the true model uses (intercept + 1-2 features per offer), prior centred on 0
   or on a base rate of 0.07, Thompson sampling at several posterior scales. Each run of this
   table is 200 trials x 3000 rounds; mean over seeds.

``--shared`` adds a fifth table, a generic learner (no extra information): linear TS with
weights shared across offers, ``w_k = w_0 + delta_k`` (prior ``w_0 ~ N(0, s0 I)``,
``delta_k ~ N(0, s1 I)``, one joint Gaussian per trial), with and without centred features.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import binom

import harness
from harness import markdown_header, markdown_row
from tsbandit.lab import BernoulliArms, OfferWorld, PolicySpec, simulate
from tsbandit.lab.bounds import top_two_value
from tsbandit.lab.offers import (
    CUSTOMER_PROFILES,
    OFFERS,
    build_customer_context,
    build_features,
    true_conversion_rates,
)
from tsbandit.policies import BetaBernoulli, Greedy, ThompsonSampling

ROUNDS, PROFILES = 3000, 4


def world_table(world: OfferWorld) -> None:
    rates = world.oracle_profile_rates()
    print(markdown_header("profile", "best offer", "rate", "runner-up", "rate", "margin"))
    for name, r in zip(world.profile_names, rates, strict=True):
        o = np.argsort(r)[::-1]
        print(markdown_row(name, OFFERS[o[0]], f"{r[o[0]]:.4f}", OFFERS[o[1]], f"{r[o[1]]:.4f}",
                           f"{r[o[0]] - r[o[1]]:.4f}"))
    print(f"oracle conversion {rates.max(axis=1).mean():.4f}, uniform random "
          f"{rates.mean():.4f}")
    around = OfferWorld("around")
    raw = around.sample_customers(np.random.default_rng(0), 200_000)
    prof = raw.pop("profile").astype(int)
    r = np.sort(true_conversion_rates(build_features(raw)), axis=1)
    gap = r[:, -1] - r[:, -2]
    print("\nrandom customers around the profiles (200,000): margin best - runner-up")
    print(markdown_header("profile", "p10", "median", "p90",
                          "share of customers with margin < 0.01"))
    for k, name in enumerate(world.profile_names):
        g = gap[prof == k]
        print(markdown_row(name, f"{np.quantile(g, 0.1):.4f}", f"{np.median(g):.4f}",
                           f"{np.quantile(g, 0.9):.4f}", f"{np.mean(g < 0.01):.1%}"))


def genie_table(world: OfferWorld) -> None:
    rates = world.oracle_profile_rates()
    n_max = 900                                   # P(N_k > 900) ~ 1e-10
    w = binom.pmf(np.arange(n_max + 1), ROUNDS, 1 / PROFILES)
    total_correct, total_reward = 0.0, 0.0
    print(markdown_header("profile", "p", "q", "optimal-arm rate (N = 750)", "E over N_k",
                          "conversion"))
    for name, r in zip(world.profile_names, rates, strict=True):
        p, q = np.sort(r)[::-1][:2]
        v = top_two_value(float(p), float(q), n_max,
                          max_successes=int(p * n_max + 8 * np.sqrt(p * n_max)) + 5)
        correct = float(np.sum(w * v))           # expected correct picks of this profile
        n_mean = ROUNDS / PROFILES
        reward = q * n_mean + (p - q) * correct
        total_correct += correct
        total_reward += reward
        print(markdown_row(name, f"{p:.4f}", f"{q:.4f}", f"{v[750] / 750:.1%}",
                           f"{correct / n_mean:.1%}", f"{reward / n_mean:.4f}"))
    print(markdown_row("**all customers**", "", "", "", f"**{total_correct / ROUNDS:.2%}**",
                       f"**{total_reward / ROUNDS:.4f}**"))


def told_profile_table(world: OfferWorld, runs: int) -> None:
    rates = world.oracle_profile_rates()
    policies = []
    for a0, b0 in ((1.0, 1.0), (0.5, 5.0), (1.0, 10.0)):
        for scale in (1.0, 0.5, 0.3):
            policies.append(PolicySpec(f"Beta({a0:g},{b0:g}) TS scale {scale:g}",
                                       BetaBernoulli(a0, b0), ThompsonSampling(scale=scale)))
        policies.append(PolicySpec(f"Beta({a0:g},{b0:g}) greedy", BetaBernoulli(a0, b0),
                                   Greedy()))
    table: dict[str, list[float]] = {}
    for k, r in enumerate(rates):
        res = simulate(BernoulliArms(r), policies, runs, ROUNDS // PROFILES, seed=k,
                       decompose=False)
        for name, run in res.policies.items():
            table.setdefault(name, []).append(float(run.optimal.mean() / (ROUNDS // PROFILES)))
    print(f"optimal-arm rate, {runs} runs x {ROUNDS // PROFILES} rounds per profile")
    print(markdown_header("learner told the profile", *world.profile_names, "average"))
    for name, vals in sorted(table.items(), key=lambda kv: -np.mean(kv[1])):
        print(markdown_row(name, *(f"{v:.1%}" for v in vals), f"{np.mean(vals):.1%}"))


def true_form_run(world: OfferWorld, prior_var: float, noise: float, scale: float,
                  base: float, seed: int, trials: int = 200) -> tuple[float, float]:
    """Per-offer linear TS on the features the true model uses (the others masked to 0).

    Draws ``x . m + scale * sqrt(x^T S x) * z`` (the exact predictive draw of a Gaussian
    weight posterior), Sherman-Morrison updates of the covariance ``S``."""
    rng = np.random.default_rng(seed)
    X = np.stack([build_customer_context(c) for c in CUSTOMER_PROFILES.values()])
    rates = world.oracle_profile_rates()
    coef = world.oracle_coefficients()
    K, d = coef.shape
    mask = (coef != 0).astype(float)
    mask[:, -1] = 1.0                              # the intercept
    Xk = X[:, None, :] * mask[None]                # (profiles, K, d)
    S = np.broadcast_to(np.eye(d) * prior_var, (trials, K, d, d)).copy()
    m = np.zeros((trials, K, d))
    m[:, :, -1] = base
    lanes = np.arange(trials)
    best = rates.argmax(axis=1)
    correct = reward = 0.0
    for _ in range(ROUNDS):
        prof = rng.integers(0, PROFILES, trials)
        x = Xk[prof]
        Sx = np.einsum("lkij,lkj->lki", S, x)
        v = np.einsum("lki,lki->lk", x, Sx)
        mu = np.einsum("lki,lki->lk", x, m)
        ch = np.argmax(mu + scale * np.sqrt(v) * rng.standard_normal((trials, K)), axis=1)
        r = (rng.random(trials) < rates[prof, ch]).astype(float)
        correct += float(np.sum(ch == best[prof]))
        reward += float(r.sum())
        sx, c = Sx[lanes, ch], v[lanes, ch] + noise
        m[lanes, ch] += sx * ((r - mu[lanes, ch]) / c)[:, None]
        S[lanes, ch] -= sx[:, :, None] * sx[:, None, :] / c[:, None, None]
    return correct / (trials * ROUNDS), reward / (trials * ROUNDS)


def true_form_table(world: OfferWorld, seeds: int) -> None:
    print(f"per-offer linear TS on the true features, 200 trials x {ROUNDS} rounds, "
          f"{seeds} seeds (mean +- sd over seeds)")
    print(markdown_header("prior variance", "noise variance", "intercept prior mean",
                          "posterior scale", "optimal-arm rate", "conversion"))
    for pv, nz, base, sc in ((2.0, 0.05, 0.0, 1.0), (1.0, 0.1, 0.0, 1.0),
                             (1.0, 0.1, 0.0, 0.5), (1.0, 0.1, 0.07, 0.5),
                             (10.0, 0.1, 0.0, 0.5), (0.1, 0.1, 0.07, 0.5),
                             (1.0, 0.1, 0.0, 0.25)):
        res = np.array([true_form_run(world, pv, nz, sc, base, s) for s in range(seeds)])
        sd = res[:, 0].std(ddof=1) if seeds > 1 else 0
        print(markdown_row(f"{pv:g}", f"{nz:g}", f"{base:g}", f"{sc:g}",
                           f"{res[:, 0].mean():.1%} ± {sd:.1%}", f"{res[:, 1].mean():.4f}"))


def shared_run(world: OfferWorld, s0: float, s1: float, noise: float, scale: float,
               center: bool, seed: int, trials: int = 200) -> tuple[float, float]:
    """Linear TS with weights shared across offers (``w_k = w_0 + delta_k``): the feature
    vector of offer ``k`` is ``[x, e_k (x) x]`` in ``d + K d`` dimensions."""
    rng = np.random.default_rng(seed)
    X = np.stack([build_customer_context(c) for c in CUSTOMER_PROFILES.values()])
    rates = world.oracle_profile_rates()
    K, d = rates.shape[1], X.shape[1]
    if center:
        X = X - X.mean(axis=0) * np.r_[np.ones(d - 1), 0.0]      # keep the intercept
    D = d + K * d
    Z = np.zeros((PROFILES, K, D))
    for k in range(K):
        Z[:, k, :d] = X
        Z[:, k, d + k * d:d + (k + 1) * d] = X
    S = np.broadcast_to(np.diag(np.r_[np.full(d, s0), np.full(K * d, s1)]),
                        (trials, D, D)).copy()
    m = np.zeros((trials, D))
    lanes = np.arange(trials)
    best = rates.argmax(axis=1)
    correct = reward = 0.0
    for _ in range(ROUNDS):
        prof = rng.integers(0, PROFILES, trials)
        z = Z[prof]
        Sz = np.einsum("lij,lkj->lki", S, z)
        v = np.einsum("lki,lki->lk", z, Sz)
        mu = np.einsum("lki,li->lk", z, m)
        ch = np.argmax(mu + scale * np.sqrt(v) * rng.standard_normal((trials, K)), axis=1)
        r = (rng.random(trials) < rates[prof, ch]).astype(float)
        correct += float(np.sum(ch == best[prof]))
        reward += float(r.sum())
        sz, c = Sz[lanes, ch], v[lanes, ch] + noise
        m += sz * ((r - mu[lanes, ch]) / c)[:, None]
        S -= sz[:, :, None] * sz[:, None, :] / c[:, None, None]
    return correct / (trials * ROUNDS), reward / (trials * ROUNDS)


def shared_table(world: OfferWorld, seeds: int) -> None:
    print(f"shared-weights linear TS, 200 trials x {ROUNDS} rounds, {seeds} seeds")
    print(markdown_header("s0", "s1", "noise variance", "posterior scale", "centred",
                          "optimal-arm rate", "conversion"))
    for s0, s1, nz, sc, ce in ((1.0, 1.0, 0.05, 1.0, False), (2.0, 0.5, 0.1, 0.5, False),
                               (1.0, 1.0, 0.1, 0.5, True)):
        res = np.array([shared_run(world, s0, s1, nz, sc, ce, s) for s in range(seeds)])
        print(markdown_row(f"{s0:g}", f"{s1:g}", f"{nz:g}", f"{sc:g}", "yes" if ce else "no",
                           f"{res[:, 0].mean():.1%}", f"{res[:, 1].mean():.4f}"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300, help="runs per profile (table 3)")
    ap.add_argument("--seeds", type=int, default=5, help="seeds of tables 4 and 5")
    ap.add_argument("--shared", action="store_true", help="add the shared-weights table")
    args = ap.parse_args()
    world = OfferWorld()
    print(f"load average: {harness.load_average()}\n")
    print("### 1. the world\n")
    world_table(world)
    print("\n### 2. top-two genie (exact Bayes-optimal)\n")
    genie_table(world)
    print("\n### 3. told the profile\n")
    told_profile_table(world, args.runs)
    print("\n### 4. told the true functional form\n")
    true_form_table(world, args.seeds)
    if args.shared:
        print("\n### 5. generic learner with weights shared across offers\n")
        shared_table(world, args.seeds)
    print(f"\nload average: {harness.load_average()}")


if __name__ == "__main__":
    main()
