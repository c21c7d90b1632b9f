"""OPE estimators: a hand-computed case, the Open Bandit Pipeline formulas, IPS unbiasedness,
input checks, support refusal."""
from __future__ import annotations

import numpy as np
import pytest

from assign.errors import InputError
from assign.ope import (
    ESTIMATORS,
    SwitchDoublyRobust,
    check_ope_inputs,
    effective_sample_size,
    evaluate,
)
from assign.ope.estimators import bootstrap_ratio


@pytest.fixture
def small():
    """Two windows. Window 0: the target makes pairs A (logged, p=0.5, r=1, q=0.6) and B (not
    logged, p=0.2, q=0.3). Window 1: pair C (logged, p=0.25, r=0, q=0.4)."""
    return check_ope_inputs(window=[0, 0, 1], n_windows=2, matched=[True, False, True], reward=[1.0, np.nan, 0.0],
                            pscore=[0.5, 0.2, 0.25], q_hat=[0.6, 0.3, 0.4])


def test_hand_computed(small):
    # weights 2, 0, 4; three target pairs
    hand = {
        "dm": (0.6 + 0.3 + 0.4) / 3,
        "ips": (2 * 1 + 0 + 4 * 0) / 3,
        "snips": (2 * 1 + 4 * 0) / (2 + 4),
        "dr": ((0.6 + 2 * (1 - 0.6)) + 0.3 + (0.4 + 4 * (0 - 0.4))) / 3,
    }
    for name, v in hand.items():
        assert ESTIMATORS[name]().estimate_policy_value(small) == pytest.approx(v, rel=1e-12)
    # switch at tau = 3: pair C (weight 4) falls back to DM
    sw = ((0.6 + 2 * 0.4) + 0.3 + 0.4) / 3
    assert SwitchDoublyRobust(tau=3.0).estimate_policy_value(small) == pytest.approx(sw, rel=1e-12)
    assert effective_sample_size(small) == pytest.approx(36 / 20)


def _obp_reference(rng, n=400, k=5):
    """A contextual bandit log and obp's formulas (obp/ope/estimators.py), written out."""
    logits = rng.normal(size=(n, k))
    pi_b = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    action = np.array([rng.choice(k, p=p) for p in pi_b])
    pscore = pi_b[np.arange(n), action]
    target = rng.integers(0, k, n)
    action_dist = np.eye(k)[target]                       # deterministic evaluation policy
    q = rng.uniform(0.2, 0.9, size=(n, k))                # estimated_rewards_by_reg_model
    reward = rng.binomial(1, 0.5, n).astype(float)
    iw = action_dist[np.arange(n), action] / pscore
    q_fact = q[np.arange(n), action]
    dm_rounds = (action_dist * q).sum(axis=1)
    ref = {"ips": np.mean(iw * reward), "snips": np.mean(iw * reward) / np.mean(iw), "dm": np.mean(dm_rounds),
           "dr": np.mean(dm_rounds + iw * (reward - q_fact))}
    lam = 3.0
    ref["switch-dr"] = np.mean(dm_rounds + (iw <= lam) * iw * (reward - q_fact))
    # each round is one window with one contact the target serves
    data = check_ope_inputs(window=np.arange(n), n_windows=n, matched=target == action,
                            reward=np.where(target == action, reward, np.nan), pscore=pi_b[np.arange(n), target],
                            q_hat=q[np.arange(n), target])
    return ref, data, lam


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_obp_formulas_on_a_bandit(seed):
    ref, data, lam = _obp_reference(np.random.default_rng(seed))
    for name in ("dm", "ips", "snips", "dr"):
        assert ESTIMATORS[name]().estimate_policy_value(data) == pytest.approx(ref[name], rel=1e-10), name
    assert SwitchDoublyRobust(tau=lam).estimate_policy_value(data) == pytest.approx(ref["switch-dr"], rel=1e-10)


def test_switch_limits(small):
    dr = ESTIMATORS["dr"]().estimate_policy_value(small)
    dm = ESTIMATORS["dm"]().estimate_policy_value(small)
    assert SwitchDoublyRobust(tau=np.inf).estimate_policy_value(small) == pytest.approx(dr)
    assert SwitchDoublyRobust(tau=0.0).estimate_policy_value(small) == pytest.approx(dm)


