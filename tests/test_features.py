"""Features: numba crosses equal the numpy reference; point-in-time statistics equal a brute
force and never see the future; the spec refuses missing, extra, shuffled and truth columns;
tick rows equal training rows for the same pair."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from assign.errors import ModelError
from assign.features import FEATURES, FeatureSpec, TickFeaturizer, fit_spec, history_features
from assign.features.crosses import AgentTable, ContactTable, PairInputs, assemble, assemble_reference
from assign.features.rolling import recent_counts
from assign.schema import Snapshot
from assign.world.centre import generate_history, generate_world


@pytest.fixture(scope="module")
def world():
    return generate_world(n_agents=16, seed=11)


@pytest.fixture(scope="module")
def history(world):
    return generate_history(world, days=1, seed=12)


def _random_tables(rng: np.random.Generator, n_c: int, n_a: int, n_p: int, n_lang: int = 4):
    f = lambda n: np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)).astype(np.float32)
    c = ContactTable(channel=rng.integers(0, 3, n_c).astype(np.int32), intent=rng.integers(-1, 9, n_c).astype(np.int32),
                     complexity=f(n_c), urgency=f(n_c), sentiment=f(n_c), priority=f(n_c), hour=f(n_c), weekday=f(n_c),
                     cust_recent=f(n_c), language=rng.integers(-1, n_lang, n_c).astype(np.int32),
                     style=rng.integers(-1, 3, n_c).astype(np.int32))
    speaks = (rng.random((n_a, n_lang)) < 0.5).astype(np.float32)
    speaks[rng.random(n_a) < 0.2] = np.nan
    a = AgentTable(log_tenure=f(n_a), handling=f(n_a), speaks=speaks, style=rng.integers(-1, 3, n_a).astype(np.int32),
                   rate=f(n_a), log_n=f(n_a), handle_ratio=f(n_a), csat=f(n_a))
    p = PairInputs(contact_idx=rng.integers(0, n_c, n_p), agent_idx=rng.integers(0, n_a, n_p), proficiency=f(n_p),
                   load=f(n_p), ai_rate=f(n_p), ai_log_n=f(n_p))
    return c, a, p


@pytest.mark.parametrize("seed", range(5))
def test_numba_crosses_equal_numpy_reference(seed: int) -> None:
    c, a, p = _random_tables(np.random.default_rng(seed), 40, 15, 500)
    got, want = assemble(c, a, p), assemble_reference(c, a, p)
    assert got.dtype == np.float32 and got.shape == (500, len(FEATURES))
    np.testing.assert_array_equal(got, want)  # NaN in the same places, values bit-equal
    assert np.isnan(got).any()


def test_recent_counts_brute_force() -> None:
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 10 * 86400, 400))
    cust = rng.integers(-1, 30, 400)
    got = recent_counts(t=t, customer=cust, window_s=72 * 3600.0)
    for i in range(400):
        if cust[i] < 0:
            assert np.isnan(got[i])
        else:
            assert got[i] == ((cust == cust[i]) & (t < t[i]) & (t >= t[i] - 72 * 3600.0)).sum()


def test_point_in_time_equals_brute_force(history: pd.DataFrame) -> None:
    spec = fit_spec(history, smoothing=5.0)
    X = history_features(history, spec).X
    t = history["arrival_at"].astype("int64").to_numpy() / 1e9
    known = t + history["wait_s"].to_numpy() + history["handle_s"].fillna(np.nan).to_numpy()
    res = history["resolved"].astype("float64").to_numpy(na_value=np.nan)
    agent = history["agent_id"].to_numpy(dtype=object, na_value=None)
    intent = history["intent"].to_numpy(dtype=object)
    col = {n: k for k, n in enumerate(FEATURES)}
    rng = np.random.default_rng(1)
    for i in rng.choice(np.flatnonzero(agent != None), 60, replace=False):  # noqa: E711
        past = (agent == agent[i]) & (known < t[i]) & np.isfinite(res)
        n = past.sum()
        rate = (res[past].sum() + 5.0 * spec.prior_rate) / (n + 5.0) if n else np.nan
        np.testing.assert_allclose(X[i, col["agent_rate"]], rate, rtol=1e-6, equal_nan=True)
        assert X[i, col["agent_log_n"]] == pytest.approx(np.log1p(n))
        pi = past & (intent == intent[i])
        ni = pi.sum()
        ai = (res[pi].sum() + 5.0 * rate) / (ni + 5.0) if ni and n else np.nan
        np.testing.assert_allclose(X[i, col["agent_intent_rate"]], ai, rtol=1e-6, equal_nan=True)


def test_no_leakage_future_rows_change_nothing(history: pd.DataFrame) -> None:
    """Features of the first k contacts are the same whether or not the later ones (and
    their outcomes) exist, and scrambling the outcomes of later rows changes nothing."""
    h = history.sort_values("arrival_at", kind="stable").reset_index(drop=True)
    spec = fit_spec(h)
    full = history_features(h, spec).X
    k = len(h) // 2
    prefix = history_features(h.iloc[:k].reset_index(drop=True), spec).X
    np.testing.assert_array_equal(prefix, full[:k])
    cut = h["arrival_at"].iloc[k]
    scrambled = h.copy()
    later = scrambled["arrival_at"] >= cut
    flip = later & scrambled["resolved"].notna()
    scrambled.loc[flip, "resolved"] = ~scrambled.loc[flip, "resolved"].astype(bool)
    scrambled.loc[later, "csat"] = 1.0
    x2 = history_features(scrambled, spec).X
    np.testing.assert_array_equal(x2[: int((~later).sum())], full[: int((~later).sum())])
    # an outcome only counts once the contact has ended: the first contact of each agent has none
    first = ~h["agent_id"].duplicated() & h["agent_id"].notna()
    assert np.isnan(full[first.to_numpy(), FEATURES.index("agent_rate")]).all()


def test_spec_refuses_bad_frames(history: pd.DataFrame) -> None:
    spec = fit_spec(history)
    X = history_features(history.head(50), spec).X
    frame = pd.DataFrame(X, columns=list(spec.names))
    assert spec.check_frame(frame).shape == X.shape
    with pytest.raises(ModelError, match=r"shuffled: position 0 is 'intent'"):
        spec.check_frame(frame[["intent", "channel", *spec.names[2:]]])
    with pytest.raises(ModelError, match=r"missing \['urgency'\]"):
        spec.check_frame(frame.drop(columns=["urgency"]))
    with pytest.raises(ModelError, match=r"unexpected \['truth_p_resolved'\]"):
        spec.check_frame(frame.assign(truth_p_resolved=0.5))
    with pytest.raises(ModelError, match="complexity: dtype float64"):
        spec.check_frame(frame.astype({"complexity": "float64"}))
    with pytest.raises(ModelError, match="truth columns cannot be features"):
        FeatureSpec(intents=(), languages=(), styles=(), names=(*FEATURES, "truth_csat")).check_current()
    with pytest.raises(ModelError, match="float32 with 23 columns"):
        spec.check_matrix(X[:, :-1])


def test_spec_round_trip(history: pd.DataFrame, tmp_path) -> None:
    spec = fit_spec(history, label_delay_s=3600.0)
    spec.save(tmp_path / "f.json")
    assert FeatureSpec.load(tmp_path / "f.json") == spec
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ModelError, match="not a readable feature spec"):
        FeatureSpec.load(tmp_path / "bad.json")


def test_tick_rows_equal_training_rows(world, history: pd.DataFrame) -> None:
    """The same contact with the same agent gives the same row on both paths."""
    h = history.sort_values("arrival_at", kind="stable").reset_index(drop=True)
    spec = fit_spec(h)
    tf = history_features(h, spec)
    i = int(np.flatnonzero(h["agent_id"].notna().to_numpy())[-1])  # a late served contact
    row = h.iloc[i]
    arr = pd.DataFrame([{k: row[k] for k in ("contact_id", "channel", "intent", "language", "complexity", "urgency",
                                             "sentiment", "style", "customer_id", "customer_tier")}])
    contacts = world.contacts_block(arr)
    t_s = (row["arrival_at"] - pd.Timestamp(world.start)).total_seconds()
    agents = world.agents_block(t_s=t_s)
    j = int(np.flatnonzero(agents.ids == row["agent_id"])[0])
    load = agents.load.copy()
    load[j, contacts.channel[0]] = int(row["agent_load"])
    agents = type(agents)(**{**agents.__dict__, "load": load})
    snap = Snapshot(snapshot_id="s", at=row["arrival_at"].floor("us").to_pydatetime(), intents=world.intents,
                    languages=world.languages, styles=world.styles, contacts=contacts, agents=agents)
    # serve with the state the training path had at that instant: the history before it
    before = h.iloc[:i]
    past = history_features(before.reset_index(drop=True), spec)
    feat = TickFeaturizer(spec=spec, state=past.state, customer_times=past.customer_times)
    x = feat.features(snap, contact_idx=np.array([0]), agent_idx=np.array([j]))[0]
    want = tf.X[i]
    # agent stats differ only by outcomes not yet known at arrival (the tick state counts
    # every earlier row, the training row only those that had ended): compare the rest exactly
    stats = [FEATURES.index(n) for n in ("agent_rate", "agent_log_n", "agent_intent_rate", "agent_intent_log_n",
                                         "agent_handle_ratio", "agent_csat")]
    rest = [k for k in range(len(FEATURES)) if k not in stats]
    np.testing.assert_allclose(x[rest], want[rest], rtol=1e-6, atol=1e-6, equal_nan=True)
    assert x[FEATURES.index("agent_log_n")] >= want[FEATURES.index("agent_log_n")]


def test_tick_cold_start_unknown_agent_and_intent(world, history) -> None:
    spec = fit_spec(history)
    tf = history_features(history, spec)
    feat = TickFeaturizer(spec=spec, state=tf.state, customer_times=tf.customer_times)
    arr = world.sample_arrivals(rng=np.random.default_rng(0), start_s=36000, end_s=36600)
    contacts = world.contacts_block(arr)
    agents = world.agents_block()
    new_ids = np.array([f"new-{k}" for k in range(len(agents))], dtype=object)
    agents = type(agents)(**{**agents.__dict__, "ids": new_ids})
    snap = Snapshot(
        snapshot_id="s",
        at=world.start + timedelta(hours=10),
        intents=tuple(f"x{k}" for k in range(len(world.intents))),
        languages=world.languages,
        styles=world.styles,
        contacts=contacts,
        agents=agents,
    )
    X = feat.features(snap, contact_idx=np.zeros(5, np.int64), agent_idx=np.arange(5))
    assert np.isnan(X[:, FEATURES.index("agent_rate")]).all()
    assert np.isnan(X[:, FEATURES.index("intent")]).all()
    assert np.isfinite(X[:, FEATURES.index("proficiency")]).all()


def test_times_by_customer_matches_a_per_row_reference() -> None:
    """The vectorised customer-time index of TickFeaturizer against the plain loop it replaced."""
    from assign.features.build import _times_by_customer

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"customer_id": pd.array(rng.integers(0, 300, 5000).astype(str), dtype="string"),
                       "t": np.round(rng.random(5000) * 1e4)})  # rounded: ties on purpose
    ref: dict[str, list[float]] = {}
    for cid, tt in zip(df["customer_id"], df["t"]):
        ref.setdefault(str(cid), []).append(float(tt))
    times, seg = _times_by_customer(df)
    assert seg.keys() == ref.keys()
    assert all(np.array_equal(times[slice(*seg[k])], np.sort(np.array(v))) for k, v in ref.items())
    assert sum(e - s for s, e in seg.values()) == len(times) == len(df)
    empty_times, empty_seg = _times_by_customer(df.head(0))
    assert len(empty_times) == 0 and empty_seg == {}


def test_customer_segment_bounds_match_the_mapping() -> None:
    """``bounds`` (the tick's look-up) against the mapping: (-1, -1) for no id, (0, 0) unknown."""
    from assign.features.build import _times_by_customer

    df = pd.DataFrame({"customer_id": pd.array(["b", "a", "b", "c", "a", "b"], dtype="string"),
                       "t": [5.0, 1.0, 2.0, 9.0, 0.5, 7.0]})
    times, seg = _times_by_customer(df)
    lo, hi = seg.bounds(["a", None, "zz", "b", "c"])
    assert list(zip(lo.tolist(), hi.tolist())) == [seg["a"], (-1, -1), (0, 0), seg["b"], seg["c"]]
    assert times[slice(*seg["b"])].tolist() == [2.0, 5.0, 7.0]
    _, empty = _times_by_customer(df.head(0))
    assert [tuple(x.tolist()) for x in empty.bounds(["a", None])] == [(0, -1), (0, -1)]


def test_customer_segments_with_awkward_ids_match_a_dict() -> None:
    """Ids that fixed-width bytes could confuse: a prefix of another, trailing NUL, non-ASCII,
    a query longer than every key, an empty id."""
    from assign.features.build import _times_by_customer

    ids = ["a", "ab", "a\x00", "\x00", "", "é", "ée", "b" * 3, "z"]
    df = pd.DataFrame({"customer_id": ids * 2, "t": np.arange(2 * len(ids), dtype=float)})
    times, seg = _times_by_customer(df)
    assert len(seg) == len(ids) and set(seg) == set(ids)
    for k in ids:
        assert times[slice(*seg[k])].tolist() == [float(ids.index(k)), float(ids.index(k) + len(ids))]
    queries = ids + ["a\x00\x00", "b" * 50, "é\x00", None, "zz"]
    lo, hi = seg.bounds(queries)
    want = [seg[k] for k in ids] + [(0, 0), (0, 0), (0, 0), (-1, -1), (0, 0)]
    assert list(zip(lo.tolist(), hi.tolist())) == want
    with pytest.raises(KeyError):
        seg["a\x00\x00"]
