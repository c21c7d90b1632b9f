"""The loop's online level recalibration (assign.deploy.levels): the offsets folded in batches
equal a direct numpy recomputation over every outcome; the scorer adds them by intent name."""
from __future__ import annotations

import numpy as np
import pytest

from assign.deploy.levels import LevelOffsets, OffsetScorer
from assign.errors import InputError
from assign.scorer import Prior, Scorer


def _direct(*, at_s, known_s, intent, residual, n_intents, half_life_s, prior_n):
    """sum w r / (sum w + prior_n) per intent, w = 2 ** (-(at - known) / half-life), all at once."""
    w = 0.5 ** ((at_s - known_s) / half_life_s)
    s = np.array([(w * residual)[intent == i].sum() for i in range(n_intents)])
    n = np.array([w[intent == i].sum() for i in range(n_intents)])
    with np.errstate(invalid="ignore"):
        return s / (n + prior_n), n


@pytest.mark.parametrize("prior_n", [0.0, 20.0])
def test_batched_folds_equal_the_direct_recomputation(prior_n):
    rng = np.random.default_rng(7)
    k, h = 4, 12 * 3600.0
    known = np.sort(rng.uniform(0, 5 * 86400, 3000))
    intent = rng.integers(0, k - 1, len(known))  # the last intent never seen: offset 0
    resid = rng.integers(0, 2, len(known)) - rng.uniform(0.3, 0.8, len(known))
    lv = LevelOffsets(intents=tuple("abcd"), half_life_s=h, prior_n=prior_n)
    folds = np.arange(3600.0, 5 * 86400 + 3600.0, 3600.0 * 1.7)
    for at in folds:  # batches: what became known since the last fold (sometimes nothing)
        sel = (known <= at) & (known > at - 3600.0 * 1.7)
        got = lv.observe(at_s=at, known_s=known[sel], intent=intent[sel], residual=resid[sel])
    upto = known <= folds[-1]
    want, n = _direct(at_s=folds[-1], known_s=known[upto], intent=intent[upto], residual=resid[upto], n_intents=k,
                      half_life_s=h, prior_n=prior_n)
    if prior_n == 0:
        want[n == 0] = 0.0
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(lv.weight, n, rtol=1e-9)
    assert got[3] == 0.0 and lv.values is got


def test_a_level_shift_is_followed_within_a_few_half_lives():
    """Residuals jump from 0 to -0.3 on one intent: the offset moves to about -0.3 (shrunk)."""
    lv = LevelOffsets(intents=("x", "y"), half_life_s=3600.0, prior_n=5.0)
    t = np.arange(0, 48 * 3600.0, 60.0)
    res = np.where(t < 24 * 3600.0, 0.0, -0.3)
    lv.observe(at_s=t[-1], known_s=t, intent=np.zeros(len(t), np.int64), residual=res)
    r = 0.5 ** (60.0 / 3600.0)  # one outcome a minute: a geometric series of weights
    n_post, n_pre = (1 - r**1440) / (1 - r), r**1440 * (1 - r**1440) / (1 - r)
    assert lv.weight[0] == pytest.approx(n_post + n_pre, rel=1e-9)
    assert lv.values[0] == pytest.approx(-0.3 * n_post / (n_post + n_pre + 5.0), rel=1e-9)
    assert -0.3 < lv.values[0] < -0.28 and lv.values[1] == 0.0


def test_bad_input_names_every_problem():
    with pytest.raises(InputError) as e:
        LevelOffsets(intents=(), half_life_s=0.0, prior_n=-1.0)
    assert len(e.value.problems) == 3
    lv = LevelOffsets(intents=("x",), half_life_s=10.0)
    lv.observe(at_s=100.0, known_s=np.array([]), intent=np.array([], np.int64), residual=np.array([]))
    with pytest.raises(InputError) as e:
        lv.observe(at_s=50.0, known_s=np.array([60.0]), intent=np.array([3]), residual=np.array([np.nan]))
    assert len(e.value.problems) == 4  # known after at_s, bad code, not finite, before the last fold


class _Const(Scorer):
    name = "const"

    def score_pairs(self, snapshot, *, contact_idx, agent_idx):
        return np.full(len(contact_idx), 0.5)

    def prior(self, snapshot):
        return Prior(agent_intent=np.full((len(snapshot.agents.ids), len(snapshot.intents)), 0.5))


def _three_intents_one_agent():
    """Contacts of intents b, a, z (z unknown to the offsets) and one agent."""
    from assign.schema import build_snapshot

    return build_snapshot(
        contacts=[dict(contact_id=f"c{k}", channel="voice", intent=i, language="en", complexity=0.5, urgency=0.5,
                       sentiment=0.0, waited_s=0.0, style=None, customer_id="u", customer_tier=None)
                  for k, i in enumerate(["b", "a", "z"])],
        agents=[dict(agent_id="g", languages=["en"], skills={"a": 0.5, "b": 0.5, "z": 0.5}, capacity={"voice": 1},
                     load={}, tenure_days=1.0, sentiment_handling=0.5, style=None, idle_s=0.0)],
        snapshot_id="s", at=np.datetime64("2026-01-05T10:00:00"))


