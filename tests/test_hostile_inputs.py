"""Hostile input, by class: every bad file or option exits 2 naming the place, nothing is
left half-written, no output holds NaN. Tables of cases in the style of tests/test_schema.py."""
from __future__ import annotations

import json
import shutil
from datetime import UTC
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from assign.cli import main
from assign.errors import InputError, SnapshotError
from assign.history import conform_history
from assign.io import read_snapshot, read_table, write_result
from assign.router import Router
from assign.schema import Agents, Contacts, Snapshot, parse_snapshot
from assign.values import resolve_values

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def tables(tmp_path) -> Path:
    d = tmp_path / "tables"
    shutil.copytree(EXAMPLES / "snapshot_tables", d)
    return d


def _solve(runner, *args):
    return runner.invoke(main, ["solve", *map(str, args)])


# ----------------------------------------------------------------------------- files that cannot be read

def _deep(n):
    return "[" * n + "]" * n


BAD_FILES = [
    ("utf16", lambda: "{}".encode("utf-16"), "not UTF-8 text"),
    ("latin1", lambda: '{"snapshot_id": "caf\xe9"}'.encode("latin-1"), "not UTF-8 text"),
    ("binary", lambda: bytes(range(256)) * 4, "not UTF-8 text"),
    ("nul", lambda: b'{"a": 1}\x00', "NUL byte"),
    ("deep 100k", lambda: _deep(100_000).encode(), "nested deeper than"),
    ("deep 40", lambda: ('{"contacts": [], "agents": [], "x": ' + _deep(40) + "}").encode(), "nested deeper than"),
    ("truncated", lambda: b'{"contacts": [', "not valid JSON"),
    ("empty", lambda: b"", "not valid JSON"),
    ("huge int", lambda: ('{"x": ' + "9" * 5000 + "}").encode(), "cannot read JSON"),
    ("not object", lambda: b"[1, 2]", "expected a JSON object"),
]


