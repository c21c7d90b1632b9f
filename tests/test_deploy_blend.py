"""The mean of two champions (``assign.deploy.blend``) and the loop that routes with it after a
promotion (``LoopConfig.blend_previous``, loop15)."""
from __future__ import annotations

import numpy as np
import pytest

from assign.constants import DAY_S
from assign.deploy.blend import MeanScorer, mean_prior
from assign.errors import InputError
from assign.scorer import Prior, Scorer


class _Table(Scorer):
    """A scorer with a fixed (agent, intent) table and a prior with a contact part."""

    name = "table"

    def __init__(self, table, *, rank=1, seed=0):
        self.table = table
        rng = np.random.default_rng(seed)
        self.w = rng.normal(size=(50, rank))
        self.t = rng.normal(size=(rank, *table.shape))

    def score_pairs(self, snapshot, *, contact_idx, agent_idx):
        return self.table[agent_idx, snapshot.contacts.intent[contact_idx]]

    def prior(self, snapshot):
        n = len(snapshot.contacts.ids)
        return Prior(agent_intent=self.table, style_bonus=0.1, sentiment_coef=0.3, contact_weight=self.w[:n],
                     contact_tables=self.t)


def _prior_value(p: Prior, c, a, intent):
    """A prior's estimate of pair (contact c, agent a) without its style and sentiment terms."""
    v = p.agent_intent[a, intent]
    if p.contact_weight is not None:
        v = v + sum(p.contact_weight[c, r] * p.contact_tables[r][a, intent] for r in range(p.contact_weight.shape[1]))
    return v


def test_the_mean_scorer_scores_and_estimates_the_mean_of_its_members():
    from assign.io import read_snapshot

    snap = read_snapshot("examples/snapshot.json")
    rng = np.random.default_rng(3)
    n_ag, n_in = len(snap.agents.ids), len(snap.intents)
    a, b = _Table(rng.random((n_ag, n_in)), seed=1), _Table(rng.random((n_ag, n_in)), rank=2, seed=2)
    m = MeanScorer(members=(a, b))
    c = np.repeat(np.arange(len(snap.contacts.ids)), n_ag)
    g = np.tile(np.arange(n_ag), len(snap.contacts.ids))
    it = snap.contacts.intent[c]
    np.testing.assert_allclose(m.score_pairs(snap, contact_idx=c, agent_idx=g), (a.table[g, it] + b.table[g, it]) / 2)
    pm, pa, pb = m.prior(snap), a.prior(snap), b.prior(snap)
    assert pm.contact_weight.shape[1] == 3 and pm.style_bonus == pytest.approx(0.1)
    for k in range(len(c)):
        want = (_prior_value(pa, c[k], g[k], it[k]) + _prior_value(pb, c[k], g[k], it[k])) / 2
        assert _prior_value(pm, c[k], g[k], it[k]) == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_the_mean_of_priors_without_contact_parts_and_a_member_without_one():
    p = mean_prior([Prior(agent_intent=np.ones((2, 2)), style_bonus=1.0), Prior(agent_intent=np.zeros((2, 2)))])
    np.testing.assert_array_equal(p.agent_intent, np.full((2, 2), 0.5))
    assert p.style_bonus == 0.5 and p.contact_weight is None and p.contact_tables is None

    class _NoPrior(_Table):
        def prior(self, snapshot):
            return None

    from assign.io import read_snapshot

    snap = read_snapshot("examples/snapshot.json")
    t = np.ones((len(snap.agents.ids), len(snap.intents)))
    assert MeanScorer(members=(_Table(t), _NoPrior(t))).prior(snap) is None


def test_a_mean_of_no_scorer_is_refused():
    with pytest.raises(InputError, match="members"):
        MeanScorer(members=())


@pytest.mark.slow
@pytest.mark.parametrize("blend", [True, False])
def test_after_a_promotion_the_loop_routes_with_the_mean_of_both_champions(promoted_loop_run, blend):
    """``blend_previous``: after a swap the base under the level offsets is the mean of the new
    champion and the first one (their own scores, checked on a snapshot of the run); off: the new
    champion alone (the design before)."""
    from assign.deploy.loop import LoopConfig
    from assign.model.scorer import XGBScorer

    cfg = LoopConfig(retrain_every_s=0.6 * DAY_S, monitor_every_s=99 * DAY_S, blend_previous=blend)
    pol, snap, base = promoted_loop_run(cfg)
    reg = pol.reg
    first, new = (XGBScorer.load(reg.path(v), weights=pol._load(reg.path(v)).weights, nthread=1, ood="model")
                  for v in ("v0001", pol.events[2]["version"]))
    c = np.repeat(np.arange(len(snap.contacts.ids)), len(snap.agents.ids))
    g = np.tile(np.arange(len(snap.agents.ids)), len(snap.contacts.ids))
    got = base.score_pairs(snap, contact_idx=c, agent_idx=g)
    s_first, s_new = (np.asarray(x.score_pairs(snap, contact_idx=c, agent_idx=g)) for x in (first, new))
    assert not np.allclose(s_first, s_new)
    if blend:
        assert isinstance(base, MeanScorer) and len(base.members) == 2
        np.testing.assert_allclose(got, (s_first + s_new) / 2, rtol=1e-6, atol=1e-7)
    else:
        assert isinstance(base, XGBScorer)
        np.testing.assert_allclose(got, s_new, rtol=1e-6, atol=1e-7)