def test_offset_scorer_adds_the_intents_offset_by_name():
    snap = _three_intents_one_agent()
    lv = LevelOffsets(intents=("a", "b"), half_life_s=10.0, prior_n=0.0)
    lv.observe(at_s=0.0, known_s=np.zeros(2), intent=np.array([0, 1]), residual=np.array([-0.2, 0.1]))
    sc = OffsetScorer(base=_Const(), levels=lv)
    got = sc.score_pairs(snap, contact_idx=np.arange(3), agent_idx=np.zeros(3, np.int64))
    want = {"a": 0.3, "b": 0.6, "z": 0.5}  # z: unknown to the offsets
    np.testing.assert_allclose(got, [want[snap.intents[i]] for i in snap.contacts.intent], rtol=1e-12)
    pr = sc.prior(snap).agent_intent[0]
    np.testing.assert_allclose(pr, [want[k] for k in snap.intents], rtol=1e-12)


def test_reset_forgets_everything_before_it():
    """After reset, the offsets are those of the outcomes folded since, recomputed directly."""
    rng = np.random.default_rng(3)
    known = np.sort(rng.uniform(0, 86400.0, 400))
    intent, resid = rng.integers(0, 2, 400), rng.uniform(-0.5, 0.5, 400)
    lv = LevelOffsets(intents=("a", "b"), half_life_s=7200.0, prior_n=3.0)
    first = known < 43200.0
    lv.observe(at_s=43200.0, known_s=known[first], intent=intent[first], residual=resid[first])
    assert (lv.values != 0).all()
    lv.reset()
    assert (lv.values == 0).all() and (lv.weight == 0).all()
    lv.observe(at_s=86400.0, known_s=known[~first], intent=intent[~first], residual=resid[~first])
    want, n = _direct(at_s=86400.0, known_s=known[~first], intent=intent[~first], residual=resid[~first],
                      n_intents=2, half_life_s=7200.0, prior_n=3.0)
    np.testing.assert_allclose(lv.values, want, rtol=1e-9)
    np.testing.assert_allclose(lv.weight, n, rtol=1e-9)


@pytest.mark.parametrize("prior_n", [0.0, 20.0])
def test_a_rebase_equals_residuals_measured_against_the_shifted_base(prior_n):
    """``rebase(shift)`` then more folds equals folding every residual ``shift`` larger from the
    start (the pseudo-outcomes too: with a prior the offset moves by exactly ``shift`` at once);
    with no prior an intent with no outcome keeps 0."""
    rng = np.random.default_rng(3)
    k, h = 4, 6 * 3600.0
    known = np.sort(rng.uniform(0, 2 * 86400, 1200))
    intent = rng.integers(0, k - 1, len(known))  # the last intent never seen
    resid = rng.integers(0, 2, len(known)) - rng.uniform(0.3, 0.8, len(known))
    shift = np.array([0.2, -0.1, 0.05, 0.3])
    t_swap = 86400.0
    lv = LevelOffsets(intents=tuple("abcd"), half_life_s=h, prior_n=prior_n)
    first = known <= t_swap
    before = lv.observe(at_s=t_swap, known_s=known[first], intent=intent[first], residual=resid[first]).copy()
    after = lv.rebase(shift)
    if prior_n > 0:
        np.testing.assert_allclose(after, before + shift, rtol=1e-12, atol=1e-14)
    else:
        np.testing.assert_allclose(after[:3], before[:3] + shift[:3], rtol=1e-12, atol=1e-14)
        assert after[3] == 0.0
    # later outcomes are measured against the new base (not shifted); earlier ones count shifted
    lv.observe(at_s=2 * 86400.0, known_s=known[~first], intent=intent[~first], residual=resid[~first])
    w = 0.5 ** ((2 * 86400.0 - known) / h)
    r = np.where(first, resid + shift[intent], resid)
    s = np.array([(w * r)[intent == i].sum() for i in range(k)])
    n = np.array([w[intent == i].sum() for i in range(k)])
    prior_s = shift * prior_n * 0.5 ** ((2 * 86400.0 - t_swap) / h)  # the shifted pseudo-outcomes, decayed since
    want = np.zeros(k)
    np.divide(s + prior_s, n + prior_n, out=want, where=(n + prior_n) > 0)
    np.testing.assert_allclose(lv.values, want, rtol=1e-9, atol=1e-12)


def test_a_rebase_refuses_a_bad_shift():
    lv = LevelOffsets(intents=("a", "b"), half_life_s=3600.0)
    with pytest.raises(InputError, match="shape"):
        lv.rebase(np.zeros(3))
    with pytest.raises(InputError, match="not finite"):
        lv.rebase(np.array([0.0, np.nan]))


