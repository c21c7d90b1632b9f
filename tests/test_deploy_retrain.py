"""retrain: label delay respected, the promotion rule, the audit log, the CLI; a registry
version hot-swapped into a router."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from assign.cli import main
from assign.deploy import HotSwap, PromotionRule, open_registry, retrain
from assign.deploy.retrain import decide, mature_only
from assign.errors import InputError
from assign.history import conform_history
from assign.model import TrainParams, train
from assign.world.centre import generate_history, generate_world

FAST = TrainParams(max_rounds=30, early_stopping=8, max_depth=4, nthread=1)
DELAY_H = 24.0


@pytest.fixture(scope="module")
def world():
    return generate_world(n_agents=12, seed=3, n_intents=6)


@pytest.fixture(scope="module")
def history(world):
    return conform_history(generate_history(world, days=6, seed=4))


def _snapshot(world, n: int = 30):
    from datetime import timedelta

    from assign.schema import Snapshot

    t = 10 * 3600.0
    arr = world.sample_arrivals(rng=np.random.default_rng(0), start_s=t - 900, end_s=t).head(n)
    return Snapshot(snapshot_id="s", at=world.start + timedelta(seconds=t), intents=world.intents,
                    languages=world.languages, styles=world.styles, contacts=world.contacts_block(arr),
                    agents=world.agents_block(t_s=t))


def _last_matured_days(h: pd.DataFrame, cut: pd.Timestamp, days: float) -> np.ndarray:
    """The served rows of ``h`` with a resolution known at ``cut`` that arrived within ``days``
    of the newest such row: what ``PromotionRule(eval_days=days)`` should evaluate on."""
    known = ~_immature(h, cut, DELAY_H) & h["agent_id"].notna().to_numpy() & h["resolved"].notna().to_numpy()
    newest = h["arrival_at"][known].max()
    return known & (h["arrival_at"] >= newest - pd.Timedelta(days=days)).to_numpy()


def _immature(hist: pd.DataFrame, cut: pd.Timestamp, delay_h: float) -> np.ndarray:
    """Independent reference: resolution is known ``delay_h`` after the contact ends."""
    ends = hist["arrival_at"] + pd.to_timedelta(hist["wait_s"] + hist["handle_s"].fillna(np.inf).clip(upper=1e9),
                                                unit="s")
    return ((ends + pd.Timedelta(hours=delay_h)) > cut).to_numpy() | hist["handle_s"].isna().to_numpy()


def test_mature_only_blanks_exactly_the_outcomes_unknown_at_the_cutoff(history) -> None:
    cut = history["arrival_at"].min() + pd.Timedelta(days=4)
    h = history[history["arrival_at"] < cut]
    out = mature_only(h, cutoff=cut, resolution_delay_h=DELAY_H, csat_delay_h=1.0)
    late = _immature(h, cut, DELAY_H)
    assert late.any() and (~late).any()
    assert out["resolved"][late].isna().all()
    pd.testing.assert_series_equal(out["resolved"][~late], h["resolved"][~late])
    assert out["handle_s"].notna().sum() > out["resolved"].notna().sum()  # handle time is known sooner


def test_outcomes_unknown_at_the_cutoff_neither_train_nor_evaluate(history, tmp_path) -> None:
    """The same retrain on a history whose immature (and post-cutoff) labels are hidden and
    on one where they are flipped gives identical figures."""
    cut = history["arrival_at"].min() + pd.Timedelta(days=5)
    late = _immature(history, cut, DELAY_H) & history["resolved"].notna().to_numpy()
    hidden, flipped = history.copy(), history.copy()
    hidden.loc[late, "resolved"] = pd.NA
    flipped.loc[late, "resolved"] = ~flipped.loc[late, "resolved"].astype(bool)
    runs = (("a", hidden, DELAY_H), ("b", flipped, DELAY_H), ("c", flipped, 0.0))
    out = [retrain(h, registry=open_registry(tmp_path / name), cutoff=cut, window_days=5, params=FAST,
                   resolution_delay_h=delay) for name, h, delay in runs]
    assert out[0].promoted and out[0].reason == "no champion"
    assert out[0].rows == out[1].rows and out[0].eval_from == out[1].eval_from
    assert out[0].challenger_metrics == out[1].challenger_metrics
    assert out[0].challenger_metrics["resolved"]["rows"] == out[0].rows["eval"]
    # the test has power: told the labels are known at once, retrain does use the flipped ones
    assert out[2].rows["eval"] > out[0].rows["eval"]
    assert out[2].challenger_metrics["resolved"] != out[0].challenger_metrics["resolved"]


def test_retrain_twice_on_a_growing_history_logs_each_decision(history, tmp_path, world) -> None:
    reg = open_registry(tmp_path / "reg")
    t0 = history["arrival_at"].min()
    first = retrain(history[history["arrival_at"] < t0 + pd.Timedelta(days=4)], registry=reg, window_days=4,
                    params=FAST, resolution_delay_h=DELAY_H)
    second = retrain(history, registry=reg, window_days=4, params=FAST, resolution_delay_h=DELAY_H)
    assert (first.version, second.version) == ("v0001", "v0002")
    assert first.promoted and first.reason == "no champion" and second.champion == "v0001"
    c = second.comparison["resolved"]
    assert c["rows"] == second.challenger_metrics["resolved"]["rows"] == second.champion_metrics["resolved"]["rows"]
    assert second.promoted == (c["log_loss_gain"] >= max(0.002, 1.64 * c["log_loss_gain_se"])
                               and c["calibration_change"] <= 0.01)
    decisions = [e for e in reg.audit() if e["event"] == "retrain"]
    assert [d["version"] for d in decisions] == ["v0001", "v0002"]
    assert [d["promoted"] for d in decisions] == [True, second.promoted] and all(d["reason"] for d in decisions)
    champion_moves = [e for e in reg.audit() if e["event"] == "alias" and e["alias"] == "champion"]
    assert reg.resolve("champion") == champion_moves[-1]["to"] == ("v0002" if second.promoted else "v0001")
    assert reg.aliases()["challenger"] == "v0002"
    # the version record holds the rows it did not train on (the monitor's calibration reference)
    rec = {v["version"]: v for v in reg.versions()}["v0002"]
    assert [pd.Timestamp(t) for t in rec["evaluation_window"]] == [pd.Timestamp(second.eval_from),
                                                                  pd.Timestamp(second.cutoff)]
    assert pd.Timestamp(rec["training_window"][1]) == pd.Timestamp(second.eval_from)
    # the champion loads and swaps into a running router
    from assign.router import Router

    snap = _snapshot(world)
    router = Router(model_version="unversioned")
    res = HotSwap(router, registry=reg).load("champion", canary=snap)
    assert res.ok, res.reason
    assert router.tick(snap).model_version == reg.resolve("champion")


def test_too_few_rows_are_refused_and_logged(history, tmp_path) -> None:
    reg = open_registry(tmp_path / "reg")
    d = retrain(history, registry=reg, window_days=0.5, params=FAST, resolution_delay_h=DELAY_H,
                rule=PromotionRule(min_eval_rows=5000))
    assert d.version is None and not d.promoted and d.reason.startswith("refused: too few rows")
    assert reg.versions() == [] and reg.resolve("champion") is None
    assert [e["event"] for e in reg.audit()] == ["retrain"] and "too few" in reg.audit()[0]["reason"]


def _scored(gain: float, se: float, cal: float) -> dict:
    return {"comparison": {"resolved": {"log_loss_gain": gain, "log_loss_gain_se": se, "calibration_change": cal,
                                        "rows": 1000}}}


def test_eval_days_holds_out_the_last_days_of_matured_rows(history, tmp_path) -> None:
    """``PromotionRule(eval_days=...)``: the evaluation rows are the served rows with a known
    resolution that arrived within ``eval_days`` of the newest such row (independent count
    from ``_immature``); the challenger trains only on rows before the first of them; the
    audit line names what triggered the retrain."""
    cut = history["arrival_at"].min() + pd.Timedelta(days=5)
    h = history[(history["arrival_at"] < cut)]
    expect = _last_matured_days(h, cut, 1.5)
    reg = open_registry(tmp_path / "reg")
    d = retrain(history, registry=reg, cutoff=cut, window_days=5, params=FAST, resolution_delay_h=DELAY_H,
                rule=PromotionRule(eval_days=1.5), trigger="alarm: test")
    assert d.rows["eval"] == int(expect.sum()) > 300
    assert pd.Timestamp(d.eval_from) == h["arrival_at"][expect].min()
    assert d.rows["train"] == int((h["arrival_at"] < h["arrival_at"][expect].min()).sum())
    assert d.challenger_metrics["resolved"]["rows"] == d.rows["eval"]
    line = [e for e in reg.audit() if e["event"] == "retrain"][-1]
    assert line["trigger"] == d.trigger == "alarm: test"
    # the fraction rule (the default) holds out more of a 5-day window than 1.5 days
    assert retrain(history, registry=reg, cutoff=cut, window_days=5, params=FAST,
                   resolution_delay_h=DELAY_H).rows["eval"] != d.rows["eval"]
    with pytest.raises(InputError, match="eval_days"):
        PromotionRule(eval_days=0.0)


def test_the_promotion_rule() -> None:
    rule = PromotionRule(min_log_loss_gain=0.002, z=2.0, max_calibration_worsening=0.01)
    assert decide(rule, {}, champion=None) == (True, "no champion")
    assert decide(rule, _scored(0.010, 0.001, 0.0), champion="v1")[0]
    assert not decide(rule, _scored(0.001, 0.0001, 0.0), champion="v1")[0]      # below the margin
    assert not decide(rule, _scored(0.010, 0.006, 0.0), champion="v1")[0]       # within 2 s.e.
    ok, why = decide(rule, _scored(0.010, 0.001, 0.02), champion="v1")          # calibration worse
    assert not ok and "calibration" in why
    assert not decide(rule, {"comparison": {}}, champion="v1")[0]
    with pytest.raises(InputError) as err:
        PromotionRule(targets=("csat",), z=-1, min_eval_rows=3)
    assert len(err.value.problems) == 3


def test_training_weights(history, tmp_path) -> None:
    h = history.head(3000)
    a = train(h, out=tmp_path / "a", params=FAST)
    b = train(h, out=tmp_path / "b", params=FAST, weights=np.ones(len(h)))
    assert (a.out / "models" / "resolved.json").read_bytes() == (b.out / "models" / "resolved.json").read_bytes()
    c = train(h, out=tmp_path / "c", params=FAST, weights=np.linspace(0.01, 1, len(h)))
    assert (c.out / "models" / "resolved.json").read_bytes() != (a.out / "models" / "resolved.json").read_bytes()
    with pytest.raises(InputError) as err:
        train(h, out=tmp_path / "d", params=FAST, weights=[1.0, -1.0])
    assert "weights: 2 given for 3000 history rows" in str(err.value)


def test_cli_retrain_and_registry(history, tmp_path) -> None:
    path = tmp_path / "h.parquet"
    history.head(9000).to_parquet(path)
    reg = tmp_path / "reg"
    run = CliRunner().invoke
    res = run(main, ["retrain", str(path), "--registry", str(reg), "--window-days", "4", "--half-life-days", "2",
                     "--resolution-delay-h", "24", "--max-rounds", "30", "--threads", "1", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["promoted"] and doc["version"] == "v0001" and doc["reason"] == "no champion"
    res = run(main, ["registry", "list", str(reg)])
    assert res.exit_code == 0 and "v0001" in res.output and "champion" in res.output
    res = run(main, ["registry", "audit", str(reg)])
    assert res.exit_code == 0 and '"event":"retrain"' in res.output.replace(" ", "")
    # monitor --registry: the reference runs on to the end of the champion's evaluation window
    mon = {}
    for how in (["--registry", str(reg)], ["--model", str(reg / "versions" / "v0001" / "model")]):
        res = run(main, ["monitor", str(path), *how, "--recent-days", "0.5", "--json"])
        assert res.exit_code in (0, 3), res.output
        mon[how[0]] = json.loads(res.output)["meta"]
    # the version's held-out tail is the retrain's evaluation window, so both see the same unseen rows
    assert mon["--registry"]["rows_reference_unseen"] == mon["--model"]["rows_reference_unseen"] > 0
    meta = json.loads((reg / "versions" / "v0001" / "model" / "metadata.json").read_text())
    assert pd.Timestamp(meta["data"]["test_from"]) == pd.Timestamp(doc["eval_from"])
    assert mon["--registry"]["rows_reference"] >= mon["--model"]["rows_reference"]
    bad = run(main, ["retrain", str(path), "--registry", str(reg), "--window-days", "-1", "--half-life-days", "nan"])
    assert bad.exit_code == 2 and "--window-days" in bad.output and "--half-life-days" in bad.output
    bad = run(main, ["registry", "promote", str(reg), "v0042", "--reason", "x"])
    assert bad.exit_code == 2 and "v0042" in bad.output


@pytest.mark.slow
def test_retrain_on_dask_passes_the_client_and_the_weights(history, tmp_path) -> None:
    distributed = pytest.importorskip("distributed")
    reg = open_registry(tmp_path / "reg")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cl:
        with distributed.Client(cl) as client:
            d = retrain(history.head(9000), registry=reg, window_days=4, params=FAST, resolution_delay_h=DELAY_H,
                        client=client)
    meta = json.loads((reg.path(d.version) / "metadata.json").read_text())
    assert meta["scheduler"] == cl.scheduler_address and meta["weighted"] is True
    assert d.promoted and d.challenger_metrics["resolved"]["auc"] > 0.6


def test_the_challenger_is_fitted_up_to_the_evaluation_rows(history, tmp_path) -> None:
    """The version trains on every window row before the evaluation rows (the newest
    ``valid_fraction`` of them deciding early stopping) and its held-out tail is exactly the
    evaluation rows and later: counted again here from the history."""
    cut = history["arrival_at"].min() + pd.Timedelta(days=5)
    reg = open_registry(tmp_path / "reg")
    d = retrain(history, registry=reg, cutoff=cut, window_days=5, params=FAST, resolution_delay_h=DELAY_H,
                rule=PromotionRule(eval_days=1.0))
    w = history[history["arrival_at"] < cut].sort_values("arrival_at", kind="stable").reset_index(drop=True)
    n_fit = int((w["arrival_at"] < pd.Timestamp(d.eval_from)).sum())
    n_va = int(round(n_fit * FAST.valid_fraction))
    data = json.loads((reg.path(d.version) / "metadata.json").read_text())["data"]
    assert data["rows"] == len(w) and data["rows_test"] == len(w) - n_fit > 0
    assert (data["rows_train"], data["rows_valid"]) == (n_fit - n_va, n_va)
    assert pd.Timestamp(data["test_from"]) == pd.Timestamp(d.eval_from)
    assert pd.Timestamp(data["valid_from"]) == w["arrival_at"].iloc[n_fit - n_va]
    assert n_fit - n_va > 0.7 * n_fit  # more than train()'s own split (70/10/20) would fit


def test_as_routed_sets_out_of_domain_rows_to_the_in_domain_mean() -> None:
    from assign.deploy.retrain import as_routed

    pred = np.array([0.2, 0.4, 0.9, 0.6, 0.1])
    known = np.array([True, True, False, True, False])
    rows = np.array([True, True, True, False, True])
    assert np.allclose(as_routed(pred, known=known, rows=rows), [0.2, 0.4, 0.3, 0.6, 0.3])
    none = np.zeros(5, bool)  # nothing in domain: the mean over all evaluation rows
    assert np.allclose(as_routed(pred, known=none, rows=rows), np.full(5, 0.4))


def _champion_without_an_intent(history, tmp_path):
    """A registry whose champion was trained on the first 3 days without the second most common
    intent; returns (registry, that intent, the cut-off of the next retrain: day 5)."""
    reg = open_registry(tmp_path / "reg")
    t0 = history["arrival_at"].min()
    dropped = history["intent"].value_counts().index[1]
    early = history[(history["arrival_at"] < t0 + pd.Timedelta(days=3)) & (history["intent"] != dropped)]
    assert retrain(early, registry=reg, window_days=3, params=FAST, resolution_delay_h=DELAY_H).promoted
    return reg, dropped, t0 + pd.Timedelta(days=5)


def test_evaluation_scores_an_unknown_intent_as_the_router_does(history, tmp_path) -> None:
    """A champion that never saw one intent is scored on the evaluation rows as it routes:
    those rows get its mean in-domain prediction (recomputed here with ``predict_history``
    and a hand-written log-loss)."""
    from assign.model.scorer import ModelDir, predict_history

    reg, dropped, cut = _champion_without_an_intent(history, tmp_path)
    d = retrain(history, registry=reg, cutoff=cut, window_days=5, params=FAST, resolution_delay_h=DELAY_H)
    w = mature_only(history[history["arrival_at"] < cut].sort_values("arrival_at", kind="stable")
                    .reset_index(drop=True), cutoff=cut, resolution_delay_h=DELAY_H, csat_delay_h=1.0)
    model = ModelDir.load(reg.path("v0001"), nthread=1)
    p = predict_history(model, w)["p_resolved"].to_numpy(float)
    y = w["resolved"].astype("float64").to_numpy(na_value=np.nan)
    ev = (w["arrival_at"] >= pd.Timestamp(d.eval_from)).to_numpy() & w["agent_id"].notna().to_numpy()
    unknown = ((w["intent"] == dropped) | ~w["agent_id"].isin(set(model.state.agent_ids))).to_numpy()
    assert (ev & unknown & np.isfinite(y)).sum() > 20
    routed = np.where(unknown, p[ev & ~unknown].mean(), p)
    sel = ev & np.isfinite(y)
    q = np.clip(routed[sel], 1e-12, 1 - 1e-12)
    ll = float(-(y[sel] * np.log(q) + (1 - y[sel]) * np.log(1 - q)).mean())
    assert d.champion_metrics["resolved"]["rows"] == int(sel.sum())
    assert d.champion_metrics["resolved"]["log_loss"] == pytest.approx(ll, rel=1e-6)
    q_raw = np.clip(p[sel], 1e-12, 1 - 1e-12)  # the test has power: the raw predictions score otherwise
    assert abs(float(-(y[sel] * np.log(q_raw) + (1 - y[sel]) * np.log(1 - q_raw)).mean()) - ll) > 1e-4


def test_champion_offsets_score_the_champion_as_it_routes(history, tmp_path) -> None:
    """With ``champion_offsets`` the champion's resolution predictions on the evaluation rows
    carry its intent's offset (clipped to [0.01, 0.99]); the challenger's do not: both
    log-losses and the gain recomputed here with ``predict_history`` and a hand-written log-loss."""
    from assign.model.scorer import ModelDir, predict_history

    reg = open_registry(tmp_path / "reg")
    t0 = history["arrival_at"].min()
    assert retrain(history[history["arrival_at"] < t0 + pd.Timedelta(days=3)], registry=reg, window_days=3,
                   params=FAST, resolution_delay_h=DELAY_H).promoted
    intents = list(history["intent"].value_counts().index)
    offsets = {intents[0]: -0.3, intents[1]: 0.05, "never_seen": 0.2}  # other intents: 0
    cut = t0 + pd.Timedelta(days=5)
    d = retrain(history, registry=reg, cutoff=cut, window_days=5, params=FAST, resolution_delay_h=DELAY_H,
                champion_offsets=offsets)
    w = mature_only(history[history["arrival_at"] < cut].sort_values("arrival_at", kind="stable")
                    .reset_index(drop=True), cutoff=cut, resolution_delay_h=DELAY_H, csat_delay_h=1.0)
    y = w["resolved"].astype("float64").to_numpy(na_value=np.nan)
    sel = (w["arrival_at"] >= pd.Timestamp(d.eval_from)).to_numpy() & w["agent_id"].notna().to_numpy() & np.isfinite(y)

    def log_loss(version: str, add: np.ndarray) -> np.ndarray:
        m = ModelDir.load(reg.path(version), nthread=1)
        unknown = ~w["agent_id"].isin(set(m.state.agent_ids)).to_numpy()
        p = predict_history(m, w)["p_resolved"].to_numpy(float)
        p = np.where(unknown, p[sel & ~unknown].mean(), p)  # as routed (every intent known here)
        q = np.clip(np.clip(p + add, 0.01, 0.99) if add.any() else p, 1e-12, 1 - 1e-12)[sel]
        return -(y[sel] * np.log(q) + (1 - y[sel]) * np.log(1 - q))

    add = w["intent"].map(lambda k: offsets.get(k, 0.0)).to_numpy(float)
    ll_champ, ll_chall = log_loss("v0001", add), log_loss(d.version, np.zeros(len(w)))
    assert d.champion_metrics["resolved"]["log_loss"] == pytest.approx(float(ll_champ.mean()), rel=1e-6)
    assert d.challenger_metrics["resolved"]["log_loss"] == pytest.approx(float(ll_chall.mean()), rel=1e-6)
    gain = d.comparison["resolved"]["log_loss_gain"]
    assert gain == pytest.approx(float((ll_champ - ll_chall).mean()), rel=1e-6, abs=1e-9)
    raw = log_loss("v0001", np.zeros(len(w)))  # the test has power: without offsets the champion scores otherwise
    assert abs(float(raw.mean()) - float(ll_champ.mean())) > 1e-3
    with pytest.raises(InputError, match=r"champion_offsets\['x'\]"):
        retrain(history, registry=reg, cutoff=cut, window_days=5, params=FAST, resolution_delay_h=DELAY_H,
                champion_offsets={"x": float("nan")})


def test_ood_model_scores_an_unknown_intent_by_the_model(history, tmp_path) -> None:
    """With ``ood="model"`` (a router that scores out-of-domain pairs by the model) the champion's
    evaluation rows keep its raw predictions, unknown intent included (recomputed with
    ``predict_history`` and a hand-written log-loss); a bad mode is refused before training."""
    from assign.model.scorer import ModelDir, predict_history

    reg, dropped, cut = _champion_without_an_intent(history, tmp_path)
    with pytest.raises(InputError, match="ood: must be one of mean, model, hire, got 'tick'"):
        retrain(history, registry=reg, cutoff=cut, window_days=5, params=FAST, resolution_delay_h=DELAY_H, ood="tick")
    d = retrain(history, registry=reg, cutoff=cut, window_days=5, params=FAST, resolution_delay_h=DELAY_H,
                ood="model")
    w = mature_only(history[history["arrival_at"] < cut].sort_values("arrival_at", kind="stable")
                    .reset_index(drop=True), cutoff=cut, resolution_delay_h=DELAY_H, csat_delay_h=1.0)
    p = predict_history(ModelDir.load(reg.path("v0001"), nthread=1), w)["p_resolved"].to_numpy(float)
    y = w["resolved"].astype("float64").to_numpy(na_value=np.nan)
    sel = (w["arrival_at"] >= pd.Timestamp(d.eval_from)).to_numpy() & w["agent_id"].notna().to_numpy() \
        & np.isfinite(y)
    assert (sel & (w["intent"] == dropped).to_numpy()).sum() > 20
    q = np.clip(p[sel], 1e-12, 1 - 1e-12)
    ll = float(-(y[sel] * np.log(q) + (1 - y[sel]) * np.log(1 - q)).mean())
    assert d.champion_metrics["resolved"]["log_loss"] == pytest.approx(ll, rel=1e-6)


def test_as_routed_features_give_an_unknown_agent_what_a_tick_gives(history) -> None:
    """A hire's history features in an evaluation window are blanked as a tick's featurizer
    (the reference: ``TickFeaturizer`` on the model's state, the agent unknown) leaves them;
    every other cell is unchanged."""
    from assign.deploy.retrain import AGENT_HISTORY_FEATURES, as_routed_features
    from assign.features import FEATURES, TickFeaturizer, fit_spec, history_features
    from assign.schema import build_snapshot

    spec = fit_spec(history)
    tf = history_features(history, spec)
    unknown = (history["agent_id"].astype(str) == str(history["agent_id"].dropna().iloc[0])).to_numpy(bool)
    X = as_routed_features(tf.X, unknown_agent=unknown)
    cols = [FEATURES.index(n) for n in AGENT_HISTORY_FEATURES]
    rest = [k for k in range(len(FEATURES)) if k not in cols]
    np.testing.assert_array_equal(X[:, rest], tf.X[:, rest])
    np.testing.assert_array_equal(X[~unknown], tf.X[~unknown])
    assert np.isnan(X[np.ix_(unknown, cols)]).all() and np.isfinite(tf.X[np.ix_(unknown, cols)]).any()
    feat = TickFeaturizer(spec=spec, state=tf.state, customer_times=tf.customer_times)
    snap = build_snapshot(
        contacts=[dict(contact_id="c", channel="voice", intent=spec.intents[0], language=spec.languages[0],
                       complexity=0.5, urgency=0.5, sentiment=0.0, waited_s=0.0, style=None, customer_id="u",
                       customer_tier=None)],
        agents=[dict(agent_id="never-seen", languages=[spec.languages[0]], skills={spec.intents[0]: 0.5},
                     capacity={"voice": 1}, load={}, tenure_days=1.0, sentiment_handling=0.5, style=None,
                     idle_s=0.0)],
        snapshot_id="t", at=pd.Timestamp(history["arrival_at"].max()).floor("us").to_pydatetime())
    tick = feat.features(snap, contact_idx=np.array([0]), agent_idx=np.array([0]))
    assert np.isnan(tick[0, cols]).all()


def test_intent_recalibration_is_a_logistic_intercept_per_intent_against_statsmodels():
    """slope28b: each intent's shift is the intercept of a logistic GLM with logit(p) as offset
    (statsmodels); within an intent the order of the predictions is kept; rows outside
    ``rows`` are untouched."""
    import statsmodels.api as sm

    from assign.deploy.retrain import intent_recalibrated

    rng = np.random.default_rng(5)
    n = 3000
    intent = pd.Series(rng.choice(["a", "b", "c"], n))
    z = rng.normal(0.3, 1.0, n)
    truth = 1 / (1 + np.exp(-(z + intent.map({"a": -1.2, "b": 0.0, "c": 0.7}).to_numpy())))
    y = (rng.random(n) < truth).astype(float)
    p = 1 / (1 + np.exp(-z))
    rows = np.arange(n) < 2500
    got = intent_recalibrated(y, p, intent=intent, rows=rows)
    np.testing.assert_array_equal(got[~rows], p[~rows])
    for k in ("a", "b", "c"):
        m = rows & (intent == k).to_numpy()
        fit = sm.GLM(y[m], np.ones((m.sum(), 1)), family=sm.families.Binomial(), offset=z[m]).fit()
        want = 1 / (1 + np.exp(-(z[m] + fit.params[0])))
        np.testing.assert_allclose(got[m], want, rtol=1e-7)
        assert got[m].mean() == pytest.approx(y[m].mean(), abs=1e-9)
        assert (np.argsort(got[m], kind="stable") == np.argsort(p[m], kind="stable")).all()


def test_a_level_only_difference_gains_nothing_level_free():
    """Two models that differ only by a logit shift per intent: the plain comparison sees a gain
    (the better level), the level-free one sees none."""
    from assign.deploy.retrain import _row_log_loss, intent_recalibrated

    rng = np.random.default_rng(9)
    n = 4000
    intent = pd.Series(rng.choice(["a", "b"], n))
    z = rng.normal(0.0, 1.0, n)
    shift = intent.map({"a": -1.5, "b": 0.0}).to_numpy()
    y = (rng.random(n) < 1 / (1 + np.exp(-(z + shift)))).astype(float)
    stale, fresh = 1 / (1 + np.exp(-z)), 1 / (1 + np.exp(-(z + shift)))
    rows = np.ones(n, bool)
    plain = (_row_log_loss(y, stale) - _row_log_loss(y, fresh)).mean()
    free = (_row_log_loss(y, intent_recalibrated(y, stale, intent=intent, rows=rows))
            - _row_log_loss(y, intent_recalibrated(y, fresh, intent=intent, rows=rows))).mean()
    assert plain > 0.05 and abs(free) < 1e-9


def test_a_level_free_rule_compares_the_recalibrated_predictions(history, tmp_path) -> None:
    """``PromotionRule(level_free=True)``: the audit's log-losses and gain are those of both
    models' predictions recalibrated per intent on the evaluation rows (recomputed here from
    ``predict_history``), and the comparison says it was level-free."""
    from assign.deploy.retrain import intent_recalibrated
    from assign.model.scorer import ModelDir, predict_history

    reg = open_registry(tmp_path / "reg")
    t0 = history["arrival_at"].min()
    assert retrain(history[history["arrival_at"] < t0 + pd.Timedelta(days=3)], registry=reg, window_days=3,
                   params=FAST, resolution_delay_h=DELAY_H).promoted
    cut = t0 + pd.Timedelta(days=5)
    d = retrain(history, registry=reg, cutoff=cut, window_days=5, params=FAST, resolution_delay_h=DELAY_H,
                rule=PromotionRule(level_free=True))
    w = mature_only(history[history["arrival_at"] < cut].sort_values("arrival_at", kind="stable")
                    .reset_index(drop=True), cutoff=cut, resolution_delay_h=DELAY_H, csat_delay_h=1.0)
    y = w["resolved"].astype("float64").to_numpy(na_value=np.nan)
    sel = (w["arrival_at"] >= pd.Timestamp(d.eval_from)).to_numpy() & w["agent_id"].notna().to_numpy() & np.isfinite(y)

    def log_loss(version: str, recalibrated: bool = True) -> np.ndarray:
        m = ModelDir.load(reg.path(version), nthread=1)
        unknown = ~w["agent_id"].isin(set(m.state.agent_ids)).to_numpy()
        p = predict_history(m, w)["p_resolved"].to_numpy(float)
        p = np.where(unknown, p[sel & ~unknown].mean(), p)
        p = intent_recalibrated(y, p, intent=w["intent"], rows=sel) if recalibrated else p
        q = np.clip(p, 1e-12, 1 - 1e-12)[sel]
        return -(y[sel] * np.log(q) + (1 - y[sel]) * np.log(1 - q))

    ll_champ, ll_chall = log_loss("v0001"), log_loss(d.version)
    assert d.champion_metrics["resolved"]["log_loss"] == pytest.approx(float(ll_champ.mean()), rel=1e-6)
    assert d.comparison["resolved"]["log_loss_gain"] == pytest.approx(float((ll_champ - ll_chall).mean()),
                                                                      rel=1e-6, abs=1e-9)
    assert d.comparison["resolved"]["level_free"] is True
    assert abs(float(log_loss("v0001", recalibrated=False).mean()) - float(ll_champ.mean())) > 1e-5  # it has power


def test_cli_retrain_passes_the_rule_and_the_rates(history, tmp_path) -> None:
    """``assign retrain --eval-days --level-free --agent-rates relative``: the second decision
    compares level-free on the last days asked for, and the challenger reads relative rates."""
    from assign.model.scorer import ModelDir

    reg = tmp_path / "reg"
    run = CliRunner().invoke
    t0 = history["arrival_at"].min()
    docs = []
    for days in (3, 5):
        path = tmp_path / f"h{days}.parquet"
        history[history["arrival_at"] < t0 + pd.Timedelta(days=days)].to_parquet(path)
        res = run(main, ["retrain", str(path), "--registry", str(reg), "--window-days", str(days),
                         "--resolution-delay-h", str(DELAY_H), "--max-rounds", "30", "--threads", "1",
                         "--eval-days", "1.5", "--level-free", "--agent-rates", "relative", "--json"])
        assert res.exit_code == 0, res.output
        docs.append(json.loads(res.output))
    assert docs[1]["comparison"]["resolved"]["level_free"] is True
    h = history[history["arrival_at"] < t0 + pd.Timedelta(days=5)]
    assert docs[1]["rows"]["eval"] == int(_last_matured_days(h, pd.Timestamp(docs[1]["cutoff"]), 1.5).sum())
    assert ModelDir.load(reg / "versions" / docs[1]["version"] / "model", nthread=1).spec.relative_rates
    bad = run(main, ["retrain", str(tmp_path / "h5.parquet"), "--registry", str(reg), "--agent-rates", "odd"])
    assert bad.exit_code == 2 and "--agent-rates" in bad.output
    bad = run(main, ["retrain", str(tmp_path / "h5.parquet"), "--registry", str(reg), "--eval-days", "0"])
    assert bad.exit_code == 2 and "--eval-days" in bad.output
