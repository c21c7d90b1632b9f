"""The synthetic centre: determinism, the standard centre's load, shifts, arrivals, the truth
(checked against a plain-Python transcription of the documented formula) and the history."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from assign.errors import InputError
from assign.history import COLUMN_NAMES, conform_history
from assign.schema import CHANNELS, Snapshot
from assign.world.centre import DAY_S, World, generate_history, generate_world
from assign.world.truth import COEF_NAMES


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(n_agents=30, seed=3)


@pytest.fixture(scope="module")
def history(world: World) -> pd.DataFrame:
    return generate_history(world, days=2, seed=4)


def test_same_seed_same_world_and_arrivals() -> None:
    a, b = generate_world(n_agents=12, seed=5), generate_world(n_agents=12, seed=5)
    pd.testing.assert_frame_equal(a.agents, b.agents)
    ra = a.sample_arrivals(rng=np.random.default_rng(1), start_s=0, end_s=7200)
    rb = b.sample_arrivals(rng=np.random.default_rng(1), start_s=0, end_s=7200)
    pd.testing.assert_frame_equal(ra, rb)
    assert not generate_world(n_agents=12, seed=6).agents.equals(a.agents)


def test_standard_centre_volume_and_offered_load() -> None:
    w = generate_world(seed=7)  # the STANDARD CENTRE
    assert w.n_agents == 200 and len(w.intents) == 30 and w.start.weekday() == 0 and w.start.hour == 0
    rep = w.load_report()
    per_day = rep.groupby("weekday")["contacts"].sum()
    assert (per_day >= 40_000).all(), per_day
    assert rep["offered_load"].between(0.80, 0.95).all()
    # the staffed capacity follows the arrival profile: more agents at 11:00 than at 03:00
    assert w.on_shift(11 * 3600).sum() > 3 * w.on_shift(3 * 3600).sum()
    assert set(w.agents["capacity_chat"].unique()) <= {0, 2, 3}
    h = generate_history(w, days=1, seed=8)
    assert len(h) >= 40_000
    assert 0.0 < h["abandoned"].mean() < 0.10  # queues form but the centre copes
    wait_by_hour = h.groupby(h["arrival_at"].dt.hour)["wait_s"].mean()
    assert wait_by_hour.max() > 5 * wait_by_hour.min()  # queues form at peaks


def test_on_shift_matches_the_shift_table(world: World) -> None:
    ag = world.agents
    for t in np.arange(0.0, 7 * DAY_S, 3 * 3600.0 + 77):
        got = world.on_shift(t)
        for j in range(len(ag)):
            s, e = ag["shift_start_h"][j], ag["shift_end_h"][j]
            day, hour = divmod(t / 3600.0, 24.0)
            started = day if hour >= s else day - 1
            inside = (hour - s) % 24 < ((e - s) % 24 or 24)
            want = inside and int(started % 7) not in ag["off_days"][j]
            assert got[j] == want, (t, j)


def test_arrivals_vary_by_hour_and_repeat(world: World) -> None:
    arr = world.sample_arrivals(rng=np.random.default_rng(0), start_s=0.0, end_s=DAY_S)
    assert list(arr.columns) == ["contact_id", "arrival_s", "channel", "intent", "language", "complexity",
                                 "urgency", "sentiment", "style", "customer_id", "customer_tier", "patience_s"]
    assert arr["arrival_s"].is_monotonic_increasing and arr["contact_id"].is_unique
    hours = (arr["arrival_s"] // 3600).value_counts()
    assert hours.get(11, 0) > 4 * hours.get(3, 0)
    assert arr["customer_id"].duplicated().any()
    assert set(arr["channel"]) == set(CHANNELS)
    sat = world.sample_arrivals(rng=np.random.default_rng(0), start_s=6 * DAY_S, end_s=7 * DAY_S)
    assert len(sat) < len(arr)  # Sunday has fewer staff and fewer contacts
    with pytest.raises(InputError):
        world.sample_arrivals(rng=np.random.default_rng(0), start_s=10.0, end_s=5.0)


def _reference_truth(w: World, c, i: int, j: int, load: float) -> tuple[float, float, float]:
    """The hidden model written out again from its documented coefficients."""
    k = dict(zip(COEF_NAMES, w.coef))
    a = w.arrays
    it = c.intent[i]
    prof = a.skill[j, it]
    speaks = a.speaks[j, c.language[i]]
    sm = float(c.style[i] >= 0 and c.style[i] == a.style[j])
    neg = max(-c.sentiment[i], 0.0)
    nh = math.exp(-a.tenure_days[j] / k["tenure_scale_days"])
    z = (k["res_base"] + w.intent_base[it] + k["res_prof"] * prof + k["res_prof_x_cx"] * prof * c.complexity[i]
         + k["res_cx"] * c.complexity[i] + k["res_style"] * sm + k["res_neg"] * neg
         + k["res_handling_x_neg"] * a.sentiment_handling[j] * neg + k["res_new_hire"] * nh + a.ability[j]
         + k["res_load"] * load + (k["res_unskilled"] if prof <= 0 else 0.0)
         + (0.0 if speaks else k["res_no_language"]))
    zc = (k["csat_base"] + k["csat_res"] * z + k["csat_style"] * sm + k["csat_neg"] * neg
          + k["csat_handling_x_neg"] * a.sentiment_handling[j] * neg + k["csat_ability"] * a.ability[j])
    lh = (k["ht_cx"] * (c.complexity[i] - 0.45) + k["ht_prof"] * (prof - 0.6) + k["ht_new_hire"] * nh
          + k["ht_load"] * load + a.speed[j] + (0.0 if speaks else k["ht_no_language"]))
    from assign.world.centre import CHANNEL_HANDLE_S

    ht = CHANNEL_HANDLE_S[c.channel[i]] * w.intent_handle[it] * math.exp(lh)
    return 1 / (1 + math.exp(-z)), 1 + 4 / (1 + math.exp(-zc)), ht


def test_truth_equals_the_written_formula(world: World) -> None:
    arr = world.sample_arrivals(rng=np.random.default_rng(2), start_s=9 * 3600.0, end_s=9.2 * 3600.0)
    c = world.contacts_block(arr)
    rng = np.random.default_rng(3)
    ci = rng.integers(0, len(c), 200)
    ai = rng.integers(0, world.n_agents, 200)
    load = rng.integers(0, 3, 200).astype(float)
    tr = world.truth(contacts=c, contact_idx=ci, agent_idx=ai, agent_load=load)
    for k in range(200):
        want = _reference_truth(world, c, ci[k], ai[k], load[k])
        got = (tr.p_resolved[k], tr.csat_mean[k], tr.handle_mean_s[k])
        assert np.allclose(got, want, rtol=1e-12), k


def test_match_effects_are_large(world: World) -> None:
    """For the same contact, the best agent beats the average agent by a visible margin."""
    arr = world.sample_arrivals(rng=np.random.default_rng(4), start_s=10 * 3600.0, end_s=10.5 * 3600.0)
    c = world.contacts_block(arr)
    n, m = len(c), world.n_agents
    ci = np.repeat(np.arange(n), m)
    ai = np.tile(np.arange(m), n)
    p = world.truth(contacts=c, contact_idx=ci, agent_idx=ai).p_resolved.reshape(n, m)
    assert (p.max(axis=1) - p.mean(axis=1)).mean() > 0.15


def test_draws_have_the_truth_as_expectation(world: World) -> None:
    arr = world.sample_arrivals(rng=np.random.default_rng(5), start_s=0, end_s=3 * 3600.0)
    c = world.contacts_block(arr)
    ci = np.repeat(np.arange(len(c)), 40)[:20_000]
    ai = np.random.default_rng(6).integers(0, world.n_agents, len(ci))
    tr = world.truth(contacts=c, contact_idx=ci, agent_idx=ai)
    res, csat, ht = world.draw_outcomes(rng=np.random.default_rng(7), truth=tr)
    n = len(ci)
    assert abs(res.mean() - tr.p_resolved.mean()) < 4 * 0.5 / math.sqrt(n)
    assert abs(csat.mean() - tr.csat_mean.mean()) < 4 * 1.0 / math.sqrt(n)
    assert set(np.unique(csat)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert abs(ht.mean() / tr.handle_mean_s.mean() - 1) < 0.03


def test_save_load_round_trip(world: World, tmp_path) -> None:
    world.save(tmp_path / "w")
    back = World.load(tmp_path / "w")
    pd.testing.assert_frame_equal(back.agents.drop(columns=["skills"]), world.agents.drop(columns=["skills"]),
                                  check_dtype=False)
    assert list(back.agents["skills"]) == list(world.agents["skills"])
    assert back.start == world.start and back.intents == world.intents
    arr = world.sample_arrivals(rng=np.random.default_rng(1), start_s=0, end_s=3600 * 12)
    c = world.contacts_block(arr)
    idx = np.arange(min(len(c), 50))
    a, b = (w.truth(contacts=c, contact_idx=idx, agent_idx=idx % world.n_agents) for w in (world, back))
    np.testing.assert_array_equal(a.p_resolved, b.p_resolved)
    with pytest.raises(InputError, match="world.json: missing"):
        World.load(tmp_path / "nowhere")


def test_agents_block_builds_snapshots(world: World) -> None:
    ag = world.agents_block(t_s=DAY_S)
    assert len(ag) == world.n_agents and ag.skill.shape == (world.n_agents, len(world.intents))
    np.testing.assert_allclose(ag.tenure_days, world.agents["tenure_days"] + 1.0)
    arr = world.sample_arrivals(rng=np.random.default_rng(1), start_s=0, end_s=600)
    snap = Snapshot(snapshot_id="s", at=world.start, intents=world.intents, languages=world.languages,
                    styles=world.styles, contacts=world.contacts_block(arr), agents=ag)
    assert snap.n_agents == world.n_agents


def test_history_contract_and_policy(world: World, history: pd.DataFrame) -> None:
    assert tuple(history.columns[: len(COLUMN_NAMES)]) == COLUMN_NAMES
    conform_history(history)
    served = ~history["abandoned"].to_numpy(bool)
    assert 0.7 < served.mean() < 1.0  # small pools queue more than the standard centre
    s = history[served]
    cols = ["agent_id", "truth_p_resolved", "truth_csat", "truth_handle_s", "propensity", "handle_s"]
    assert s[cols].notna().all().all()
    assert history.loc[~served, "agent_id"].isna().all() and history.loc[~served, "truth_p_resolved"].isna().all()
    assert s["propensity"].between(0, 1, inclusive="right").all()
    assert abs(s["resolved"].mean() - s["truth_p_resolved"].mean()) < 0.02
    # every logged agent was on shift with capacity on the channel when the contact started
    t0 = (history["arrival_at"] - pd.Timestamp(world.start)).dt.total_seconds() + history["wait_s"]
    code = {a: j for j, a in enumerate(world.agents["agent_id"])}
    for k in np.flatnonzero(served)[::97]:
        j = code[history["agent_id"].iloc[k]]
        ch = CHANNELS.index(history["channel"].iloc[k])
        assert world.on_shift(float(t0.iloc[k]))[j]
        assert world.arrays.capacity[j, ch] > 0
    # skills-based policy: the logged agent is skilled for the intent far more often than not
    assert (s["agent_proficiency"] > 0).mean() > 0.8  # fallback only when no skilled agent is on shift
    assert history["repeat_72h"].any()


def test_history_is_deterministic(world: World, history: pd.DataFrame) -> None:
    again = generate_history(world, days=2, seed=4)
    pd.testing.assert_frame_equal(again, history)
    with pytest.raises(InputError, match="days"):
        generate_history(world, days=0, seed=1)


@pytest.mark.parametrize(
    "kw, msg", [(dict(n_agents=2), "n_agents"), (dict(n_intents=1), "n_intents"), (dict(occupancy=0.0), "occupancy")]
)
def test_bad_world_parameters(kw, msg) -> None:
    with pytest.raises(InputError, match=msg):
        generate_world(seed=1, **kw)
