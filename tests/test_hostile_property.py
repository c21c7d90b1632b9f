"""Property over generated hostile snapshots: ``assign solve`` either exits 0 with a feasible,
optimal answer (checked against a two-stage MILP on the same candidates) or exits 2 with a
message naming the place that was broken. Never exit 1, never a silent wrong answer."""
from __future__ import annotations

import copy
import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assign.cli import main
from benchmarks.fuzz import check_solve, names_a_place

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DOC = json.loads((EXAMPLES / "snapshot.json").read_text())
KEYS = ["contact_id", "agent_id", "channel", "intent", "language", "languages", "skills", "capacity", "load",
        "complexity", "urgency", "sentiment", "waited_s", "idle_s", "tenure_days", "style", "customer_id",
        "Capacity", "loads", "skill", " load", "LANGUAGES"]
SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
HOSTILE = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=8), st.text(SURROGATE, min_size=1, max_size=2),
    st.sampled_from(["voice", "chat", "en", "de", "card_lost", "NaN", "", " "]),
    st.lists(st.integers(0, 3), max_size=3), st.dictionaries(st.sampled_from(["voice", "chat", "sms", "Voice"]),
                                                              st.one_of(st.integers(-2, 2**40), st.floats()),
                                                              max_size=3))


@st.composite
def hostile_docs(draw):
    doc = copy.deepcopy(DOC)
    places = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["contacts", "agents"]))
        i = draw(st.integers(0, len(doc[kind]) - 1))
        key = draw(st.sampled_from(KEYS))
        if draw(st.booleans()) and key in doc[kind][i]:
            del doc[kind][i][key]
        else:
            doc[kind][i][key] = draw(HOSTILE)
        places.append((f"{kind}[{i}]", key.strip()))
    return doc, places


def _solve(path: Path):
    return CliRunner().invoke(main, ["solve", str(path)])


def _holds(res, places, snapshot: Path) -> None:
    assert res.exit_code in (0, 2), res.stderr
    if res.exit_code == 0:
        assert check_solve({"snapshot": str(snapshot)}, res.stdout) is None
    else:
        assert names_a_place(res.stderr), res.stderr
        assert any(rec in res.stderr or key in res.stderr for rec, key in places), (places, res.stderr)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=hostile_docs())
def test_hostile_documents_solve_optimally_or_exit_2_naming_the_place(case):
    doc, places = case
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "snap.json"
        p.write_text(json.dumps(doc))
        _holds(_solve(p), places, p)


CELLS = st.one_of(st.sampled_from(["", "NA", "nan", "inf", "-1", "1e400", "2147483648", "0.5", "voice", "en",
                                   "card_lost", "00001", "a;b", "[1, 2]"]), st.text(max_size=6))
RENAMES = st.sampled_from([None, str.upper, lambda c: c + " ", lambda c: c + "s", str.title])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=st.sampled_from(["contacts", "agents", "agent_skills"]), data=st.data())
def test_hostile_tables_solve_optimally_or_exit_2_naming_the_place(table, data):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "tables"
        shutil.copytree(EXAMPLES / "snapshot_tables", root)
        df = pd.read_csv(root / f"{table}.csv", dtype=str, keep_default_na=False)
        col = data.draw(st.sampled_from(list(df.columns)))
        row = data.draw(st.integers(0, len(df) - 1))
        df.loc[row, col] = data.draw(CELLS)
        rename = data.draw(RENAMES)
        if rename is not None:
            df = df.rename(columns={col: rename(col)})
        df.to_csv(root / f"{table}.csv", index=False)
        _holds(_solve(root), [(table, col), (f"{table[:-1] if table != 'agent_skills' else table}", col)], root)


def test_fuzz_classification():
    from benchmarks.fuzz import classify

    solve = {"args": ["solve", "x.json"]}
    assert classify({"code": 0}, solve) == "ok"
    assert classify({"code": 0, "check": "not optimal"}, solve) == "wrong_answer"
    assert classify({"code": 2, "stderr": "error: invalid snapshot: 1 problem\n  contacts[0].x: bad"}, solve) == \
        "bad_input_named"
    assert classify({"code": 2, "stderr": "error: bad"}, solve) == "bad_input_unnamed"
    assert classify({"code": 1, "stderr": "internal error: KeyError"}, solve) == "internal_error"
    assert classify({"code": 1, "stderr": "internal error: MemoryError"}, solve) == "memory"
    assert classify({"code": 3, "stderr": ""}, {"args": ["experiment", "srm"]}) == "ok"
    assert classify({"code": 3, "stderr": ""}, solve) == "other_exit"
