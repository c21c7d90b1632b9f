"""The service over real HTTP: a server subprocess on a free port, driven with httpx.

Stateless ticks against ``python -m assign solve``, bad input with the CLI's messages,
tokens, body and id limits, escaped logs, metrics, the not-yet-implemented endpoints.
"""
from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from assign.serve.process import ROOT, ServerProcess
from assign.workload import synthetic_snapshot

TOKEN = "test-token-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef"
MAX_BODY = 400_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve")
    (d / "admin").write_text(ADMIN + "\n")
    srv = ServerProcess("--max-body-bytes", str(MAX_BODY), "--admin-token-file", str(d / "admin"),
                        token=TOKEN, log_path=d / "server.log")
    with srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, headers=server.headers(), timeout=30.0) as c:
        yield c


def _solve_cli(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assign", "solve", str(path)], cwd=ROOT, capture_output=True,
                          check=False, text=True, timeout=120)


def _same_answer(served: dict, cli: dict) -> None:
    timings = served.pop("timings_ms"), cli.pop("timings_ms")
    assert served == cli
    assert set(timings[0]) == set(timings[1])


@pytest.mark.parametrize("which", ["example", "synthetic"])
def test_tick_returns_what_assign_solve_prints(client, tmp_path, which):
    if which == "example":
        path = ROOT / "examples" / "snapshot.json"
    else:
        path = tmp_path / "snap.json"
        path.write_text(json.dumps(synthetic_snapshot(n_contacts=200, n_agents=150, seed=4).to_dict()))
    cli = _solve_cli(path)
    assert cli.returncode == 0, cli.stderr
    r = client.post("/v1/tick", content=path.read_bytes())
    assert r.status_code == 200, r.text
    served, expected = r.json(), json.loads(cli.stdout)
    assert len(served["assignments"]) > 0
    _same_answer(served, expected)


def test_bad_input_gets_422_with_the_cli_messages(client, tmp_path, snapshot_doc):
    snapshot_doc["contacts"][1]["language"] = "xx"
    snapshot_doc["agents"][0]["load"] = {"chat": 9}
    snapshot_doc["contacts"][2]["urgency"] = 1.5
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(snapshot_doc))
    cli = _solve_cli(path)
    assert cli.returncode == 2
    r = client.post("/v1/tick", content=path.read_bytes())
    assert r.status_code == 422
    body = r.json()
    assert f"error: {body['message']}\n" == cli.stderr
    assert len(body["problems"]) == 3 and "contacts[1].language: unknown code 'xx'" in body["problems"]
    assert "Traceback" not in r.text


@pytest.mark.parametrize(("content", "problem"), [
    (b"{not json", "<body>: not valid JSON"),
    (b"[1, 2]", "<document>: expected a JSON object, got list"),
])
def test_unparseable_bodies_get_422(client, content, problem):
    r = client.post("/v1/tick", content=content)
    assert r.status_code == 422 and r.json()["problems"][0].startswith(problem)


def test_budget_must_be_positive(client, snapshot_doc):
    assert client.post("/v1/tick", params={"budget_ms": 0}, json=snapshot_doc).status_code == 422
    assert client.post("/v1/tick", params={"budget_ms": 500}, json=snapshot_doc).status_code == 200


def test_ids_are_length_limited(client, snapshot_doc):
    snapshot_doc["contacts"][3]["contact_id"] = "c" * 129
    snapshot_doc["agents"][1]["agent_id"] = "a" * 500
    r = client.post("/v1/tick", json=snapshot_doc)
    assert r.status_code == 422
    assert r.json()["problems"] == ["contacts[3].contact_id: longer than 128 characters",
                                    "agents[1].agent_id: longer than 128 characters"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789abcdef"},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"}])
def test_missing_or_wrong_token_gets_401(server, headers, snapshot_doc):
    for method, path in (("POST", "/v1/tick"), ("GET", "/metrics"), ("GET", "/v1/model"), ("GET", "/openapi.json")):
        r = httpx.request(method, server.url + path, headers=headers, json=snapshot_doc)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(server.url + "/healthz", headers=headers).status_code == 200
    assert httpx.get(server.url + "/readyz", headers=headers).status_code == 200


