"""Tenure-week cohort centres of the agent effects (assign.learn.effects; docs/learn.md 5.4)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assign.learn.effects import EffectEstimates, fit_effects, fit_views, tenure_band, unit_weeks, week_of, week_units


def _events(rng, *, agents, effect, tenure, n=400, t0="2026-01-05"):
    """Events of ``agents`` (per event the agent's offset ``effect[a](tenure)`` on the logit)."""
    a = rng.choice(agents, n)
    ten = np.array([tenure[x] for x in a]) + rng.uniform(0, 7, n)
    m = rng.normal(0.8, 0.6, n)
    off = np.array([effect[x](t) for x, t in zip(a, ten)])
    y = (rng.random(n) < 1 / (1 + np.exp(-(m + off)))).astype(float)
    c = np.clip(np.round(3.5 + 0.7 * off + rng.normal(0, 0.8, n)), 1, 5)
    return pd.DataFrame({"decision_id": np.arange(n).astype(str),
                         "known_at": pd.Timestamp(t0, tz="UTC") + pd.to_timedelta(rng.uniform(0, 86400, n), "s"),
                         "agent_id": a, "intent": "x", "resolved": y, "csat": c, "handle_s": np.nan,
                         "pred_margin": m, "pred_csat": 3.5, "agent_tenure_days": ten})


def test_week_of_and_units():
    assert week_of([0, 6.99, 7, 13.9, 14, 27.99, 28, 400, np.nan, -1]).tolist() == [0, 0, 1, 1, 2, 3, -1, -1, -1, 0]
    ev = pd.DataFrame({"agent_id": ["a", "b", "c"], "agent_tenure_days": [3.0, 15.0, 90.0], "x": [1, 2, 3]})
    u = week_units(ev)
    assert u["agent_id"].tolist() == ["a@w0", "b@w2"] and u["x"].tolist() == [1, 2]


def test_units_leave_the_agents_totals_alone_and_hold_their_young_events():
    rng = np.random.default_rng(3)
    ev = _events(rng, agents=["a", "b", "c"], effect={k: (lambda t: 0.0) for k in "abc"},
                 tenure={"a": 0.0, "b": 10.0, "c": 300.0})
    plain, weeks = EffectEstimates(), EffectEstimates(tenure_weeks=True)
    for part in np.array_split(rng.permutation(len(ev)), 4):
        plain.observe(ev.iloc[part].reset_index(drop=True))
        weeks.observe(ev.iloc[part].reset_index(drop=True))
    p, w = plain.current().totals(["a", "b", "c"]), weeks.current().totals(["a", "b", "c"])
    for k in p:
        assert np.allclose(p[k], w[k], rtol=1e-12, atol=1e-12)
    units, uw = unit_weeks(weeks.current())
    assert sorted(units) == ["a@w0", "b@w1", "b@w2"] and all(int(u[-1]) == k for u, k in zip(units, uw))
    ut = weeks.current().totals(units)
    for u in units:  # a unit's totals: its agent's events of that week, nothing else
        agent, k = u.split("@w")
        sub = ev[(ev["agent_id"] == agent) & (week_of(ev["agent_tenure_days"]) == int(k))]
        one = EffectEstimates()
        one.observe(sub.reset_index(drop=True))
        ref = one.current().totals([agent])
        got = {key: ut[key][units.index(u)] for key in ut}
        decay = 2.0 ** (-(ev["known_at"].max() - sub["known_at"].max()).total_seconds() / one.half_life_s)
        for key in ref:
            assert np.allclose(got[key], ref[key][0] * decay, rtol=1e-9, atol=1e-12)


def _week_mean_by_hand(y, noise, sigma):
    """Gaussian posterior mean of a week's mean effect, prior N(0, sigma), units y_i ~ N(mu, sigma + diag(noise_i))."""
    prec, rhs = np.linalg.inv(sigma), np.zeros(2)
    for yi, ni in zip(y, noise):
        p = np.linalg.inv(sigma + np.diag(ni))
        prec, rhs = prec + p, rhs + p @ yi
    cov = np.linalg.inv(prec)
    return cov @ rhs, cov


def test_a_new_agent_sits_at_its_weeks_mean():
    rng = np.random.default_rng(4)
    k = 40
    y = rng.normal(0, 0.4, (k, 2))
    noise = np.full((k, 2), 0.02)
    cohort = np.zeros(k + 1, np.int64)
    uy = np.r_[rng.normal(-1.0, 0.1, (6, 2)), rng.normal(-0.2, 0.1, (6, 2))]
    un, uw = np.full((12, 2), 0.01), np.r_[np.zeros(6), np.ones(6)].astype(np.int64)
    yy, nn = np.r_[y, [[0.0, 0.0]]], np.r_[noise, [[np.inf, np.inf]]]
    base = fit_views(yy, nn, cohort=cohort, n_obs=np.r_[np.ones(k), 0])
    wk = np.r_[-np.ones(k, np.int64), 0]
    got = fit_views(yy, nn, cohort=cohort, n_obs=np.r_[np.ones(k), 0], centre=(wk, uy, un, uw))
    ref, ref_cov = _week_mean_by_hand(uy[:6], un[:6], base.sigma)
    assert got.mean[-1] == pytest.approx(ref[0], abs=1e-9)
    assert got.var[-1] == pytest.approx(base.sigma[0, 0] + ref_cov[0, 0], abs=1e-9)
    assert got.mean[-1] < base.mean[-1] - 0.5  # the week-0 units are worse than the cohort
    assert np.allclose(got.mean[:k], base.mean[:k]) and np.allclose(got.sigma, base.sigma)
    none = fit_views(yy, nn, cohort=cohort, n_obs=np.r_[np.ones(k), 0], centre=(-np.ones(k + 1, np.int64), uy, un, uw))
    assert np.allclose(none.mean, base.mean) and np.allclose(none.var, base.var)


def test_a_hire_starts_at_the_earlier_cohorts_first_week_not_its_average():
    """Earlier hires improve over their first weeks; a new hire (no outcome yet) is placed at
    their first week's effect, below their average over all their weeks."""
    rng = np.random.default_rng(5)
    past = [f"p{i}" for i in range(8)]
    tenured = [f"t{i}" for i in range(24)]
    ab = {a: rng.normal(0, 0.3) for a in past + tenured}
    effect = {a: (lambda t, b=ab[a]: b - 1.0 * np.exp(-t / 7.0)) for a in past}
    effect |= {a: (lambda t, b=ab[a]: b) for a in tenured}
    frames = [_events(rng, agents=past, effect=effect, tenure={a: 7.0 * w for a in past}, n=3000,
                      t0=f"2026-01-0{w + 1}") for w in range(3)]
    frames.append(_events(rng, agents=tenured, effect=effect, tenure={a: 400.0 for a in tenured}, n=6000))
    ev = pd.concat(frames, ignore_index=True).assign(decision_id=lambda d: np.arange(len(d)).astype(str))
    live = EffectEstimates(tenure_weeks=True, half_life_s=float("inf"))
    live.observe(ev)
    ids = np.array(past + tenured + ["new"])
    ten = np.r_[np.full(len(past), 21.0), np.full(len(tenured), 400.0), 0.0]
    units, uw = unit_weeks(live.current())
    plain = fit_effects(live.current().totals(ids), cohort=tenure_band(ten))
    weeks = fit_effects(live.current().totals(ids), cohort=tenure_band(ten),
                        weeks=(week_of(ten), live.current().totals(units), uw))
    week0_truth = np.mean([ab[a] - 1.0 * np.exp(-3.5 / 7.0) for a in past])
    assert abs(weeks.mean[-1] - week0_truth) < abs(plain.mean[-1] - week0_truth) - 0.15
    assert abs(weeks.mean[-1] - week0_truth) < 0.2
