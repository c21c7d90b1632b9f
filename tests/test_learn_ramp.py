"""New-hire ramp and the no-cohort-prior variant of the model scorer (assign.learn.ramp, .modelscorer)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from assign.errors import InputError
from assign.learn import EffectEstimates, ModelScorer, PopulationModel, history_outcomes
from assign.learn.effects import fit_effects, tenure_band
from assign.learn.ramp import Ramp


def test_ramp_terms_decay_linearly_and_bad_settings_are_named_together():
    r = Ramp(bonus=0.2, days=4.0)
    assert r.terms(np.array([-1.0, 0.0, 1.0, 3.0, 4.0, 400.0])).tolist() == pytest.approx([0.2, 0.2, 0.15, 0.05, 0, 0])
    with pytest.raises(InputError) as e:
        Ramp(bonus=-0.1, days=0.0)
    assert "ramp.bonus" in str(e.value) and "ramp.days" in str(e.value)


@pytest.fixture(scope="module")
def setup():
    from assign.world.centre import generate_history
    from benchmarks.scoring import workload

    world, snap = workload(seed=3, n_contacts=40, n_agents=30)
    hist = generate_history(world, days=1, seed=3)
    model = PopulationModel.fit(hist)
    ev = history_outcomes(hist).merge(model.history_predictions(hist), left_on="decision_id",
                                      right_on="contact_id").drop(columns="contact_id")
    unseen = [str(a) for a in snap.agents.ids[:3]]  # three agents without any outcome
    live = EffectEstimates()
    live.observe(ev[~ev["agent_id"].astype(str).isin(unseen)])
    tenure = snap.agents.tenure_days.copy()
    tenure[:3] = 5.0  # the unseen three: the [0, 30) band, alone in it
    snap = replace(snap, agents=replace(snap.agents, tenure_days=tenure))
    ci = np.repeat(np.arange(snap.n_contacts), snap.n_agents)
    ai = np.tile(np.arange(snap.n_agents), snap.n_contacts)
    return model, live, snap, ci, ai


def test_without_the_cohort_prior_an_agent_without_outcomes_sits_at_the_centre(setup):
    model, live, snap, ci, ai = setup
    flat, tiered = (ModelScorer(model=model, live=live, cohort_prior=c) for c in (False, True))
    ef, rows = flat.effects(snap)
    ids = np.asarray(snap.agents.ids).astype(str)
    ref = fit_effects(live.current().totals(ids), cohort=np.zeros(len(ids), np.int64))
    assert np.allclose(ef.mean[rows], ref.mean) and np.allclose(ef.var[rows], ref.var)
    assert ef.mean[rows[:3]] == pytest.approx(np.full(3, ef.cohort_mean[0, 0]))  # the centre's effect
    et, rows_t = tiered.effects(snap)
    ref_t = fit_effects(live.current().totals(ids), cohort=tenure_band(snap.agents.tenure_days))
    assert np.allclose(et.mean[rows_t], ref_t.mean)
    assert flat.prior_only(snap, contact_idx=ci, agent_idx=ai).sum() == 3 * snap.n_contacts


def test_ramp_adds_its_bonus_to_scores_and_draws_and_nothing_else(setup):
    model, live, snap, ci, ai = setup
    ramp = Ramp(bonus=0.1, days=10.0)
    plain, ramped = ModelScorer(model=model, live=live), ModelScorer(model=model, live=live, ramp=ramp)
    bonus = ramp.terms(snap.agents.tenure_days)[ai]
    assert bonus.max() == pytest.approx(0.05) and (bonus == 0).mean() > 0.5
    s0, s1 = (s.score_pairs(snap, contact_idx=ci, agent_idx=ai) for s in (plain, ramped))
    assert np.allclose(s1 - s0, bonus)
    d0, d1 = (s.posterior_draw(snap, contact_idx=ci, agent_idx=ai, rng=np.random.default_rng(1), n_draws=3)
              for s in (plain, ramped))
    assert np.allclose(d1 - d0, bonus[None])
    assert np.array_equal(plain.effects(snap)[0].mean, ramped.effects(snap)[0].mean)  # the estimate is unchanged
