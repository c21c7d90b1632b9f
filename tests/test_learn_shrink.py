"""Cold start by hierarchical empirical-Bayes shrinkage."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assign.learn import LearnScorer, LiveEstimates, fit_posterior, prior_strength
from assign.learn.shrink import cohorts, nearest_intents
from assign.router import Router
from assign.workload import synthetic_snapshot


@pytest.mark.parametrize("M", [8.0, 60.0])
def test_prior_strength_recovers_the_beta_binomial_truth(M):
    """Groups drawn from Beta(M p, M (1 - p)) around 3 parents with different means."""
    rng = np.random.default_rng(11)
    est = []
    for _ in range(15):
        parent = rng.integers(0, 3, 600)
        p = np.array([0.5, 0.7, 0.85])
        theta = rng.beta(M * p[parent], M * (1 - p[parent]))
        n = rng.integers(10, 150, 600).astype(float)
        s = rng.binomial(n.astype(int), theta).astype(float)
        est.append(prior_strength(s, n, parent, p))
    assert abs(np.median(est) / M - 1) < 0.15


def test_posterior_means_follow_the_hierarchy_by_hand():
    rng = np.random.default_rng(3)
    n_ai = rng.integers(0, 40, (12, 3)).astype(float)
    s_ai = np.floor(n_ai * rng.uniform(0.3, 0.9, (12, 3)))
    n_ai[5] = s_ai[5] = 0.0  # a new agent
    tenure = np.array([10, 10, 10, 10, 400, 400, 400, 400, 100, 100, 100, 100], float)
    skill = np.tile(np.eye(3)[[0, 1, 2, 0]], (3, 1)) * 0.5 + 0.3
    coh = cohorts(tenure_days=tenure, skill=skill)
    post = fit_posterior(n_ai=n_ai, s_ai=s_ai, cohort=coh, skill=skill)
    m = post.strengths
    p0 = s_ai.sum() / n_ai.sum()
    _, ci = np.unique(coh, return_inverse=True)
    n_c, s_c = np.bincount(ci, n_ai.sum(1)), np.bincount(ci, s_ai.sum(1))
    p_c = (s_c + m["cohort"] * p0) / (n_c + m["cohort"])
    p_a = (s_ai.sum(1) + m["agent"] * p_c[ci]) / (n_ai.sum(1) + m["agent"])
    want = (s_ai + m["agent_intent"] * p_a[:, None]) / (n_ai + m["agent_intent"])
    np.testing.assert_allclose(post.mean, want, rtol=1e-12)
    np.testing.assert_allclose(post.mean[5], p_c[ci[5]])  # the new agent starts at its cohort
    assert post.mapped_intents == () and post.agent_n[5] == 0


def test_a_new_agent_moves_from_its_cohort_to_its_own_rate():
    rng = np.random.default_rng(5)
    n_ai = rng.integers(20, 60, (40, 2)).astype(float)
    s_ai = rng.binomial(n_ai.astype(int), rng.beta(20 * 0.6, 20 * 0.4, (40, 1))).astype(float)
    skill = np.full((40, 2), 0.5)
    tenure = np.full(40, 400.0)
    errs = []
    for n_new in (0, 10, 100, 1000):
        n2, s2 = n_ai.copy(), s_ai.copy()
        n2[0], s2[0] = n_new / 2, 0.95 * n_new / 2  # agent 0 is far better than its cohort
        post = fit_posterior(n_ai=n2, s_ai=s2, cohort=cohorts(tenure_days=tenure, skill=skill), skill=skill)
        errs.append(abs(post.mean[0, 0] - 0.95))
    assert errs == sorted(errs, reverse=True) and errs[-1] < 0.02


def test_new_intent_maps_to_nearest_known_intents_by_skill_profile():
    rng = np.random.default_rng(2)
    base = rng.uniform(0.2, 1.0, (30, 3))
    skill = np.c_[base, base[:, 1] * 0.98 + 0.01]  # intent 3 is new and profiled like intent 1
    near = nearest_intents(skill, np.array([True, True, True, False]), k=1)
    assert near[3][0].tolist() == [1]
    n_ai = np.c_[rng.integers(5, 50, (30, 3)), np.zeros(30)].astype(float)
    s_ai = np.floor(n_ai * 0.6)
    post = fit_posterior(n_ai=n_ai, s_ai=s_ai, cohort=cohorts(tenure_days=np.full(30, 50.0), skill=skill),
                         skill=skill, n_neighbours=1)
    assert post.mapped_intents == (3,)
    # with no evidence on the new intent, its mean is the agent's posterior mean on intent 1
    np.testing.assert_allclose(post.mean[:, 3], post.mean[:, 1], rtol=1e-12)
    assert not np.allclose(post.mean[:, 3], post.mean[:, 0])


def test_router_counts_pairs_scored_from_the_prior_alone():
    snap = synthetic_snapshot(n_contacts=30, n_agents=10, seed=4)
    live = LiveEstimates(intents=snap.intents)
    router = Router(scorer=LearnScorer(live=live), live=live)
    first = router.tick(snap)
    assert first.n_prior_only == first.n_candidates > 0  # nothing known: every pair from the prior
    seen = list(snap.agents.ids[:4])
    router.observe(pd.DataFrame({"decision_id": [f"d{k}" for k in range(4)], "agent_id": seen,
                                 "intent": snap.intents[0], "resolved": 1.0, "csat": np.nan, "handle_s": np.nan,
                                 "known_at": pd.Timestamp(snap.at)}))
    second = router.tick(snap)
    res = router.problem(snap)
    known_agent = np.isin(np.asarray(snap.agents.ids)[res.a_order[res.cols]], seen)
    assert second.n_prior_only == int((~known_agent).sum()) < first.n_prior_only


@pytest.mark.parametrize("with_base", [False, True])
def test_learn_scorer_prior_is_its_score(with_base):
    """Retrieval prunes by the scorer's prior: for LearnScorer it is the score itself."""
    from assign.scorer import SkillScorer

    snap = synthetic_snapshot(n_contacts=40, n_agents=15, seed=1)
    rng = np.random.default_rng(0)
    live = LiveEstimates(intents=snap.intents)
    n = 400
    live.observe(pd.DataFrame({"decision_id": np.arange(n).astype(str), "agent_id": rng.choice(snap.agents.ids, n),
                               "intent": rng.choice(snap.intents, n), "resolved": (rng.random(n) < 0.7) * 1.0,
                               "csat": np.nan, "handle_s": np.nan, "known_at": pd.Timestamp(snap.at)}))
    sc = LearnScorer(live=live, base=SkillScorer(w_tenure=0.0) if with_base else None)
    p = sc.prior(snap)
    c, a = (x.ravel() for x in np.meshgrid(np.arange(40), np.arange(15), indexing="ij"))
    cs, ag = snap.contacts, snap.agents
    est = (p.agent_intent[a, cs.intent[c]] + p.style_bonus * ((cs.style[c] >= 0) & (cs.style[c] == ag.style[a]))
           + p.sentiment_coef * ag.sentiment_handling[a] * np.maximum(-cs.sentiment[c], 0))
    np.testing.assert_allclose(est, sc.score_pairs(snap, contact_idx=c, agent_idx=a), atol=1e-12)


