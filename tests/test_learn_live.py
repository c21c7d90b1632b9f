"""Live agent estimates: equal to a batch recomputation; ticks never see half an update."""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from assign.learn import LearnScorer, LiveEstimates
from assign.learn.scorer import LIVE_KEY
from assign.router import Router
from assign.workload import synthetic_snapshot

INTENTS = ("a", "b", "c")
T0 = pd.Timestamp("2026-03-01", tz="UTC")


def _outcomes(n: int, rng: np.random.Generator, *, agents=("x", "y", "z", "w")) -> pd.DataFrame:
    res = np.where(rng.random(n) < 0.8, (rng.random(n) < 0.6) * 1.0, np.nan)
    csat = np.where(np.isnan(res) | (rng.random(n) < 0.5), rng.integers(1, 6, n) * 1.0, np.nan)
    return pd.DataFrame({
        "decision_id": [f"d{k}" for k in range(n)], "agent_id": rng.choice(agents, n),
        "intent": rng.choice((*INTENTS, "unseen"), n), "resolved": res, "csat": csat, "handle_s": np.nan,
        "handle_ratio": rng.normal(0, 0.3, n),
        "known_at": T0 + pd.to_timedelta(rng.uniform(0, 10 * 86400, n), unit="s")})


def _batch(ev: pd.DataFrame, t_end: float, half_life_s: float, agent_ids) -> dict[str, np.ndarray]:
    """Direct numpy sums of 2^(-(T - t_i)/h) * x_i per agent (and agent x intent)."""
    t = (ev["known_at"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    w = np.exp2(-(t_end - t) / half_life_s)
    out = {k: np.zeros(len(agent_ids)) for k in ("nr", "sr", "nc", "sc", "nh", "sh")}
    nai = np.zeros((len(agent_ids), len(INTENTS)))
    sai = np.zeros_like(nai)
    for j, a in enumerate(agent_ids):
        m = (ev["agent_id"] == a).to_numpy()
        r, c, h = ev["resolved"].to_numpy()[m], ev["csat"].to_numpy()[m], ev["handle_ratio"].to_numpy()[m]
        wm = w[m]
        out["nr"][j], out["sr"][j] = wm[~np.isnan(r)].sum(), (wm * r)[~np.isnan(r)].sum()
        out["nc"][j], out["sc"][j] = wm[~np.isnan(c)].sum(), (wm * c)[~np.isnan(c)].sum()
        out["nh"][j], out["sh"][j] = wm.sum(), (wm * h).sum()
        for k, i in enumerate(INTENTS):
            mi = ~np.isnan(r) & (ev["intent"].to_numpy()[m] == i)
            nai[j, k], sai[j, k] = wm[mi].sum(), (wm * r)[mi].sum()
    out["nai"], out["sai"] = nai, sai
    return out


@pytest.mark.parametrize("half_life_days", [0.5, 3.0, np.inf])
def test_live_equals_batch_recomputation(half_life_days):
    rng = np.random.default_rng(7)
    ev = _outcomes(600, rng)
    live = LiveEstimates(intents=INTENTS, half_life_s=half_life_days * 86400)
    cuts = np.sort(rng.choice(np.arange(1, len(ev)), 9, replace=False))
    shuffled = ev.iloc[rng.permutation(len(ev))]  # any order, any batches
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(ev)]):
        live.observe(shuffled.iloc[lo:hi])
    v = live.current()
    assert v.version == 10
    st = v.state
    t_end = (ev["known_at"].max() - pd.Timestamp(0, tz="UTC")).total_seconds()
    ref = _batch(ev, t_end, half_life_days * 86400 if np.isfinite(half_life_days) else np.inf, st.agent_ids)
    for mine, theirs in (("n_resolution", "nr"), ("sum_resolved", "sr"), ("n_csat", "nc"), ("sum_csat", "sc"),
                         ("n_handle", "nh"), ("sum_handle_ratio", "sh"), ("n_resolution_by_intent", "nai"),
                         ("sum_resolved_by_intent", "sai")):
        np.testing.assert_allclose(getattr(st, mine), ref[theirs], rtol=1e-9, atol=1e-12, err_msg=mine)


def test_new_agents_are_added_and_old_versions_stay_intact():
    live = LiveEstimates(intents=INTENTS)
    rng = np.random.default_rng(1)
    v1 = live.observe(_outcomes(50, rng, agents=("x",)))
    snap = v1.state.n_resolution.copy()
    v2 = live.observe(_outcomes(50, rng, agents=("x", "new")))
    assert v1.state.agent_ids == ("x",) and v2.state.agent_ids == ("x", "new")
    np.testing.assert_array_equal(v1.state.n_resolution, snap)  # copy on write: v1 untouched
    assert v2.agent_codes(["new", "nobody"]).tolist() == [1, -1]


class _Recorder(LearnScorer):
    """Checks, on every scoring call, that the version it reads is internally consistent:
    each observe batch adds exactly one resolved outcome to every agent, so all agents hold
    the same count in a whole version."""

    def score_pairs(self, snapshot, *, contact_idx, agent_idx):
        v = snapshot.meta[LIVE_KEY]
        n = v.state.n_resolution
        if len(n) and not np.all(n == n[0]):
            self.torn.append(n.copy())
        self.seen.append(v.version)
        return super().score_pairs(snapshot, contact_idx=contact_idx, agent_idx=agent_idx)


def test_concurrent_observe_and_tick_never_tear():
    snap = synthetic_snapshot(n_contacts=20, n_agents=8, seed=2)
    ids = list(snap.agents.ids)
    live = LiveEstimates(intents=snap.intents)
    scorer = _Recorder(live=live)
    scorer.torn, scorer.seen = [], []
    router = Router(scorer=scorer, live=live)
    stop = threading.Event()
    errors = []

    def writer():
        k = 0
        while not stop.is_set() and k < 300:
            live.observe(pd.DataFrame({"decision_id": [f"{k}-{a}" for a in ids], "agent_id": ids,
                                       "intent": snap.intents[0], "resolved": 1.0, "csat": np.nan,
                                       "handle_s": np.nan, "known_at": T0}))
            k += 1

    def reader():
        try:
            for _ in range(40):
                router.tick(snap)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer), threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads[2:]:
        t.join()
    stop.set()
    for t in threads[:2]:
        t.join()
    assert not errors and not scorer.torn
    assert len(set(scorer.seen)) > 1  # ticks did run against several versions