@pytest.mark.parametrize(("name", "data", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_unreadable_snapshot_files_exit_2_naming_the_file(runner, tmp_path, name, data, message):
    p = tmp_path / "snap.json"
    p.write_bytes(data())
    res = _solve(runner, p)
    assert res.exit_code == 2, res.output
    assert message in res.stderr


BAD_DOCS = [
    ("capacity 2^31", lambda d: d["agents"][0]["capacity"].update(voice=2**31), "agents[0].capacity.voice"),
    ("capacity 10^400", lambda d: d["agents"][0]["capacity"].update(voice=10**400), "number too large"),
    ("channel list", lambda d: d["contacts"][0].update(channel=["voice"]), "contacts[0].channel: unknown channel"),
    ("channel object", lambda d: d["contacts"][0].update(channel={"a": 1}), "contacts[0].channel: unknown channel"),
    ("capacity key list", lambda d: d["agents"][0].update(capacity=[1, 2]), "agents[0].capacity: expected an object"),
    ("intent list", lambda d: d["contacts"][0].update(intent=["x"]), "contacts[0].intent: expected a non-empty string"),
    ("surrogate id", lambda d: d["contacts"][0].update(contact_id="c\ud800"),
     "contacts[0].contact_id: not valid Unicode"),
    ("surrogate skill", lambda d: d["agents"][0]["skills"].update({"\udfff": 0.5}),
     "agents[0].skills: not valid Unicode"),
    ("loads key", lambda d: d["agents"][0].update(loads={"chat": 1}),
     "agents[0].loads: unknown field 'loads'; did you mean 'load'"),
    ("Capacity key", lambda d: d["agents"][0].update(Capacity={"chat": 1}), "did you mean 'capacity'"),
    ("skill key", lambda d: d["agents"][0].update(skill={}), "agents[0].skill: unknown field"),
    ("Contacts key", lambda d: d.update(Contacts=[]), "Contacts: unknown field 'Contacts'; did you mean 'contacts'"),
    ("customer id surrogate", lambda d: d["contacts"][0].update(customer_id="\ud800"), "contacts[0].customer_id"),
]


@pytest.mark.parametrize(("name", "edit", "message"), BAD_DOCS, ids=[b[0] for b in BAD_DOCS])
def test_hostile_documents_name_the_field(snapshot_doc, name, edit, message):
    edit(snapshot_doc)
    with pytest.raises(SnapshotError) as err:
        parse_snapshot(snapshot_doc)
    assert any(message in p for p in err.value.problems), err.value.problems
    str(err.value).encode("utf-8")  # printable, even with a lone surrogate in the input


# ----------------------------------------------------------------------------- table snapshots

def _edit_csv(d: Path, name: str, fn) -> None:
    df = pd.read_csv(d / f"{name}.csv", dtype=str, keep_default_na=False)
    fn(df).to_csv(d / f"{name}.csv", index=False)


BAD_TABLES = [
    ("skills header case", "agent_skills", lambda df: df.rename(columns={"agent_id": "Agent_ID"}),
     "agent_skills.Agent_ID: unknown field 'Agent_ID'; did you mean 'agent_id'"),
    ("skills header space", "agent_skills", lambda df: df.rename(columns={"intent": "intent "}),
     "agent_skills.'intent ': unknown field"),
    ("capacity_Voice", "agents", lambda df: df.rename(columns={"capacity_voice": "capacity_Voice"}),
     "agents.capacity_Voice: unknown field 'capacity_Voice'; did you mean 'capacity_voice'"),
    ("loads_chat", "agents", lambda df: df.assign(loads_chat="1"), "agents.loads_chat: unknown field"),
    ("capacity_sms", "agents", lambda df: df.assign(capacity_sms="1"), "agents.capacity_sms: unknown column"),
    ("orphan skill row", "agent_skills",
     lambda df: pd.concat([df, pd.DataFrame([{"agent_id": "ghost", "intent": "x", "proficiency": "0.5"}])]),
     "unknown agent 'ghost' (not in the agents table)"),
    ("conflicting skill rows", "agent_skills",
     lambda df: pd.concat([df, df.iloc[[0]].assign(proficiency="0.99")]), "conflicting duplicate skill"),
    ("contacts Language", "contacts", lambda df: df.rename(columns={"language": "Language"}),
     "contacts.Language: unknown field"),
]


@pytest.mark.parametrize(("name", "table", "edit", "message"), BAD_TABLES, ids=[b[0] for b in BAD_TABLES])
def test_misnamed_columns_and_bad_skill_rows_are_problems(runner, tables, name, table, edit, message):
    _edit_csv(tables, table, edit)
    res = _solve(runner, tables)
    assert res.exit_code == 2, res.output
    assert message in res.stderr


def test_identical_duplicate_skill_rows_are_harmless(tables):
    _edit_csv(tables, "agent_skills", lambda df: pd.concat([df, df.iloc[[0]]]))
    assert read_snapshot(tables).n_agents == read_snapshot(EXAMPLES / "snapshot_tables").n_agents


def test_ragged_csv_names_the_line(tables):
    with open(tables / "contacts.csv", "a") as f:
        f.write("x,c999,chat\n")
    with pytest.raises(InputError, match=r"contacts.csv:\d+: expected 12 fields, got 3"):
        read_snapshot(tables)


@pytest.mark.parametrize("content", ["[1,", "\"just text\"", b"\xff\xfe"], ids=["truncated", "string", "binary"])
def test_corrupt_table_snapshot_json(tables, content):
    p = tables / "snapshot.json"
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SnapshotError, match="snapshot.json"):
        read_snapshot(tables)


def test_list_cells_in_parquet_are_problems(tmp_path):
    d = tmp_path / "pq"
    d.mkdir()
    for name in ("contacts", "agents", "agent_skills"):
        df = pd.read_csv(EXAMPLES / "snapshot_tables" / f"{name}.csv", dtype={"contact_id": str, "agent_id": str})
        if name == "contacts":
            df["intent"] = [["a", "b"]] * len(df)
        df.to_parquet(d / f"{name}.parquet", index=False)
    with pytest.raises(SnapshotError, match=r"contacts.intent\[0\]: expected a single value, got a list"):
        read_snapshot(d)


def test_csv_ids_are_text_with_their_padding(tables):
    _edit_csv(tables, "contacts", lambda df: df.assign(contact_id=[f"{i:05d}" for i in range(len(df))]))
    snap = read_snapshot(tables)
    assert snap.contacts.ids[0] == "00000" and snap.contacts.ids[1] == "00001"


def test_the_example_tables_still_read_back_equal_to_the_json():
    assert read_snapshot(EXAMPLES / "snapshot_tables").to_dict()["contacts"] == \
        read_snapshot(EXAMPLES / "snapshot.json").to_dict()["contacts"]


# ----------------------------------------------------------------------------- --values

def _values_csv(tmp_path, rows: str) -> Path:
    p = tmp_path / "v.csv"
    p.write_text("contact_id,agent_id,value\n" + rows)
    return p


BAD_VALUES = [
    ("blank contact", ",a00000,0.5\n", "values[0].contact_id: missing or blank id"),
    ("NA contact", "NA,a00000,0.5\n", "values[0].contact_id: unknown contact 'NA'"),
    ("nan value", "c000000,a00000,nan\n", "values[0].value: must be finite"),
    ("inf value", "c000000,a00000,inf\n", "values[0].value: must be finite"),
    ("1e300 value", "c000000,a00000,1e300\n", "values[0].value: 1e+300 exceeds the limit"),
    ("text value", "c000000,a00000,high\n", "values[0].value: expected a number"),
    ("ragged", "c000000,a00000\n", "v.csv:2: expected 3 fields, got 2"),
]


@pytest.mark.parametrize(("name", "rows", "message"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_values_rows_exit_2(runner, tmp_path, name, rows, message):
    res = _solve(runner, EXAMPLES / "snapshot.json", "--values", _values_csv(tmp_path, rows))
    assert res.exit_code == 2, res.output
    assert message in res.stderr


def test_a_contact_named_NA_can_be_valued(snapshot_doc):
    snapshot_doc["contacts"][0]["contact_id"] = "NA"
    snap = parse_snapshot(snapshot_doc)
    ci, _, _ = resolve_values(snap, pd.DataFrame({"contact_id": ["NA"], "agent_id": ["a00000"], "value": [1.0]}))
    assert snap.contacts.ids[ci[0]] == "NA"


# ----------------------------------------------------------------------------- arrays with bad codes

def _arrays(**over):
    c = dict(ids=["c"], channel=[0], intent=[0], language=[0], complexity=[0.5], urgency=[0.5], sentiment=[0.0],
             waited_s=[0.0], style=[-1], customer_id=[None], customer_tier=[None])
    a = dict(ids=["a"], speaks=[[True]], skill=[[0.5]], tenure_days=[1.0], sentiment_handling=[0.5], style=[-1],
             capacity=[[1, 1, 1]], load=[[0, 0, 0]], idle_s=[0.0])
    for k, v in over.items():
        (c if k.startswith("c_") else a)[k[2:]] = v
    return Contacts(**c), Agents(**a)


BAD_CODES = [
    ("intent 10000", dict(c_intent=[10_000]), "contacts.intent[0]: code 10000 outside [0, 1)"),
    ("language -1", dict(c_language=[-1]), "contacts.language[0]: code -1 outside [0, 1)"),
    ("channel 3", dict(c_channel=[3]), "contacts.channel[0]: code 3 outside [0, 3)"),
    ("style 5", dict(a_style=[5]), "agents.style[0]: code 5 outside [-1, 0)"),
    ("capacity -1", dict(a_capacity=[[-1, 0, 0]]), "agents.capacity: negative value -1"),
]


@pytest.mark.parametrize(("name", "over", "message"), BAD_CODES, ids=[b[0] for b in BAD_CODES])
def test_out_of_range_codes_never_reach_a_kernel(name, over, message):
    from datetime import datetime

    c, a = _arrays(**over)
    with pytest.raises(SnapshotError) as err:
        Snapshot(snapshot_id="s", at=datetime.now(UTC), intents=("x",), languages=("en",), styles=(),
                 contacts=c, agents=a)
    assert any(p.startswith(message) for p in err.value.problems), err.value.problems


@pytest.mark.parametrize("value", [2**32, 2**31, -(2**31) - 1])
def test_codes_beyond_int32_do_not_wrap(value):
    with pytest.raises(SnapshotError, match="outside the int32 range"):
        _arrays(c_intent=[value])


# ----------------------------------------------------------------------------- output

def test_json_output_never_holds_nan(snapshot_doc):
    from assign.io import dumps

    assert json.loads(dumps({"objective": float("inf"), "auc": float("nan"), "x": [np.float64("nan")]})) == \
        {"objective": None, "auc": None, "x": [None]}


def test_failed_write_leaves_no_partial_file(tmp_path, snapshot_doc, monkeypatch):
    res = Router().tick(snapshot_doc)
    out = tmp_path / "out.parquet"
    out.write_bytes(b"old")

    def boom(self, *a, **k):
        Path(a[0]).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(OSError):
        write_result(res, fmt="parquet", out=out)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_out_never_overwrites_its_own_input(runner, tmp_path, fmt):
    snap = tmp_path / "snap.json"
    shutil.copy(EXAMPLES / "snapshot.json", snap)
    before = snap.read_bytes()
    res = _solve(runner, snap, "--format", fmt, "--out", snap)
    assert res.exit_code == 2 and "own input" in res.stderr
    assert snap.read_bytes() == before


def test_out_in_a_missing_directory_exits_2(runner, tmp_path):
    res = _solve(runner, EXAMPLES / "snapshot.json", "--out", tmp_path / "nope" / "r.json")
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_bad_model_dir_exits_2_naming_the_problem(runner):
    """issue 8's Done-when: ``assign solve examples/snapshot.json --model examples/``."""
    res = _solve(runner, EXAMPLES / "snapshot.json", "--model", EXAMPLES)
    assert res.exit_code == 2
    assert "not a model directory (missing metadata.json" in res.stderr


@pytest.mark.parametrize("opt", [["--budget-ms", "nan"], ["--threshold", "nan"], ["--threshold", "inf"],
                                 ["--min-proficiency", "nan"], ["--top-k", "0"]])
def test_non_finite_options_exit_2(runner, opt):
    res = _solve(runner, EXAMPLES / "snapshot.json", *opt)
    assert res.exit_code == 2 and opt[0].lstrip("-").replace("-", "_")[:6] in res.stderr.replace("-", "_")


# ----------------------------------------------------------------------------- history

def _history(n=5, **over):
    df = pd.DataFrame({"contact_id": [f"c{i}" for i in range(n)], "arrival_at": 1_700_000_000 + np.arange(n) * 60,
                       "channel": "voice", "intent": "x", "wait_s": 1.0, "abandoned": False})
    return df.assign(**over)


def test_integer_epoch_seconds_are_seconds():
    out = conform_history(_history())
    assert out["arrival_at"].iloc[0] == pd.Timestamp(1_700_000_000, unit="s", tz="UTC")


@pytest.mark.parametrize(("col", "value", "message"), [
    ("wait_s", np.inf, "history.wait_s: 1 infinite value(s), first at row 0"),
    ("arrival_at", np.inf, "history.arrival_at: cannot be read"),
    ("arrival_at", 1e30, "history.arrival_at: cannot be read"),
    ("handle_s", -np.inf, "history.handle_s: 1 infinite value(s)"),
])
def test_infinite_history_values_are_problems(col, value, message):
    df = _history()
    df[col] = df[col].astype(float) if col in df else np.nan
    df.loc[0, col] = value
    with pytest.raises(InputError) as err:
        conform_history(df)
    assert any(message in p for p in err.value.problems), err.value.problems


@pytest.mark.parametrize(("data", "message"), [(b"\xff\xfe\x00a", "not UTF-8"), (b"", "empty file"),
                                               (b"a,b\n1,2,3\n", "expected 2 fields, got 3")])
def test_unreadable_history_csv(tmp_path, data, message):
    p = tmp_path / "h.csv"
    p.write_bytes(data)
    with pytest.raises(InputError, match=message):
        read_table(p)


# ----------------------------------------------------------------------------- memory

def test_distinct_skill_names_do_not_grow_the_skill_matrix():
    """3,000 agents x 20 distinct skill names each: once 3,000 x 60,000 dense (1.4 GB, copied
    several times per tick); now only the intents contacts ask for get a column."""
    agents = [{"agent_id": f"a{j}", "languages": ["en"], "capacity": {"chat": 1},
               "skills": {f"s{j}_{k}": 0.5 for k in range(20)} | {"billing": 0.7}} for j in range(3000)]
    contacts = [{"contact_id": f"c{i}", "channel": "chat", "intent": "billing", "language": "en"} for i in range(50)]
    snap = parse_snapshot({"contacts": contacts, "agents": agents})
    assert snap.agents.skill.shape == (3000, 1)
    assert snap.to_dict()["agents"][7]["skills"]["s7_3"] == 0.5
    res = Router().tick(snap)
    assert len(res.assignments) == 50


def test_skill_matrix_limit_is_stated():
    agents = [{"agent_id": f"a{j}", "languages": ["en"], "capacity": {"chat": 1}, "skills": {}} for j in range(5000)]
    contacts = [{"contact_id": f"c{i}", "channel": "chat", "intent": f"i{i}", "language": "en"} for i in range(4001)]
    with pytest.raises(SnapshotError, match="exceed the limit of 20000000 skill cells"):
        parse_snapshot({"contacts": contacts, "agents": agents})


def test_messages_stay_short_whatever_the_value(snapshot_doc):
    snapshot_doc["contacts"][0]["language"] = "x" * 5000
    snapshot_doc["agents"][0]["tenure_days"] = "y" * 5000
    with pytest.raises(SnapshotError) as err:
        parse_snapshot(snapshot_doc)
    assert len(err.value.problems) == 2 and all(len(p) < 200 for p in err.value.problems)


def test_top_k_is_bounded(runner):
    res = _solve(runner, EXAMPLES / "snapshot.json", "--top-k", str(2**31))
    assert res.exit_code == 2 and "--top-k" in res.stderr