def test_intents_the_live_estimates_never_saw_are_mapped_and_flagged():
    snap = synthetic_snapshot(n_contacts=40, n_agents=15, seed=6)
    known = snap.intents[:6]
    live = LiveEstimates(intents=known)
    rng = np.random.default_rng(4)
    n = 300
    live.observe(pd.DataFrame({"decision_id": np.arange(n).astype(str), "agent_id": rng.choice(snap.agents.ids, n),
                               "intent": rng.choice(known, n), "resolved": (rng.random(n) < 0.6) * 1.0,
                               "csat": np.nan, "handle_s": np.nan, "known_at": pd.Timestamp(snap.at)}))
    sc = LearnScorer(live=live)
    post, _ = sc.posterior(snap)
    assert post.mean.shape == (15, len(snap.intents))
    assert set(post.mapped_intents) == set(range(6, len(snap.intents)))
    s = sc.score_pairs(snap, contact_idx=np.arange(40), agent_idx=np.arange(40) % 15)
    assert np.isfinite(s).all()


def test_intent_parent_shifts_each_known_intent_by_its_centre_rate_on_the_logit_scale():
    """slope33 ``intent_parent``: a new agent (no outcomes) reads each known intent at its
    agent rate shifted by ``logit p_intent - logit p_centre`` (a hard intent lower, an easy one
    higher); without it every intent alike; an intent nobody served keeps its neighbours' map."""
    from assign.learn.logit import margin_of, sigmoid

    rng = np.random.default_rng(4)
    n_ag, n_in = 12, 4
    rate = np.array([0.35, 0.6, 0.8, 0.0])  # intent 3: never served (a new intent)
    n_ai = np.where(np.arange(n_in) < 3, rng.integers(40, 200, (n_ag, n_in)), 0).astype(float)
    n_ai[0] = 0.0  # agent 0: a hire with no outcome
    s_ai = rng.binomial(n_ai.astype(int), rate).astype(float)
    cohort = np.zeros(n_ag, np.int64)
    skill = rng.uniform(0.2, 1.0, (n_ag, n_in))
    flat = fit_posterior(n_ai=n_ai, s_ai=s_ai, cohort=cohort, skill=skill)
    shifted = fit_posterior(n_ai=n_ai, s_ai=s_ai, cohort=cohort, skill=skill, intent_parent=True)
    np.testing.assert_allclose(flat.mean[0, :3], flat.agent_mean[0])  # the hire: one rate for every intent
    p0 = s_ai.sum() / n_ai.sum()
    p_j = s_ai.sum(axis=0)[:3] / n_ai.sum(axis=0)[:3]
    want = sigmoid(margin_of(shifted.agent_mean[0]) + margin_of(p_j) - margin_of(np.array([p0])))
    np.testing.assert_allclose(shifted.mean[0, :3], want, rtol=1e-9)
    assert shifted.mean[0, 0] < flat.mean[0, 0] and shifted.mean[0, 2] > flat.mean[0, 2]
    # agents with many outcomes on an intent stay near their own rate either way
    own = s_ai[1:, :3] / n_ai[1:, :3]
    assert np.abs(shifted.mean[1:, :3] - own).mean() <= np.abs(flat.mean[1:, :3] - own).mean() + 1e-12
    # the new intent is mapped from its neighbours in both fits
    assert flat.mapped_intents == shifted.mapped_intents == (3,)
