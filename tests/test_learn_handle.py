"""The expected-handle proxy of the work floor's handle-aware bonus (assign.learn.handle)."""
from __future__ import annotations

import numpy as np
import pytest

from assign.errors import InputError
from assign.features import history_features
from assign.learn import PopulationModel
from assign.learn.handle import HandleModel
from assign.learn.population import RIDGE, design


@pytest.fixture(scope="module")
def fitted():
    from assign.world.centre import generate_history, generate_world

    world = generate_world(seed=5, n_agents=12, n_intents=4, n_customers=600)
    hist = generate_history(world, days=3, seed=5)
    model = PopulationModel.fit(hist)
    return hist, model, HandleModel.fit(hist, spec=model.spec)


def test_fit_is_the_ridge_least_squares_of_log_handle_on_the_design(fitted):
    hist, model, hm = fitted
    served = hist[hist["agent_id"].notna()].reset_index(drop=True)
    D = design(history_features(served, model.spec).X, n_intents=len(model.spec.intents))
    y = np.log(served["handle_s"].to_numpy(float))
    pen = np.sqrt(RIDGE * len(y)) * np.eye(D.shape[1])[1:]  # the intercept is not penalised
    want = np.linalg.lstsq(np.vstack([D, pen]), np.r_[y, np.zeros(len(pen))], rcond=None)[0]
    np.testing.assert_allclose(hm.coef, want, rtol=1e-6, atol=1e-9)
    assert hm.ref == pytest.approx(y.mean())
    # the intercept is free: the fitted log handle averages the observed one, so a typical contact's shortness is 1
    assert np.mean(np.log(hm.shortness(D @ hm.coef))) == pytest.approx(0.0, abs=1e-9)


def test_proxy_tracks_the_hidden_expected_handle_time(fitted):
    """From router-visible features only (no agent identity, no tenure), the proxy follows the
    world's true expected handle time of the pair (the truth column it never reads)."""
    hist, model, hm = fitted
    served = hist[hist["agent_id"].notna()].reset_index(drop=True)
    lh = hm.predict_rows(history_features(served, model.spec).X)
    assert np.corrcoef(lh, np.log(served["truth_handle_s"].to_numpy(float)))[0, 1] > 0.85


def test_too_few_handle_times_is_a_named_error(fitted):
    hist, model, _ = fitted
    short = hist[hist["agent_id"].notna()].head(30)
    with pytest.raises(InputError, match="handle_s"):
        HandleModel.fit(short, spec=model.spec)
