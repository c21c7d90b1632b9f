"""Warm start: a history's outcomes as outcome events, nothing lost, each where it belongs."""
from __future__ import annotations

import numpy as np
import pandas as pd

from assign.learn import LiveEstimates
from assign.learn.warm import history_outcomes
from assign.world.centre import generate_history, generate_world


def test_history_outcomes_carry_every_served_outcome_shifted():
    world = generate_world(seed=3, n_agents=8, n_intents=3, n_customers=500)
    hist = generate_history(world, days=1, seed=1)
    shift = -pd.Timedelta(days=1)
    ev = history_outcomes(hist, shift=shift)
    served = hist[hist["agent_id"].notna()]
    assert len(ev) == len(served) > 0  # a served contact always has its handle time
    by_id = served.set_index("contact_id")
    got = ev.set_index("decision_id")
    np.testing.assert_array_equal(got["agent_id"], by_id.loc[got.index, "agent_id"].astype(str))
    np.testing.assert_array_equal(got["resolved"], pd.to_numeric(by_id.loc[got.index, "resolved"]).astype(float))
    assert (got["known_at"] == pd.to_datetime(by_id.loc[got.index, "arrival_at"], utc=True) + shift).all()
    live = LiveEstimates(intents=world.intents)
    v = live.observe(ev)
    assert v.state.n_resolution.sum() == np.isfinite(ev["resolved"]).sum()
    assert v.state.n_csat.sum() == np.isfinite(ev["csat"]).sum()