def test_switch_tuning_picks_dr_when_weights_are_tame():
    rng = np.random.default_rng(5)
    n = 2000
    p = rng.uniform(0.5, 1.0, n)
    m = rng.random(n) < p
    data = check_ope_inputs(window=np.arange(n), n_windows=n, matched=m, reward=rng.binomial(1, 0.7, n) * 1.0,
                            pscore=p, q_hat=np.full(n, 0.7))
    assert SwitchDoublyRobust().tune(data) >= 2.0  # every weight <= 2: nothing to switch off


def _matching_world():
    """Windows of 2 contacts x 2 agents (capacity 1): the logger picks the diagonal matching
    with probability 0.7, the anti-diagonal with 0.3; pair rewards are Bernoulli(q)."""
    q = np.array([[0.9, 0.4], [0.3, 0.8]])      # q[contact, agent]
    target = [(0, 1), (1, 0)]                    # the anti-diagonal: pair propensity 0.3 each
    return q, target, 0.7


@pytest.mark.slow
def test_ips_unbiased_on_a_small_matching():
    q, target, p_diag = _matching_world()
    truth = np.mean([q[c, a] for c, a in target])
    rng = np.random.default_rng(11)
    n_logs, n_win = 4000, 40
    est = np.empty(n_logs)
    for k in range(n_logs):
        diag = rng.random(n_win) < p_diag
        window = np.repeat(np.arange(n_win), 2)
        matched = np.repeat(~diag, 2)                 # target pairs logged iff the anti-diagonal was drawn
        r = rng.random(2 * n_win) < np.tile([q[c, a] for c, a in target], n_win)
        data = check_ope_inputs(window=window, n_windows=n_win, matched=matched,
                                reward=np.where(matched, r, np.nan), pscore=np.full(2 * n_win, 1 - p_diag))
        est[k] = ESTIMATORS["ips"]().estimate_policy_value(data)
    se = est.std(ddof=1) / np.sqrt(n_logs)
    assert abs(est.mean() - truth) < 3 * se, (est.mean(), truth, se)
    # and the importance weights are what make it so: the unweighted mean of matched rewards is not
    assert abs(est.mean() * (1 - p_diag) - truth) > 10 * se


def test_check_inputs_names_every_bad_argument():
    with pytest.raises(InputError) as err:
        check_ope_inputs(window=[0, 1, 2], n_windows=3, matched=[True, True], reward=[1.0, 0.0, 1.0],
                         pscore=[0.5, 0.5, 0.5], q_hat=[0.1, np.nan, 0.2])
    assert "matched: length 2, expected 3" in str(err.value)
    with pytest.raises(InputError) as err:
        check_ope_inputs(window=[0, 1], n_windows=2, matched=[True, True], reward=[1.0, np.nan],
                         pscore=[0.0, 0.5], q_hat=[0.1, np.inf])
    msg = str(err.value)
    assert "reward: 1 matched pairs" in msg and "pscore: 1 matched pairs" in msg and "q_hat: 1 non-finite" in msg
    with pytest.raises(InputError, match="q_hat: dr needs"):
        ESTIMATORS["dr"]().estimate_policy_value(check_ope_inputs(window=[0], n_windows=1, matched=[True],
                                                                  reward=[1.0], pscore=[0.5]))


def test_refuses_every_estimator_without_support(small):
    bad = check_ope_inputs(window=[0, 0, 1], n_windows=2, matched=[True, False, False], reward=[1.0, np.nan, np.nan],
                           pscore=[0.5, 0.0, 0.0], q_hat=[0.6, 0.3, 0.4])
    res = evaluate(bad, policy="t", n_bootstrap=50)
    assert res.support_deficiency == pytest.approx(2 / 3)
    assert all(e.value is None and "missing support" in e.refused for e in res.estimates.values())
    ok = evaluate(small, policy="t", n_bootstrap=50)
    assert all(e.value is not None and e.ci_low <= e.value <= e.ci_high for e in ok.estimates.values())
    with pytest.raises(InputError, match="estimators\\[0\\]"):
        evaluate(small, policy="t", estimators=["nope"])


def test_bootstrap_interval_matches_normal_theory():
    rng = np.random.default_rng(3)
    a = rng.normal(1.0, 1.0, 4000)
    iv = bootstrap_ratio(a, np.ones_like(a), alpha=0.05, n_bootstrap=2000, random_state=0)
    half = 1.96 * a.std(ddof=1) / np.sqrt(len(a))
    assert (iv.high - iv.low) / 2 == pytest.approx(half, rel=0.1)


def test_doctests():
    import doctest

    import assign.ope.estimators as mod

    assert doctest.testmod(mod).attempted > 0 and doctest.testmod(mod).failed == 0
