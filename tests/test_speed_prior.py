"""The XGBoost scorer's retrieval prior: a least-squares fit of the model's own values."""
from __future__ import annotations

import numpy as np
import pytest

from assign.errors import InputError
from assign.model import TrainParams, XGBScorer, train
from assign.model.prior import N_PAIR_TERMS, TERMS, PriorFit, _design, fit_prior
from assign.router import Router
from assign.world.centre import generate_history
from benchmarks.scoring import workload
from benchmarks.tick_speed import peak_snapshot


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    world, _ = workload(seed=13, n_contacts=10, n_agents=120)
    out = tmp_path_factory.mktemp("prior-model")
    train(generate_history(world, days=1, seed=14), out=out,
          params=TrainParams(max_rounds=30, early_stopping=10, max_depth=4, nthread=1))
    return world, out


def _estimate(prior, snap, ci, ai):
    c, a = snap.contacts, snap.agents
    style = (c.style[ci] >= 0) & (c.style[ci] == a.style[ai])
    neg = np.maximum(-c.sentiment[ci], 0.0) * a.sentiment_handling[ai]
    out = prior.agent_intent[ai, c.intent[ci]] + prior.style_bonus * style + prior.sentiment_coef * neg
    if prior.contact_weight is not None:
        out = out + (prior.contact_weight[ci] * prior.contact_tables[:, ai, c.intent[ci]].T).sum(axis=1)
    return out


class _Linear:
    """A scorer whose value is exactly linear in the prior's terms: the fit must recover it."""

    name = "linear"

    def __init__(self, model, coef, offsets, style, sent):
        self.model, self.coef, self.offsets, self.style, self.sent = model, coef, offsets, style, sent

    def score_pairs(self, snapshot, *, contact_idx, agent_idx):
        c, a = snapshot.contacts, snapshot.agents
        g = np.nan_to_num(_design(self.model, snapshot, contact_idx, agent_idx))
        st = (c.style[contact_idx] >= 0) & (c.style[contact_idx] == a.style[agent_idx])
        neg = np.maximum(-c.sentiment[contact_idx], 0.0) * a.sentiment_handling[agent_idx]
        return g @ self.coef + self.offsets[c.intent[contact_idx]] + self.style * st + self.sent * neg


def test_fit_recovers_a_linear_truth(setup) -> None:
    world, out = setup
    model = XGBScorer.load(out).model
    snap = peak_snapshot(world, seed=1, n_contacts=400)
    rng = np.random.default_rng(0)
    coef = rng.normal(size=len(TERMS))
    offsets = rng.normal(size=len(snap.intents))
    truth = _Linear(model, coef, offsets, 0.07, -0.03)
    fit = fit_prior(truth, snap, n_pairs=3000, ridge=1e-12, per_intent_slope=False, contact_terms=())
    assert fit.r2 > 1 - 1e-9
    known = np.array([np.isfinite(_design(model, snap, np.array([0]), np.arange(snap.n_agents))[:, k]).any()
                      for k in range(len(TERMS))])
    varies = np.array([np.nanstd(_design(model, snap, np.zeros(snap.n_agents, int), np.arange(snap.n_agents))[:, k])
                       > 0 for k in range(len(TERMS))])
    ok = known & varies
    ok[:N_PAIR_TERMS] = True  # agent x intent terms vary over the pairs of the fit
    np.testing.assert_allclose(np.asarray(fit.coef)[ok], coef[ok], rtol=1e-5, atol=1e-6)
    assert fit.style_bonus == pytest.approx(0.07, abs=1e-6)
    assert fit.sentiment_coef == pytest.approx(-0.03, abs=1e-6)
    ci, ai = np.repeat(np.arange(50), 20), np.tile(np.arange(20), 50)
    ok = (snap.agents.skill[ai, snap.contacts.intent[ci]] > 0) & snap.agents.speaks[ai, snap.contacts.language[ci]]
    ci, ai = ci[ok], ai[ok]  # eligible pairs: those the fit saw (known terms)
    want = truth.score_pairs(snap, contact_idx=ci, agent_idx=ai)
    np.testing.assert_allclose(_estimate(fit.prior(model, snap), snap, ci, ai), want, atol=1e-6)
    slopes = fit_prior(truth, snap, n_pairs=3000, ridge=1e-12, focus=0.5, contact_terms=())  # per-intent slopes
    np.testing.assert_allclose(_estimate(slopes.prior(model, snap), snap, ci, ai), want, atol=1e-6)
    assert np.allclose(list(slopes.intent_slope.values()), coef[0], atol=1e-6)