def test_the_logit_scale_moves_the_mean_predicted_level_onto_the_observed_one():
    """slope28: delta_i = logit(m_i + offset_i) - logit(m_i), m_i the decayed mean prediction,
    recomputed directly; folded in batches. An intent with no outcome keeps delta 0."""
    rng = np.random.default_rng(11)
    k, h = 3, 6 * 3600.0
    known = np.sort(rng.uniform(0, 86400.0, 900))
    intent = rng.integers(0, k - 1, len(known))
    pred = rng.uniform(0.4, 0.9, len(known))
    resid = rng.integers(0, 2, len(known)) - pred
    lv = LevelOffsets(intents=tuple("abc"), half_life_s=h, prior_n=5.0, scale="logit")
    for lo in np.arange(0.0, 86400.0, 7200.0):
        sel = (known >= lo) & (known < lo + 7200.0)
        lv.observe(at_s=lo + 7200.0, known_s=known[sel], intent=intent[sel], residual=resid[sel], predicted=pred[sel])
    want, n = _direct(at_s=86400.0, known_s=known, intent=intent, residual=resid, n_intents=k, half_life_s=h,
                      prior_n=5.0)
    w = 0.5 ** ((86400.0 - known) / h)
    m = np.array([(w * pred)[intent == i].sum() for i in range(k - 1)]) / n[: k - 1]
    logit = lambda p: np.log(p / (1 - p))
    np.testing.assert_allclose(lv.values, want, rtol=1e-9)
    np.testing.assert_allclose(lv.logits[: k - 1], logit(m + want[: k - 1]) - logit(m), rtol=1e-9)
    assert lv.logits[2] == 0.0


def test_the_logit_scale_stretches_the_agents_gaps_as_a_logit_shift_of_the_truth_does():
    """Agents' true logits z_a; the intent's logit falls by 1.5 (the living centre's shock). The
    champion still predicts sigmoid(z_a). Folding the expected outcomes, the logit-scale route of
    the champion's scores is within 0.02 of the truth for every agent, and its gaps between
    agents are the truth's to within 10%; the probability scale keeps the old gaps."""
    z = np.linspace(0.5, 2.0, 8)
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))
    old, new = sig(z), sig(z - 1.5)
    agent = np.tile(np.arange(len(z)), 200)
    routed = {}
    for scale in ("probability", "logit"):
        lv = LevelOffsets(intents=("x",), half_life_s=3600.0, prior_n=0.0, scale=scale)
        lv.observe(at_s=10.0, known_s=np.zeros(len(agent)), intent=np.zeros(len(agent), np.int64),
                   residual=new[agent] - old[agent], predicted=old[agent])
        routed[scale] = lv.route(old, np.full(len(z), lv.values[0]), np.full(len(z), lv.logits[0]))
    np.testing.assert_allclose(routed["logit"], new, atol=0.02)
    np.testing.assert_allclose(np.diff(routed["logit"]), np.diff(new), rtol=0.1)
    np.testing.assert_allclose(np.diff(routed["probability"]), np.diff(old), rtol=1e-12)
    assert routed["probability"].mean() == pytest.approx(new.mean(), rel=1e-12)
    assert (np.diff(new) / np.diff(old)).max() > 2  # the gaps did move: doubled among the best agents


def test_the_logit_scale_needs_the_predictions_and_a_known_scale():
    with pytest.raises(InputError, match="scale"):
        LevelOffsets(intents=("x",), half_life_s=10.0, scale="log")
    lv = LevelOffsets(intents=("x",), half_life_s=10.0, scale="logit")
    with pytest.raises(InputError, match="predicted: needed"):
        lv.observe(at_s=1.0, known_s=np.zeros(1), intent=np.zeros(1, np.int64), residual=np.zeros(1))
    with pytest.raises(InputError, match="outside"):
        lv.observe(at_s=1.0, known_s=np.zeros(1), intent=np.zeros(1, np.int64), residual=np.zeros(1),
                   predicted=np.array([1.5]))


def test_offset_scorer_on_the_logit_scale():
    """The scorer routes sigmoid(logit(base) + delta) by intent name, the retrieval prior too."""
    snap = _three_intents_one_agent()
    lv = LevelOffsets(intents=("a", "b"), half_life_s=10.0, prior_n=0.0, scale="logit")
    lv.observe(at_s=0.0, known_s=np.zeros(2), intent=np.array([0, 1]), residual=np.array([-0.2, 0.1]),
               predicted=np.array([0.5, 0.5]))
    sc = OffsetScorer(base=_Const(), levels=lv)
    got = sc.score_pairs(snap, contact_idx=np.arange(3), agent_idx=np.zeros(3, np.int64))
    want = {"a": 0.3, "b": 0.6, "z": 0.5}  # base 0.5 everywhere: the observed level exactly
    np.testing.assert_allclose(got, [want[snap.intents[i]] for i in snap.contacts.intent], rtol=1e-12)
    np.testing.assert_allclose(sc.prior(snap).agent_intent[0], [want[k] for k in snap.intents], rtol=1e-12)
