"""Design (power, sample size, MDE, clustered units) against statsmodels and simulation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assign.errors import InputError
from assign.experiment import design as dz

pytest.importorskip("statsmodels")
from statsmodels.stats.power import (
    NormalIndPower,
    TTestIndPower,
    tt_ind_solve_power,
    zt_ind_solve_power,
)
from statsmodels.stats.proportion import power_proportions_2indep


@pytest.mark.parametrize("mde,sd,ratio,alpha,power", [(0.5, 2.0, 1.0, 0.05, 0.8), (0.1, 1.0, 1.5, 0.01, 0.9),
                                                      (3.0, 10.0, 0.5, 0.1, 0.7)])
def test_sample_size_for_means_matches_statsmodels(mde, sd, ratio, alpha, power):
    es = mde / sd
    z = dz.n_means(mde=mde, sd=sd, alpha=alpha, power=power, ratio=ratio)
    assert z == pytest.approx(
        NormalIndPower().solve_power(effect_size=es, alpha=alpha, power=power, ratio=ratio), rel=1e-8
    )
    assert z == pytest.approx(zt_ind_solve_power(effect_size=es, alpha=alpha, power=power, ratio=ratio), rel=1e-8)
    t = dz.n_means(mde=mde, sd=sd, alpha=alpha, power=power, ratio=ratio, test="t")
    assert t == pytest.approx(
        TTestIndPower().solve_power(effect_size=es, alpha=alpha, power=power, ratio=ratio), rel=1e-8
    )
    assert t == pytest.approx(tt_ind_solve_power(effect_size=es, alpha=alpha, power=power, ratio=ratio), rel=1e-8)
    assert dz.t_power(effect_size=es, n1=t, ratio=ratio, alpha=alpha) == pytest.approx(power, abs=1e-9)


@pytest.mark.parametrize("n1,ratio", [(100, 1.0), (2000, 0.7)])
def test_mde_for_means_inverts_statsmodels(n1, ratio):
    d = dz.mde_means(n1=n1, sd=3.0, ratio=ratio)
    assert d / 3.0 == pytest.approx(zt_ind_solve_power(nobs1=n1, alpha=0.05, power=0.8, ratio=ratio), rel=1e-5)
    assert dz.n_means(mde=d, sd=3.0, ratio=ratio) == pytest.approx(n1, rel=1e-8)


@pytest.mark.parametrize("baseline,mde,ratio", [(0.3, 0.02, 1.0), (0.05, -0.01, 2.0), (0.9, 0.03, 0.5)])
def test_sample_size_for_proportions_gives_statsmodels_power(baseline, mde, ratio):
    n = dz.n_proportions(baseline=baseline, mde=mde, ratio=ratio)
    assert power_proportions_2indep(mde, baseline, n, ratio=ratio).power == pytest.approx(0.8, abs=1e-9)
    assert power_proportions_2indep(mde, baseline, 0.9 * n, ratio=ratio).power < 0.8
    d = dz.mde_proportions(baseline=baseline, n1=n, ratio=ratio)
    assert d == pytest.approx(abs(mde), rel=0.05) if mde > 0 else d > 0


def test_planned_proportion_sample_size_gives_the_promised_power_in_simulation():
    rng = np.random.default_rng(0)
    d = dz.plan(metric="resolved", kind="proportion", unit="contact", baseline=0.3, mde=0.05)
    n = int(np.ceil(d.n_treatment))
    from assign.experiment.estimators import two_proportion

    hits = sum(
        two_proportion(int(rng.binomial(n, 0.35)), n, int(rng.binomial(n, 0.3)), n).p_value < 0.05 for _ in range(2000)
    )
    assert hits / 2000 == pytest.approx(0.8, abs=0.03)


def _history(seed=0, days=4, agents=20, sigma_b=0.5):
    rng = np.random.default_rng(seed)
    n = 4000 * days
    t = np.sort(rng.uniform(0, days * 86400, n))
    agent = rng.integers(0, agents, n)
    hour = (t // 3600).astype(int)
    y = 5 + rng.normal(0, sigma_b, agents)[agent] + rng.normal(0, 0.7, hour.max() + 1)[hour] + rng.normal(0, 2, n)
    return pd.DataFrame(
        {
            "arrival_at": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(t, unit="s"),
            "agent_id": [f"a{a}" for a in agent],
            "handle": y,
            "answered": np.ones(n, bool),
            "resolved": rng.random(n) < 0.7,
        }
    )


def test_variance_components_recover_the_simulated_ones():
    rng = np.random.default_rng(1)
    G = 400
    g = np.repeat(np.arange(G), rng.integers(10, 50, G))  # unbalanced clusters
    b = rng.normal(0, 0.8, G)
    v = b[g] + rng.normal(0, 2.0, g.size)
    c = dz.variance_components(v, g, days=2.0, baseline=0.0)
    # against the realised between-cluster variance (the draw's, not the model's 0.64)
    assert c.sigma_b2 == pytest.approx(b.var(ddof=1), abs=0.05)
    assert c.sigma_w2 == pytest.approx(4.0, rel=0.03)
    assert c.m == pytest.approx(g.size / G) and c.clusters_per_day == G / 2


def test_clustered_designs_need_more_than_contact_level_and_agent_level_has_a_floor():
    df = _history()
    c_contact, kind = dz.components_from_history(df, metric="handle", unit="contact")
    c_agent, _ = dz.components_from_history(df, metric="handle", unit="agent")
    c_sw, _ = dz.components_from_history(df, metric="handle", unit="switchback", window_s=3600, burn_in_s=600)
    assert kind == "mean" and c_contact.sigma_b2 == 0
    plan = lambda unit, c, **kw: dz.plan(
        metric="handle", kind="mean", unit=unit, baseline=c.baseline, components=c, **kw
    )
    contact = plan("contact", c_contact, mde=0.1)
    sw = plan("switchback", c_sw, mde=0.1)
    assert sw.days > 5 * contact.days  # hour-level shocks make windows far noisier than contacts
    assert sw.design_effect > 10
    # the reverse question gives back the MDE
    assert plan("switchback", c_sw, days=sw.days).mde == pytest.approx(0.1, rel=1e-6)
    # 20 agents with a between-agent sd of 0.5: no duration detects 0.1
    with pytest.raises(InputError, match="between-agent variance alone limits the MDE"):
        plan("agent", c_agent, mde=0.1)
    assert plan("agent", c_agent, mde=1.0).days > 0


def test_ratio_design_uses_the_linearised_variance():
    df = _history()
    df["calls"] = 1 + (np.arange(len(df)) % 3)
    df["talk"] = df["calls"] * df["handle"]
    c, kind = dz.components_from_history(df, metric="talk/calls", unit="contact")
    assert kind == "ratio" and c.baseline == pytest.approx(df.talk.sum() / df.calls.sum())
    d = dz.plan(
        metric="talk/calls", kind=kind, unit="contact", baseline=c.baseline, components=c, mde=0.05, relative=True
    )
    assert d.mde == pytest.approx(0.05 * c.baseline) and d.n_treatment > 0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(kind="mean", unit="contact", baseline=1.0, mde=0.1), "mean metrics need --sd or --history"),
        (dict(kind="mean", unit="contact", baseline=1.0, sd=1.0), "give exactly one of mde"),
        (dict(kind="mean", unit="contact", baseline=1.0, sd=1.0, mde=0.1, days=3), "give exactly one of mde"),
        (dict(kind="mean", unit="agent", baseline=1.0, sd=1.0, mde=0.1), "clustered designs need --history"),
        (dict(kind="ratio", unit="contact", baseline=1.0, mde=0.1), "ratio metrics need --history"),
        (dict(kind="mean", unit="team", baseline=1.0, sd=1.0, mde=0.1), "unit: must be one of contact"),
        (dict(kind="mean", unit="contact", baseline=1.0, sd=-1.0, mde=0.1), "sd: -1.0 must be above 0"),
        (dict(kind="mean", unit="contact", baseline=1.0, sd=1.0, mde=0.1, alpha=1.5), "alpha: must be in (0, 1)"),
        (dict(kind="mean", unit="contact", baseline=1.0, sd=1.0, mde=0.1, power=0.0), "power: must be in (0, 1)"),
        (
            dict(kind="mean", unit="contact", baseline=0.0, sd=1.0, mde=0.1, relative=True),
            "relative MDE needs a non-zero",
        ),
        (dict(kind="mean", unit="contact", baseline=1.0, sd=1.0, days=3), "needs --history or --units-per-day"),
        (dict(kind="mean", unit="contact", baseline=1.0, sd=1.0, days=1e300), "days: 1e+300 is above the maximum"),
        (dict(kind="mean", unit="contact", baseline=1.0, sd=float("nan"), mde=0.1), "sd: must be finite"),
        (
            dict(kind="mean", unit="contact", baseline=1.0, sd=1.0, mde=0.1, weights=(float("inf"), 1)),
            "weights[0]: must be finite",
        ),
        (
            dict(kind="mean", unit="contact", baseline=1.0, sd=1.0, days=3, rows_per_day=-100),
            "units_per_day: -100 must be above 0",
        ),
    ],
)
def test_invalid_design_inputs(kwargs, message):
    with pytest.raises(InputError) as err:
        dz.plan(metric="m", **kwargs)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: dz.n_proportions(baseline=1.2, mde=0.1), "baseline: a rate must be in (0, 1)"),
        (lambda: dz.n_proportions(baseline=0.95, mde=0.1), "baseline + mde must be in (0, 1)"),
        (lambda: dz.n_means(mde=0.0, sd=1.0), "mde: must be a non-zero number"),
        (lambda: dz.n_means(mde=1.0, sd=1.0, test="x"), "test: must be 'z' or 't'"),
        (lambda: dz.mde_proportions(baseline=0.5, n1=3), "cannot detect any increase"),
    ],
)
def test_invalid_power_inputs(call, message):
    with pytest.raises(InputError, match=None) as err:
        call()
    assert message in str(err.value)


def test_unreadable_history_values_are_counted_not_zeroed():
    df = _history(days=1).astype({"handle": object})
    df.loc[5, "handle"] = "slow"
    df.loc[6, "answered"] = False
    df["talk"] = df["handle"]
    df.loc[6, "talk"] = None  # not answered: no talk time, counts as 0 in the ratio
    c, _ = dz.components_from_history(df, metric="talk/answered", unit="contact")
    assert c.rows == len(df) - 1 and c.notes == (
        f"history: 1 of {len(df)} rows not used (missing or unreadable values)",
    )


def test_unequal_weights_are_control_first():
    d = dz.plan(metric="m", kind="mean", unit="contact", baseline=1.0, sd=1.0, mde=0.1, weights=(0.8, 0.2))
    assert d.weights == (0.8, 0.2) and d.n_control == pytest.approx(4 * d.n_treatment)
    n1 = NormalIndPower().solve_power(effect_size=0.1, alpha=0.05, power=0.8, ratio=4.0)
    assert d.n_treatment == pytest.approx(n1, rel=1e-8)


def test_customer_level_design_applies_the_design_effect_of_repeat_contacts():
    rng = np.random.default_rng(5)
    n = 8000
    cust = rng.integers(0, 1000, n)  # ~8 contacts per customer
    y = rng.normal(0, 1.0, 1000)[cust] + rng.normal(0, 1.0, n)
    df = pd.DataFrame(
        {
            "arrival_at": pd.Timestamp("2026-01-01", tz="UTC")
            + pd.to_timedelta(np.sort(rng.uniform(0, 4 * 86400, n)), unit="s"),
            "customer_id": cust.astype(str),
            "y": y,
        }
    )
    c_contact, _ = dz.components_from_history(df, metric="y", unit="contact")
    c_customer, _ = dz.components_from_history(df, metric="y", unit="customer")
    iid = dz.plan(metric="y", kind="mean", unit="contact", baseline=0.0, components=c_contact, mde=0.1)
    cus = dz.plan(metric="y", kind="mean", unit="customer", baseline=0.0, components=c_customer, mde=0.1)
    assert 1 + 7 * 0.4 < cus.design_effect < 1 + 7 * 0.6  # icc ~ 0.5, m ~ 8
    assert cus.n_treatment == pytest.approx(iid.n_treatment * cus.design_effect, rel=0.05)
    back = dz.plan(metric="y", kind="mean", unit="customer", baseline=0.0, components=c_customer, days=cus.days)
    assert back.mde == pytest.approx(0.1, rel=1e-6)