class _Interacting(_Linear):
    """A linear truth plus proficiency x complexity: the contact part of the prior must recover it."""

    def score_pairs(self, snapshot, *, contact_idx, agent_idx):
        c, a = snapshot.contacts, snapshot.agents
        prof = a.skill[agent_idx, c.intent[contact_idx]]
        return super().score_pairs(snapshot, contact_idx=contact_idx, agent_idx=agent_idx) + \
            0.8 * prof * c.complexity[contact_idx]


def test_contact_part_recovers_a_complexity_interaction(setup) -> None:
    world, out = setup
    model = XGBScorer.load(out).model
    snap = peak_snapshot(world, seed=1, n_contacts=400)
    rng = np.random.default_rng(1)
    truth = _Interacting(model, rng.normal(size=len(TERMS)), rng.normal(size=len(snap.intents)), 0.05, -0.02)
    table_only = fit_prior(truth, snap, n_pairs=3000, ridge=1e-12, contact_terms=())
    assert table_only.r2 < 0.9999 and table_only.contact_layers == ()
    fit = fit_prior(truth, snap, n_pairs=3000, ridge=1e-12, contact_terms=("complexity",))
    assert fit.r2 > 1 - 1e-9
    ci, ai = np.repeat(np.arange(60), 20), np.tile(np.arange(20), 60)
    ok = (snap.agents.skill[ai, snap.contacts.intent[ci]] > 0) & snap.agents.speaks[ai, snap.contacts.language[ci]]
    ci, ai = ci[ok], ai[ok]
    want = truth.score_pairs(snap, contact_idx=ci, agent_idx=ai)
    np.testing.assert_allclose(_estimate(fit.prior(model, snap), snap, ci, ai), want, atol=1e-6)
    assert np.abs(_estimate(table_only.prior(model, snap), snap, ci, ai) - want).max() > 1e-3


def test_prior_ranks_held_out_pairs_better_than_proficiency(setup) -> None:
    world, out = setup
    scorer = XGBScorer.load(out)
    scorer.fit_prior(peak_snapshot(world, seed=2, n_contacts=400))
    held = peak_snapshot(world, seed=3, n_contacts=400)
    c, a = held.contacts, held.agents
    ci, ai = np.repeat(np.arange(held.n_contacts), held.n_agents), np.tile(np.arange(held.n_agents), held.n_contacts)
    ok = (a.skill[ai, c.intent[ci]] > 0) & a.speaks[ai, c.language[ci]]
    ci, ai = ci[ok], ai[ok]
    y = scorer.score_pairs(held, contact_idx=ci, agent_idx=ai)
    est = _estimate(scorer.prior(held), held, ci, ai)
    prof = a.skill[ai, c.intent[ci]]
    assert np.corrcoef(est, y)[0, 1] > np.corrcoef(prof, y)[0, 1] + 0.05


def test_router_uses_the_fitted_prior_and_it_round_trips(setup, tmp_path) -> None:
    world, out = setup
    scorer = XGBScorer.load(out)
    snap = peak_snapshot(world, seed=4, n_contacts=300)
    assert scorer.prior(snap) is None  # nothing fitted: the router ranks by proficiency
    fit = scorer.fit_prior(snap)
    a_order = np.argsort(snap.agents.ids, kind="stable")
    used = Router(scorer=scorer)._prior(snap, np.arange(snap.n_contacts), a_order)
    np.testing.assert_array_equal(used.agent_intent, fit.prior(scorer.model, snap).agent_intent[a_order])
    fit.save(tmp_path)
    assert PriorFit.load(tmp_path) == fit
    assert PriorFit.load(tmp_path / "nowhere") is None


def test_too_few_pairs_to_fit(setup) -> None:
    world, out = setup
    with pytest.raises(InputError, match="eligible pairs"):
        fit_prior(XGBScorer.load(out), peak_snapshot(world, seed=5, n_contacts=2))


def test_prior_tables_share_one_computation_of_the_terms(setup) -> None:
    """``PriorFit.prior`` computes the snapshot's terms once for all its tables (a tick-time
    saving): every table equals the one computed on its own, bit for bit."""
    from assign.model.prior import _table

    world, out = setup
    scorer = XGBScorer.load(out)
    snap = peak_snapshot(world, seed=3, n_contacts=300)
    fit = scorer.fit_prior(snap, n_pairs=2000)
    assert fit.contact_layers
    prior = fit.prior(scorer.model, snap)
    alone = _table(scorer.model, snap, coef=fit.coef, fill=fit.fill, intent_offset=fit.intent_offset,
                   default_offset=fit.default_offset, intent_slope=fit.intent_slope)
    assert np.array_equal(prior.agent_intent, alone)
    for k, d in enumerate(fit.contact_layers):
        layer = _table(scorer.model, snap, coef=d["coef"], fill=fit.fill, intent_offset=d["intent_offset"],
                       default_offset=d["default_offset"], intent_slope=d["intent_slope"])
        assert np.array_equal(prior.contact_tables[k], layer)
