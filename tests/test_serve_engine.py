"""The service's engine in process: ``--model`` loaded as ``assign solve --model`` loads it,
the same JSON for the same snapshot, the model's version, tokens."""
from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from assign.cli import main
from assign.errors import InputError
from assign.model import TrainParams, train
from assign.serve.auth import ADMIN, USER, Tokens, load_tokens
from assign.serve.config import ServeConfig
from assign.serve.engine import load_engine
from assign.world.centre import generate_history, generate_world

FAST = TrainParams(max_rounds=20, early_stopping=5, learning_rate=0.3, max_depth=3, nthread=1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    world = generate_world(n_agents=8, seed=3)
    out = tmp_path_factory.mktemp("model")
    train(generate_history(world, days=1, seed=4), out=out, params=FAST)
    return out


def test_model_engine_answers_like_solve_with_model(model_dir, tmp_path, snapshot_doc):
    engine = load_engine(model=str(model_dir))
    info = engine.model.to_dict()
    assert info["scorer"] == "XGBScorer" and info["targets"]
    assert info["version"] == hashlib.sha256((model_dir / "metadata.json").read_bytes()).hexdigest()[:12]
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snapshot_doc))
    cli = CliRunner().invoke(main, ["solve", str(path), "--model", str(model_dir)])
    assert cli.exit_code == 0, cli.output
    body, _ = engine.tick_bytes(path.read_bytes())
    served, expected = json.loads(body), json.loads(cli.stdout)
    assert served.pop("timings_ms").keys() == expected.pop("timings_ms").keys()
    assert served == expected


def test_tokens_are_compared_by_role(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSIGN_SERVE_TOKEN", "u" * 20)
    (tmp_path / "admin").write_text("a" * 20 + "\n")
    tokens = load_tokens(ServeConfig(admin_token_file=str(tmp_path / "admin")))
    assert tokens.role(b"Bearer " + b"u" * 20) == USER
    assert tokens.role(b"bearer " + b"a" * 20) == ADMIN
    assert tokens.role(b"Bearer " + b"u" * 19) is None and tokens.role(None) is None
    assert Tokens(user=None, admin=None).role(None) == USER          # --no-auth
    monkeypatch.setenv("ASSIGN_SERVE_ADMIN_TOKEN", "short")
    monkeypatch.setenv("ASSIGN_SERVE_TOKEN", "also-short")
    with pytest.raises(InputError, match="shorter than 16"):
        load_tokens(ServeConfig())
