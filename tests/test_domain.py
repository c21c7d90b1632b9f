"""A model that knows its domain: out-of-domain pairs counted, reported and not scored as known."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from assign.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("dom")
    r = CliRunner().invoke(main, ["generate", "--agents", "20", "--days", "2", "--seed", "7", "--out", str(out)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["train", str(out / "history.parquet"), "--out", str(out / "model"), "--max-depth",
                                  "3", "--threads", "1"])
    assert r.exit_code == 0, r.output
    return out


def test_solve_reports_out_of_domain_pairs(model_dir, tmp_path, snapshot_doc):
    from assign.model import XGBScorer
    from assign.schema import parse_snapshot

    scorer = XGBScorer.load(model_dir / "model", nthread=1)
    known = scorer.model.spec.intents[0]
    doc = json.loads(json.dumps(snapshot_doc))
    for c in doc["contacts"]:
        c["intent"] = "never_seen_intent"
    for a in doc["agents"]:
        a["skills"] = {"never_seen_intent": 0.9, known: 0.9}
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(doc))
    r = CliRunner().invoke(main, ["solve", str(path), "--model", str(model_dir / "model")])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    n_pairs = len(doc["contacts"]) * len(doc["agents"])
    assert out["domain"]["pairs"] == n_pairs and out["domain"]["out_of_domain"] == n_pairs
    assert out["domain"]["unknown_intent"] == n_pairs
    assert out["domain"]["assigned_out_of_domain"] == len(out["assignments"]) > 0
    assert "out of the model's domain" in r.stderr
    snap = parse_snapshot(doc)
    ci, ai = np.repeat(np.arange(len(doc["contacts"])), len(doc["agents"])), np.tile(np.arange(len(doc["agents"])),
                                                                                    len(doc["contacts"]))
    s = scorer.score_pairs(snap, contact_idx=ci, agent_idx=ai)
    assert np.ptp(s) == 0  # no pair in domain: the model prefers none of them


def test_evaluate_warns_when_the_history_is_foreign(model_dir, tmp_path):
    h = pd.read_parquet(model_dir / "history.parquet")
    h["intent"] = "other_" + h["intent"].astype(str)
    h["agent_id"] = "x" + h["agent_id"].astype(str)
    f = tmp_path / "foreign.parquet"
    h.to_parquet(f)
    r = CliRunner().invoke(main, ["predict", str(model_dir / "model"), str(f), "--out", str(tmp_path / "p.parquet")])
    assert r.exit_code == 0, r.output
    assert "intent the model was trained on" in r.stderr and "unknown agents" in r.stderr


def test_grid_report_equals_counting_every_pair(model_dir, snapshot_doc):
    """The grid counts come from per-contact and per-agent flags; they equal counting pairs."""
    from assign.model import XGBScorer
    from assign.model.domain import domain_report, grid_report
    from assign.schema import parse_snapshot

    model = XGBScorer.load(model_dir / "model", nthread=1).model
    doc = json.loads(json.dumps(snapshot_doc))
    doc["contacts"][0]["intent"] = "never_seen_intent"
    doc["contacts"][1]["language"] = "fi"
    known = list(model.state.agent_ids)
    for a, agent_id in zip(doc["agents"], known):
        a["agent_id"] = agent_id
    doc["agents"][0]["agent_id"] = "a_new_hire"
    for c in doc["contacts"][2:]:
        c["intent"], c["language"] = model.spec.intents[0], model.spec.languages[0]
    snap = parse_snapshot(doc)
    n_c, n_a = len(doc["contacts"]), len(doc["agents"])
    every = domain_report(
        model, snap, contact_idx=np.repeat(np.arange(n_c), n_a), agent_idx=np.tile(np.arange(n_a), n_c)
    )
    assert grid_report(model, snap) == every
    assert 0 < every["out_of_domain"] < every["pairs"]


def test_ood_model_scores_out_of_domain_pairs_by_the_model(model_dir, snapshot_doc):
    """``ood="model"``: a pair with an intent the model never saw gets the model's own
    prediction (the intent missing), so the agents' proficiency on it still orders them; the
    default keeps one constant for them. A bad mode is refused, naming it."""
    from scipy.stats import spearmanr

    from assign.errors import InputError
    from assign.model import XGBScorer
    from assign.model.scorer import ValueWeights
    from assign.schema import parse_snapshot

    weights = ValueWeights(w_resolved=1.0, w_csat=0.0, cost_per_handle_min=0.0, w_repeat=0.0)
    scorer = XGBScorer.load(model_dir / "model", nthread=1, weights=weights, ood="model")
    known = scorer.model.spec.intents[0]
    doc = json.loads(json.dumps(snapshot_doc))
    doc["contacts"][0]["intent"] = "never_seen_intent"
    for k, a in enumerate(doc["agents"]):
        a["skills"] = {"never_seen_intent": 0.1 + 0.8 * k / max(len(doc["agents"]) - 1, 1), known: 0.9}
    snap = parse_snapshot(doc)
    ai = np.arange(len(doc["agents"]))
    ci = np.zeros(len(ai), np.int64)
    s = scorer.score_pairs(snap, contact_idx=ci, agent_idx=ai)
    p = scorer.model.predict_matrix(scorer.features(snap, contact_idx=ci, agent_idx=ai))["resolved"]
    assert np.allclose(s, p)
    assert np.ptp(s) > 0 and spearmanr(snap.agents.skill[ai, snap.contacts.intent[0]], s)[0] > 0.5
    mean = XGBScorer.load(model_dir / "model", nthread=1, weights=weights)
    assert np.ptp(mean.score_pairs(snap, contact_idx=ci, agent_idx=ai)) == 0
    with pytest.raises(InputError, match="ood: must be one of mean, model, hire, got 'tick'"):
        XGBScorer(model=scorer.model, ood="tick")