def test_oversized_bodies_get_413_announced_or_chunked(client):
    big = b"{" + b" " * MAX_BODY + b"}"
    assert client.post("/v1/tick", content=big).status_code == 413

    def chunks():
        for _ in range(8):
            yield b" " * (MAX_BODY // 4)

    assert client.post("/v1/tick", content=chunks()).status_code == 413
    small = json.dumps({"contacts": [], "agents": []}).encode()
    assert client.post("/v1/tick", content=iter([small[:5], small[5:]])).status_code == 200


def test_request_data_reaches_the_log_escaped(server, client, snapshot_doc):
    snapshot_doc["snapshot_id"] = 'evil\n{"level": "forged"}\r\x1b[31m'
    assert client.post("/v1/tick", json=snapshot_doc).status_code == 200
    lines = [ln for ln in server.log().splitlines() if ln.strip()]
    events = [json.loads(ln) for ln in lines]  # every line is one JSON object
    assert all(e.get("level") != "forged" for e in events)
    assert any(e.get("snapshot_id") == snapshot_doc["snapshot_id"] for e in events)


def test_metrics_and_model_endpoints(server, client, snapshot_doc):
    client.post("/v1/tick", json=snapshot_doc)
    assert httpx.get(server.url + "/metrics").status_code == 401
    text = client.get("/metrics").text
    assert 'assign_tick_stage_seconds_count{mode="tick",stage="solve"}' in text
    assert 'assign_model_info{scorer="SkillScorer",version="rules"} 1.0' in text
    assert 'assign_errors_total{kind="unauthorized"}' in text
    assert client.get("/v1/model").json()["version"] == "rules"
    assert client.post("/v1/model", json={"alias": "champion"}).status_code == 403
    r = client.post("/v1/model", json={"alias": "champion"}, headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 501 and "not implemented yet" in r.json()["detail"]
    assert client.post("/v1/outcomes", json=[]).status_code == 501


def test_window_endpoints_say_when_window_mode_is_off(client):
    r = client.post("/v1/contacts", json={"contact_id": "c", "channel": "chat", "intent": "x", "language": "en"})
    assert r.status_code == 404 and "--window-s" in r.json()["detail"]


def test_openapi_documents_the_routes(client):
    doc = client.get("/openapi.json").json()
    assert {"/v1/tick", "/v1/contacts", "/v1/contacts/{contact_id}", "/v1/agents/{agent_id}", "/healthz",
            "/readyz", "/metrics", "/v1/model", "/v1/outcomes"} <= set(doc["paths"])
    body = doc["paths"]["/v1/tick"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "contacts" in body["properties"]


def test_token_and_setting_problems_stop_the_command_with_exit_2(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from assign.cli import main

    monkeypatch.delenv("ASSIGN_SERVE_TOKEN", raising=False)
    short = tmp_path / "short"
    short.write_text("abc")
    cases = [(["--token-file", str(short)], "token file " + str(short) + ": the token is shorter than 16"),
             (["--token-file", str(tmp_path / "missing")], "cannot read"),
             ([], "no token: pass --token-file FILE or set ASSIGN_SERVE_TOKEN"),
             (["--no-auth", "--window-s", "1", "--workers", "2"], "workers: window mode keeps its queue in one"),
             (["--no-auth", "--window-s", "0"], "window_s: 0.0 must be above 0")]
    for args, message in cases:
        r = CliRunner().invoke(main, ["serve", *args])
        assert r.exit_code == 2 and message in r.stderr, (args, r.stderr)


def test_the_documented_openapi_is_the_apps(client):
    documented = json.loads((ROOT / "docs" / "serve-openapi.json").read_text())
    assert client.get("/openapi.json").json() == documented, "regenerate: assign serve --print-openapi"
