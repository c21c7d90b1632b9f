"""A centre with an earlier hiring cohort: the world option and the history's world."""
from __future__ import annotations

import numpy as np
import pytest

from assign.errors import InputError
from assign.world.centre import generate_world, hire_days, history_world, past_hires


@pytest.fixture(scope="module")
def worlds():
    kw = dict(seed=11, n_agents=30, n_intents=6, n_customers=1500, new_hires=0.2)
    return generate_world(**kw), generate_world(**kw, past_hires=0.2, past_hire_days=14.0)


def test_past_hires_are_a_share_of_day_one_agents_at_their_tenure(worlds):
    plain, world = worlds
    past = past_hires(world.agents)
    assert past.sum() == 6 and not past_hires(plain.agents).any()
    assert (hire_days(world.agents)[past] == 0).all()  # never one of the new hires
    np.testing.assert_array_equal(world.agents["tenure_days"].to_numpy()[past], 14.0)
    # every other draw is the world's without them: same agents, abilities, skills, new hires
    np.testing.assert_array_equal(world.agents["ability"], plain.agents["ability"])
    np.testing.assert_array_equal(hire_days(world.agents), hire_days(plain.agents))
    np.testing.assert_array_equal(world.agents["tenure_days"].to_numpy()[~past], plain.agents["tenure_days"][~past])


def test_history_world_is_the_day_one_agents_at_their_earlier_tenure(worlds):
    _, world = worlds
    hw = history_world(world, days=14)
    day1 = hire_days(world.agents) == 0
    assert list(hw.agents["agent_id"]) == list(world.agents["agent_id"][day1])
    want = np.maximum(world.agents["tenure_days"].to_numpy()[day1] - 14.0, 0.0)
    np.testing.assert_array_equal(hw.agents["tenure_days"].to_numpy(), want)
    assert (hw.agents["tenure_days"].to_numpy()[past_hires(hw.agents)] == 0).all()


def test_bad_past_hire_parameters_are_all_named():
    with pytest.raises(InputError) as e:
        generate_world(seed=1, n_agents=10, n_intents=4, new_hires=0.6, past_hires=0.5, past_hire_days=-1.0)
    msg = str(e.value)
    assert "past_hires" in msg and "past_hire_days" in msg


@pytest.mark.slow
def test_an_earlier_cohort_in_the_history_places_new_hires_below_the_tenured_agents():
    """The new hires' prior is the tenure band's mean; with an earlier cohort's first week in the
    history it is learnt (the truth's learning curve: -0.9 on the logit at tenure 0), without it
    the band is empty and the hires sit at the centre."""
    import pandas as pd

    from assign.learn import EffectEstimates, PopulationModel
    from assign.learn.effects import fit_effects, tenure_band
    from assign.learn.warm import history_outcomes
    from assign.world.centre import generate_history

    prior = {}
    for past in (0.0, 0.25):
        world = generate_world(seed=21, n_agents=24, n_intents=4, n_customers=1500, new_hires=0.25,
                               past_hires=past, past_hire_days=7.0)
        hist = generate_history(history_world(world, days=7), days=7, seed=3)
        model = PopulationModel.fit(hist)
        live = EffectEstimates()
        ev = history_outcomes(hist, shift=-pd.Timedelta(days=7))
        live.observe(ev.merge(model.history_predictions(hist), left_on="decision_id", right_on="contact_id")
                     .drop(columns="contact_id"))
        ids = world.agents["agent_id"].astype(str).to_numpy()
        tenure = np.maximum(world.agents["tenure_days"].to_numpy(float), 0.0)
        eff = fit_effects(live.current().totals(ids), cohort=tenure_band(tenure))
        hires, old = hire_days(world.agents) == 1, ~past_hires(world.agents) & (hire_days(world.agents) == 0)
        assert (eff.n_obs[hires] == 0).all()
        prior[past] = eff.mean[hires].mean() - eff.mean[old].mean()
    assert prior[0.25] < -0.3 < prior[0.0]
