"""Hostile-input fuzzing of every command: no exit 1, no signal, no hang, no silent wrong answer.

    python -m benchmarks.fuzz [--quick] [--seed N] --json OUT

Generates malformed, hostile and extreme inputs by class (snapshot documents, raw file
corruptions, table snapshots, ``--values`` files, options, model directories, histories for
train/evaluate/predict/calibrate, generate options, ingest logs, simulate, experiment
design/analyze/srm, ...), then runs each command in a worker process (click's CliRunner,
in-process: a fresh interpreter per input would spend seconds importing) whose address space
is capped (``RLIMIT_AS``, 2 GiB) and whose every input has a timeout. A worker that dies (a
signal, the memory cap) is replaced and that input recorded.

Outcomes: ``ok`` (exit 0; for ``solve`` the answer is then checked feasible and optimal
against an independent two-stage MILP on the same candidate pairs), ``bad_input_named``
(exit 2 with a message naming the place: a field path, a file, an option), and the failures:
``bad_input_unnamed``, ``internal_error`` (exit 1), ``other_exit``, ``signal``, ``timeout``,
``memory``, ``wrong_answer`` (infeasible or suboptimal), ``input_changed`` (a command wrote
over one of its inputs). The JSON holds counts per class and outcome, the peak memory of the
workers, and every failing input (class, command, note).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
#: Address-space cap of a worker. The loaded worker (numpy, pandas, xgboost, numba, scipy,
#: statsmodels, matplotlib, pyarrow) already maps about 1 GiB of virtual address space that is
#: mostly not resident; the cap leaves 1.5 GiB above that, and the resident peak is reported.
MEM_LIMIT = 2560 * 2**20
TIMEOUT_S = 60
FAILURES = ("bad_input_unnamed", "internal_error", "other_exit", "signal", "timeout", "memory", "wrong_answer",
            "input_changed")
HOSTILE = [None, float("nan"), float("inf"), -float("inf"), 1e308, -1, 0, 2**31, 2**63, 10**30, "", " ", "x" * 5000,
           "\ud800", [], {}, ["voice"], {"a": 1}, True, "NaN", "voice", "EN", 0.5, -0.5, 1e-300, "0001"]
NUM_OPTS = ["nan", "inf", "-inf", "-1", "0", "1e300", "1e-300", "abc", "", "2147483648", "0.0001", "-0"]


# ----------------------------------------------------------------------------- generation


class Gen:
    """Builds cases: each a dict with class, args (strings), files to watch, and a check."""

    def __init__(self, root: Path, rng: random.Random, base: dict) -> None:
        self.root, self.rng, self.base, self.n = root, rng, base, 0
        self.cases: list[dict] = []

    def path(self, name: str) -> Path:
        d = self.root / f"case{self.n:05d}"
        d.mkdir(exist_ok=True)
        return d / name

    def add(self, cls: str, args: list, *, note: str, check: str | None = None, extra: dict | None = None) -> None:
        self.cases.append(dict(id=self.n, cls=cls, args=[str(a) for a in args], note=note, check=check,
                               watch=[str(a) for a in args if isinstance(a, Path) and a.is_file()], **(extra or {})))
        self.n += 1

    def hostile(self):
        return self.rng.choice(HOSTILE)


def _mutate_doc(g: Gen, doc: dict) -> str:
    """One random edit of a snapshot document; returns what was done."""
    r = g.rng
    kind = r.choice(["contacts", "agents", "top", "delete", "lookalike", "dup", "nested", "extra"])
    if kind in ("contacts", "agents") and doc[kind]:
        rec = r.choice(doc[kind])
        key = r.choice(list(rec) + ["capacity.voice", "load.chat", "skills.card_lost"])
        val = g.hostile()
        if "." in key and kind == "agents":
            a, b = key.split(".")
            rec.setdefault(a, {})
            (rec[a] if isinstance(rec[a], dict) else rec).__setitem__(b, val)
        else:
            rec[key] = val
        return f"{kind}.{key} = {val!r:.40}"
    if kind == "top":
        key = r.choice(["schema", "snapshot_id", "at", "contacts", "agents"])
        doc[key] = g.hostile()
        return f"{key} = {doc[key]!r:.40}"
    if kind == "delete":
        rec = r.choice(doc["contacts"] + doc["agents"])
        key = r.choice(list(rec))
        del rec[key]
        return f"delete {key}"
    if kind == "lookalike":
        rec = r.choice(doc["agents"])
        key = r.choice(["load", "capacity", "skills", "languages"])
        new = r.choice([key.upper(), key + "s", " " + key, key.title()])
        rec[new] = rec.pop(key, {})
        return f"rename {key} -> {new!r}"
    if kind == "dup":
        lst = doc[r.choice(["contacts", "agents"])]
        lst.append(dict(r.choice(lst)))
        return "duplicate record"
    if kind == "nested":
        x: object = 1
        for _ in range(r.choice([10, 40, 200])):
            x = [x]
        doc["contacts"][0]["deep"] = x
        return "deep extra"
    rec = r.choice(doc["contacts"])
    rec[r.choice(["queue", "Channel", "intents", "x"])] = g.hostile()
    return "extra field"


def gen_docs(g: Gen, n: int) -> None:
    for _ in range(n):
        doc = json.loads(json.dumps(g.base["doc"]))
        notes = []
        for _ in range(g.rng.choice([1, 1, 2, 3])):
            try:
                notes.append(_mutate_doc(g, doc))
            except (TypeError, KeyError, IndexError, AttributeError):  # an earlier edit broke the shape
                break
        p = g.path("snap.json")
        p.write_text(json.dumps(doc))
        g.add("solve-doc", ["solve", p], note="; ".join(notes), check="solve", extra=dict(snapshot=str(p)))


def gen_files(g: Gen, n: int) -> None:
    text = json.dumps(g.base["doc"])
    ops = {
        "utf16": lambda: text.encode("utf-16"), "utf32": lambda: text.encode("utf-32"),
        "latin1": lambda: text.replace("card_lost", "caf\xe9").encode("latin-1"),
        "bom": lambda: b"\xef\xbb\xbf" + text.encode(), "empty": lambda: b"",
        "binary": lambda: os.urandom(g.rng.randint(1, 4096)),
        "truncate": lambda: text.encode()[: g.rng.randint(0, len(text))],
        "flip": lambda: _flip(text.encode(), g.rng), "deep": lambda: b"[" * 100_000 + b"]" * 100_000,
        "deep-obj": lambda: b'{"a":' * 5000 + b"1" + b"}" * 5000,
        "bigint": lambda: text.replace('"voice": 1', '"voice": ' + "9" * g.rng.choice([20, 400, 5000])).encode(),
        "nul": lambda: text.encode() + b"\x00", "nan-literal": lambda: text.replace("0.31", "NaN").encode(),
        "huge-exp": lambda: text.replace("0.31", "1e999").encode(),
    }
    for i in range(n):
        name = list(ops)[i % len(ops)]
        p = g.path("snap.json")
        p.write_bytes(ops[name]())
        g.add("solve-file", ["solve", p], note=name, check="solve", extra=dict(snapshot=str(p)))


def _flip(b: bytes, rng: random.Random) -> bytes:
    x = bytearray(b)
    for _ in range(rng.randint(1, 5)):
        x[rng.randrange(len(x))] = rng.randrange(256)
    return bytes(x)


def gen_tables(g: Gen, n: int) -> None:
    import pandas as pd

    src = EXAMPLES / "snapshot_tables"
    for _ in range(n):
        d = g.path("tables")
        shutil.copytree(src, d)
        name = g.rng.choice(["contacts", "agents", "agent_skills"])
        df = pd.read_csv(d / f"{name}.csv", dtype=str, keep_default_na=False)
        note = _mutate_table(g, d, name, df)
        g.add("solve-tables", ["solve", d], note=f"{name}: {note}", check="solve", extra=dict(snapshot=str(d)))


def _mutate_table(g: Gen, d: Path, name: str, df) -> str:
    import pandas as pd

    r = g.rng
    kind = r.choice(["rename", "lookalike", "drop", "ragged", "cell", "orphan", "conflict", "parquet-list",
                     "meta", "padded", "encoding", "blank"])
    col = r.choice(list(df.columns))
    if kind == "rename":
        new = r.choice([col.upper(), col + " ", col + "s", col.title(), " " + col])
        df = df.rename(columns={col: new})
        note = f"rename {col} -> {new!r}"
    elif kind == "lookalike":
        new = r.choice(["loads_chat", "capacity_Voice", "capacity_sms", "Agent_ID", "intents", "proficiencies"])
        df[new] = "1"
        note = f"add {new}"
    elif kind == "drop":
        df = df.drop(columns=[col])
        note = f"drop {col}"
    elif kind in ("cell", "blank"):
        val = "" if kind == "blank" else r.choice(["nan", "inf", "1e400", "-1", "NA", "2147483648", "\t", "x" * 300,
                                                     "0.5;0.5", "[1, 2]", "true"])
        df.loc[r.randrange(len(df)), col] = val
        note = f"{col} = {val!r:.30}"
    elif kind == "orphan":
        (d / "agent_skills.csv").open("a").write("ghost,card_lost,0.5\n")
        return "orphan skill row"
    elif kind == "conflict":
        sk = pd.read_csv(d / "agent_skills.csv", dtype=str)
        pd.concat([sk, sk.iloc[[0]].assign(proficiency="0.99")]).to_csv(d / "agent_skills.csv", index=False)
        return "conflicting skill rows"
    elif kind == "ragged":
        (d / f"{name}.csv").open("a").write(",".join(["x"] * r.choice([1, 2, 30])) + "\n")
        return "ragged row"
    elif kind == "parquet-list":
        for t in ("contacts", "agents", "agent_skills"):
            x = pd.read_csv(d / f"{t}.csv", dtype={"contact_id": str, "agent_id": str})
            if t == name:
                x[col] = [[1, 2]] * len(x) if r.random() < 0.5 else [{"a": 1}] * len(x)
            x.to_parquet(d / f"{t}.parquet", index=False)
            (d / f"{t}.csv").unlink()
        return f"parquet {col} as list/struct"
    elif kind == "meta":
        (d / "snapshot.json").write_bytes(r.choice([b"[1,", b"\xff\xfe", b"[]", b'{"at": 5}', b'"x"']))
        return "corrupt snapshot.json"
    elif kind == "padded":
        if "contact_id" in df:
            df["contact_id"] = [f"{i:05d}" for i in range(len(df))]
        note = "zero-padded ids"
    else:
        (d / f"{name}.csv").write_bytes(df.to_csv(index=False).encode("utf-16"))
        return "utf-16 file"
    df.to_csv(d / f"{name}.csv", index=False)
    return note


def gen_values(g: Gen, n: int) -> None:
    import numpy as np
    import pandas as pd

    doc = g.base["doc"]
    pairs = [(c["contact_id"], a["agent_id"]) for c in doc["contacts"] for a in doc["agents"]]
    for i in range(n):
        rng = np.random.default_rng(g.rng.randrange(2**32))
        k = int(rng.integers(1, len(pairs) + 1))
        sel = [pairs[j] for j in rng.choice(len(pairs), k, replace=False)]
        lo, hi = float(rng.uniform(-6, 0)), float(rng.uniform(0, 12))
        vals = 10.0 ** rng.uniform(lo, hi, k) * rng.choice([1, 1, -1], k)
        df = pd.DataFrame(sel, columns=["contact_id", "agent_id"]).assign(value=vals)
        note = f"values 1e{lo:.1f}..1e{hi:.1f} on {k} pairs"
        if i % 2:  # half hostile
            kind = g.rng.choice(["blank", "NA", "nan", "inf", "1e300", "text", "dup", "unknown", "ragged",
                                 "binary", "utf16", "empty", "header", "bool"])
            note += f"; {kind}"
            df = df.astype(object)
            j = g.rng.randrange(len(df))
            col = {"blank": "contact_id", "NA": "agent_id", "unknown": "agent_id"}.get(kind, "value")
            df.loc[j, col] = {"blank": "", "NA": "NA", "nan": "nan", "inf": "-inf", "1e300": "1e300",
                              "text": "high", "unknown": "zz", "bool": "True"}.get(kind, df.loc[j, col])
            if kind == "dup":
                df = pd.concat([df, df.iloc[[j]]])
        p = g.path("values.csv")
        text = df.to_csv(index=False)
        if i % 2 and "ragged" in note:
            text += "c000000,a00000\n"
        data = {"binary": os.urandom(300), "utf16": text.encode("utf-16"), "empty": b"",
                "header": b"contact,agent,val\n1,2,3\n"}.get(note.rsplit("; ", 1)[-1], text.encode())
        p.write_bytes(data)
        g.add("solve-values", ["solve", EXAMPLES / "snapshot.json", "--values", p], note=note, check="solve",
              extra=dict(snapshot=str(EXAMPLES / "snapshot.json"), values=str(p)))


def gen_options(g: Gen, n: int) -> None:
    snap = EXAMPLES / "snapshot.json"
    for _ in range(n):
        kind = g.rng.choice(["--budget-ms", "--threshold", "--top-k", "--min-proficiency", "out", "format", "model"])
        if kind == "out":
            case = g.rng.choice(["missing-dir", "own-input", "is-dir"])
            own = g.path("snap.json")
            shutil.copy(snap, own)
            out = {"missing-dir": own.parent / "nope" / "r.json", "own-input": own, "is-dir": own.parent}[case]
            args = ["solve", own, "--out", out, "--format", g.rng.choice(["json", "csv", "parquet"])]
            g.add("solve-options", args, note=f"--out {case}")
            continue
        if kind == "format":
            g.add("solve-options", ["solve", snap, "--format", g.rng.choice(["parquet", "xml", ""])], note="format")
            continue
        if kind == "model":
            g.add("solve-options", ["solve", snap, "--model", g.rng.choice([EXAMPLES, g.root, snap])], note="--model")
            continue
        val = g.rng.choice(NUM_OPTS)
        g.add("solve-options", ["solve", snap, kind, val], note=f"{kind} {val}",
              check="solve" if kind == "--budget-ms" else None, extra=dict(snapshot=str(snap)))


def _corrupt_model(g: Gen, src: Path) -> tuple[Path, str]:
    d = g.path("model")
    shutil.copytree(src, d)
    r = g.rng
    kind = r.choice(["features", "swap", "truncate", "state", "parquet", "meta", "objective", "files", "empty",
                     "missing"])
    if kind == "features":
        spec = json.loads((d / "features.json").read_text())
        key = r.choice([k for k, v in spec.items() if isinstance(v, list) and len(v) > 1] or list(spec))
        spec[key] = list(reversed(spec[key])) if isinstance(spec[key], list) else float("nan")
        (d / "features.json").write_text(json.dumps(spec))
    elif kind == "swap":
        ms = sorted((d / "models").iterdir())
        shutil.copy(ms[0], ms[-1])
    elif kind == "truncate":
        f = r.choice(sorted((d / "models").iterdir()))
        f.write_bytes(f.read_bytes()[: r.randint(0, 2000)])
    elif kind == "state":
        (d / "state.npz").write_bytes(os.urandom(200))
    elif kind == "parquet":
        (d / "customers.parquet").write_bytes(b"PAR1" + os.urandom(50))
    elif kind == "meta":
        (d / "metadata.json").write_bytes((d / "metadata.json").read_bytes()[: r.randint(0, 300)])
    elif kind == "objective":
        meta = json.loads((d / "metadata.json").read_text())
        meta["objectives"] = {k: "reg:squarederror" for k in meta["objectives"]}
        (d / "metadata.json").write_text(json.dumps(meta))
    elif kind == "files":
        meta = json.loads((d / "metadata.json").read_text())
        meta.pop("files", None)
        (d / "metadata.json").write_text(json.dumps(meta))
    elif kind == "empty":
        shutil.rmtree(d)
        d.mkdir()
    else:
        r.choice(sorted((d / "models").iterdir())).unlink()
    return d, kind


def gen_model(g: Gen, n: int) -> None:
    base = g.base
    for i in range(n):
        which = i % 4
        if which < 3:
            d, kind = _corrupt_model(g, base["model"])
            cmd = [["evaluate", d, base["history"], "--json"], ["predict", d, base["history"], "--out",
                                                                 g.path("p.parquet")],
                   ["solve", EXAMPLES / "snapshot.json", "--model", d]][which]
            g.add("model-dir", cmd, note=kind)
        else:
            h, note = _bad_history(g)
            cmd = g.rng.choice([["evaluate", base["model"], h], ["predict", base["model"], h, "--out",
                                                                  g.path("p.parquet")]])
            g.add("model-history", cmd, note=note)


def _bad_history(g: Gen) -> tuple[Path, str]:
    """A mutated copy of the small history (CSV or Parquet, sometimes raw bytes)."""
    import numpy as np
    import pandas as pd

    df = pd.read_parquet(g.base["history"])
    r = g.rng
    kind = r.choice(["inf", "epoch-int", "epoch-float", "drop", "strings", "empty", "huge", "nat", "binary", "utf16",
                     "ragged", "neg"])
    col = r.choice(["handle_s", "csat", "wait_s", "complexity", "arrival_at", "agent_tenure_days"])
    if kind == "inf":
        df.loc[df.index[r.randrange(len(df))], col if col != "arrival_at" else "wait_s"] = np.inf
    elif kind.startswith("epoch"):
        secs = df["arrival_at"].astype("int64") // 10**9
        df["arrival_at"] = secs if kind == "epoch-int" else secs.astype(float)
    elif kind == "drop":
        df = df.drop(columns=[r.choice(["arrival_at", "contact_id", "wait_s", "abandoned", "channel"])])
    elif kind == "strings":
        df[col] = "x"
    elif kind == "empty":
        df = df.iloc[:0]
    elif kind == "huge":
        df[col if col != "arrival_at" else "wait_s"] = 1e200
    elif kind == "nat":
        df.loc[df.index[:3], "arrival_at"] = pd.NaT
    elif kind == "neg":
        df["wait_s"] = -5.0
    suffix = r.choice([".csv", ".parquet"]) if kind not in ("binary", "utf16", "ragged") else ".csv"
    p = g.path(f"h{suffix}")
    if kind == "binary":
        p.write_bytes(os.urandom(2000))
    elif kind == "utf16":
        p.write_bytes(df.head(50).to_csv(index=False).encode("utf-16"))
    elif kind == "ragged":
        p.write_text(df.head(50).to_csv(index=False) + "a,b\n")
    elif suffix == ".csv":
        df.to_csv(p, index=False)
    else:
        df.to_parquet(p, index=False)
    return p, f"{kind} {col} {suffix}"


def gen_train(g: Gen, n: int) -> None:
    for i in range(n):
        h, note = _bad_history(g) if i % 3 else (g.base["history"], "valid")
        out = g.path("m") if g.rng.random() < 0.8 else h
        g.add("train", ["train", h, "--out", out, "--max-depth", "2", "--threads", "1"], note=note)


def gen_generate(g: Gen, n: int) -> None:
    for _ in range(n):
        opt = g.rng.choice(["--agents", "--days", "--intents", "--seed", "out"])
        args = ["generate", "--agents", "6", "--days", "1", "--intents", "4", "--seed", "1"]
        if opt == "out":
            f = g.path("file")
            f.write_text("x")
            args += ["--out", g.rng.choice([f, f / "sub", g.root / "nope" / "deeper"])]
        else:
            args[args.index(opt) + 1] = g.rng.choice(NUM_OPTS + ["1e9", "3"])
            args += ["--out", g.path("gen")]
        g.add("generate", args, note=" ".join(args[1:9]))


def gen_ingest(g: Gen, n: int) -> None:
    src = (ROOT / "tests" / "data" / "anonymous_bank_sample.tsv").read_bytes()
    lines = src.split(b"\n")
    ops = ["truncate", "flip", "cr", "tab", "binary", "utf16", "latin1", "huge", "neg", "empty", "header", "own-out"]
    for i in range(n):
        kind = ops[i % len(ops)]
        ls = list(lines)
        j = g.rng.randrange(1, max(2, len(ls) - 1))
        data = src
        if kind == "truncate":
            data = src[: g.rng.randrange(len(src))]
        elif kind == "flip":
            data = _flip(src, g.rng)
        elif kind == "cr":
            ls[j] = ls[j].replace(b"\t", b"\t\r", 1)
            data = b"\n".join(ls)
        elif kind == "tab":
            ls[j] += b"\textra"
            data = b"\n".join(ls)
        elif kind == "binary":
            data = os.urandom(3000)
        elif kind == "utf16":
            data = src.decode("latin-1").encode("utf-16")
        elif kind == "latin1":
            data = src + "\ncaf\xe9".encode("latin-1")
        elif kind in ("huge", "neg"):
            f = ls[j].split(b"\t")
            k = g.rng.randrange(len(f))
            f[k] = b"99999999:59:59" if kind == "huge" else b"-5"
            ls[j] = b"\t".join(f)
            data = b"\n".join(ls)
        elif kind == "empty":
            data = b""
        elif kind == "header":
            data = lines[0] + b"\n"
        p = g.path("log.tsv")
        p.write_bytes(data)
        out = p if kind == "own-out" else g.path("h.parquet")
        g.add("ingest", ["ingest", "anonymous-bank", p, "--out", out, "--json"], note=kind)


def gen_simulate(g: Gen, n: int) -> None:
    for _ in range(n):
        args = ["simulate", "--world", g.base["world"], "--policy", "fcfs", "--days", "0.02", "--seeds", "1",
                "--out", g.path("sim")]
        opt = g.rng.choice(["--days", "--window-s", "--seeds", "--policy", "--sl-threshold-s", "--world",
                            "--batch-window-s", "--workers"])
        val = g.rng.choice(NUM_OPTS + ["1e6", "1e9", "0.00001", "bogus"])
        if opt == "--world":
            val = str(g.rng.choice([EXAMPLES, g.root, EXAMPLES / "snapshot.json"]))
        if opt in args:
            args[args.index(opt) + 1] = val
        else:
            args += [opt, val]
        g.add("simulate", args, note=f"{opt} {val}")


def gen_calibrate(g: Gen, n: int) -> None:
    for i in range(n):
        h, note = _bad_history(g) if i % 2 else (g.base["history"], "valid")
        args = ["calibrate", h, "--out", g.path("scn")]
        if g.rng.random() < 0.5:
            opt = g.rng.choice(["--min-cell", "--staffing-slot-s", "--staffing-floor", "--sl-threshold-s"])
            val = g.rng.choice(NUM_OPTS)
            args += [opt, val]
            note += f"; {opt} {val}"
        g.add("calibrate", args, note=note)


def gen_experiment(g: Gen, n: int) -> None:
    log = EXAMPLES / "experiment_log.csv"
    text = log.read_text()
    for i in range(n):
        sub = ["design", "analyze", "srm"][i % 3]
        if sub == "design":
            args = ["experiment", "design", "--metric", "resolved", "--kind", "proportion", "--baseline", "0.7",
                    "--units-per-day", "1000", "--mde", "0.02"]
            opt = g.rng.choice(["--baseline", "--units-per-day", "--mde", "--alpha", "--power", "--days",
                                "--weights", "--window"])
            val = g.rng.choice(NUM_OPTS + ["1e300", "inf,1", "0.5,0.5", "1,0"])
            if opt == "--days":
                args = [a for a in args if a not in ("--mde", "0.02")]
            args = _set(args, opt, val) + ["--json"]
            note = f"{opt} {val}"
        elif sub == "analyze":
            p = g.path("log.csv")
            kind = g.rng.choice(["valid", "ragged", "binary", "empty", "huge", "utf16", "nan-arm", "guardrail",
                                 "planned-n", "weights"])
            body = text
            if kind == "ragged":
                body = text + "a,b\n"
            elif kind == "huge":
                body = text.replace(",228.2,", ",1e200,", 1).replace(",189.4,", ",-1e200,", 1)
            elif kind == "nan-arm":
                body = text.replace(",control,", ",,", 3)
            p.write_bytes({"binary": os.urandom(500), "empty": b"", "utf16": text.encode("utf-16")}.get(
                kind, body.encode()))
            args = ["experiment", "analyze", p, "--metric", "resolved", "--metric", "handle_s", "--json"]
            if kind == "guardrail":
                args += ["--guardrail", g.rng.choice(["handle_s:increase:nan", "handle_s:up", "x:increase:1"])]
            elif kind == "planned-n":
                args += ["--sequential", "--planned-n", g.rng.choice(["inf", "nan", "-1", "0"])]
            elif kind == "weights":
                args += ["--weights", g.rng.choice(["inf,1", "0,0", "1", "a,b", "-1,2"])]
            note = kind
        else:
            args = ["experiment", "srm", "--counts", g.rng.choice(["5000,5100", "0,0", "-1,5", "1e300,1", "a,b", "",
                                                                   "5,inf", "9" * 400 + ",1"])]
            if g.rng.random() < 0.5:
                args += ["--weights", g.rng.choice(["1,1", "inf,1", "0,1", "nan,1", "1"])]
            note = " ".join(args[2:])
        g.add(f"experiment-{sub}", args, note=note)


def _set(args: list, opt: str, val: str) -> list:
    args = list(args)
    if opt in args:
        args[args.index(opt) + 1] = val
    else:
        args += [opt, val]
    return args


def gen_misc(g: Gen, n: int) -> None:
    for i in range(n):
        kind = i % 3
        if kind == 0:
            h, note = _bad_history(g)
            g.add("handle-variance", ["handle-variance", h, "--json"], note=note)
        elif kind == 1:
            h, note = _bad_history(g)
            g.add("replay-gap", ["replay-gap", g.base["history"], h], note=note)
        else:
            opt = g.rng.choice(["--contacts", "--agents", "--rows", "--seed"])
            val = g.rng.choice(NUM_OPTS + ["3"])
            g.add("demo", ["demo", opt, val], note=f"{opt} {val}")


# per class: (generator, share of the full run); --quick takes a quarter
PLAN = [(gen_docs, 260), (gen_files, 70), (gen_tables, 150), (gen_values, 160), (gen_options, 50),
        (gen_model, 60), (gen_train, 9), (gen_generate, 20), (gen_ingest, 48), (gen_simulate, 30),
        (gen_calibrate, 20), (gen_experiment, 90), (gen_misc, 45)]


# ----------------------------------------------------------------------------- the worker


def _milp_two_stage(p):
    """(served, value): the most contacts served, then the most value at that count (HiGHS)."""
    import math

    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    if p.n_arcs == 0:
        return 0, 0.0
    a_c = coo_matrix((np.ones(p.n_arcs), (p.contact, np.arange(p.n_arcs))), shape=(p.n_contacts, p.n_arcs))
    a_r = coo_matrix((np.ones(p.n_arcs), (p.resource, np.arange(p.n_arcs))), shape=(p.n_resources, p.n_arcs))
    base = [LinearConstraint(a_c, 0, 1), LinearConstraint(a_r, 0, p.capacity)]
    first = milp(c=-np.ones(p.n_arcs), integrality=np.ones(p.n_arcs), bounds=Bounds(0, 1), constraints=base)
    k = int(round(-first.fun))
    second = milp(c=-p.value, integrality=np.ones(p.n_arcs), bounds=Bounds(0, 1),
                  constraints=[*base, LinearConstraint(np.ones((1, p.n_arcs)), k, k)])
    return k, math.fsum(p.value[np.rint(second.x) > 0])


def check_solve(case: dict, stdout: str) -> str | None:
    """Why the printed answer is infeasible or not optimal, or None. Optimality is checked
    against the MILP of the same candidate pairs whenever the tick reports an exact solver."""
    import math

    import numpy as np

    from assign.io import read_snapshot, read_values
    from assign.router import Router

    doc = json.loads(stdout)
    snap = read_snapshot(case["snapshot"])
    values = read_values(case["values"]) if case.get("values") else None
    tp = Router().problem(snap, values=values)
    c_ids, a_ids = snap.contacts.ids, snap.agents.ids
    arc_of = {(c_ids[tp.c_order[r]], a_ids[tp.a_order[c]]): k for k, (r, c) in enumerate(zip(tp.rows, tp.cols))}
    arcs = []
    for a in doc["assignments"]:
        k = arc_of.get((a["contact_id"], a["agent_id"]))
        if k is None:
            return f"assigned pair ({a['contact_id']}, {a['agent_id']}) is not a candidate"
        arcs.append(k)
    arcs = np.asarray(arcs, dtype=np.int64)
    try:
        tp.problem.check(arcs)
    except Exception as err:
        return f"infeasible: {err}"
    if len(doc["assignments"]) + len(doc["unassigned"]) != snap.n_contacts:
        return "a contact is missing from the answer"
    if doc["solver"] not in ("flow", "hungarian"):
        return None if doc["fallback"] and doc["fallback_reason"] else "greedy answer without a fallback reason"
    served, best = _milp_two_stage(tp.problem)
    got = math.fsum(tp.problem.value[arcs])
    v = tp.problem.value
    tol = max(served, 1) * 16 * np.finfo(float).eps * (float(np.abs(v).max()) if len(v) else 0.0) + 1e-9
    if len(arcs) != served or abs(got - best) > tol:
        return f"not optimal: served {len(arcs)} of {served}, value {got!r} vs MILP {best!r}"
    return None


def _timeout(signum, frame):
    raise TimeoutError("fuzz timeout")


def worker() -> None:
    """Run cases read as JSON lines from stdin; answer one JSON line each on the original stdout."""
    import signal

    proto = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    # map every heavy library before the cap and the inputs, as a long-running server would
    import matplotlib  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import scipy.special  # noqa: F401
    import statsmodels.api  # noqa: F401
    import xgboost  # noqa: F401
    from click.testing import CliRunner

    from assign.cli import main
    from assign.router import Router

    Router()  # compile the numba kernels once, outside any input's timing
    resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))
    signal.signal(signal.SIGALRM, _timeout)
    for line in sys.stdin:
        case = json.loads(line)
        t0 = time.perf_counter()
        signal.alarm(TIMEOUT_S)
        try:
            res = CliRunner().invoke(main, case["args"], catch_exceptions=True)
            code, out, err = res.exit_code, res.stdout, res.stderr
            if res.exception is not None and not isinstance(res.exception, SystemExit):
                err += f"\nuncaught {type(res.exception).__name__}: {res.exception}"
                code = 1 if code == 0 else code
            note = check_solve(case, out) if code == 0 and case.get("check") == "solve" else None
        except TimeoutError:
            code, out, err, note = 1, "", "internal error: TimeoutError: fuzz timeout", None
        except MemoryError:
            code, out, err, note = 1, "", "internal error: MemoryError", None
        finally:
            signal.alarm(0)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        proto.write(json.dumps(dict(id=case["id"], code=code, stderr=err[-2000:], check=note, rss=rss,
                                    s=time.perf_counter() - t0)) + "\n")
        proto.flush()


# ----------------------------------------------------------------------------- the parent

_NAMED = re.compile(r"(--[a-z][\w-]*|[\w\]\)'\"]: |/[\w./-]+|\.(json|csv|parquet|tsv|npz)\b)")
_HEADS = re.compile(r"(?m)^(error|Error|internal error): (invalid [\w ]+: \d+ problems?\n)?")


def names_a_place(stderr: str) -> bool:
    """True when the message, past its ``error: invalid X: N problems`` head, names a field
    path, a file, or an option."""
    return bool(_NAMED.search(_HEADS.sub("", stderr)))


#: Exit codes a command documents besides 0 and 2 (``experiment srm``: 3 = mismatch flagged).
DOCUMENTED_EXITS = {("experiment", "srm"): {3}}


def classify(res: dict, case: dict) -> str:
    err = res.get("stderr", "")
    if res["code"] in DOCUMENTED_EXITS.get(tuple(case["args"][:2]), ()):
        return "ok"
    if res["code"] == 0:
        return "wrong_answer" if res.get("check") else "ok"
    if "TimeoutError: fuzz timeout" in err:
        return "timeout"
    if "MemoryError" in err:
        return "memory"
    if res["code"] == 2:
        return "bad_input_named" if names_a_place(err) else "bad_input_unnamed"
    if res["code"] == 1:
        return "internal_error"
    return "other_exit"


class Pool:
    """One capped worker at a time, replaced when it dies or hangs."""

    def __init__(self, cwd: Path) -> None:
        self.cwd, self.proc = cwd, None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   MALLOC_ARENA_MAX="2", MPLBACKEND="Agg")
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.fuzz", "--worker"], cwd=self.cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1)

    def run(self, case: dict) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT_S + 60)
        line = self.proc.stdout.readline() if ready else ""
        if line:
            return json.loads(line)
        if not ready:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            return dict(id=case["id"], code=None, stderr="internal error: TimeoutError: fuzz timeout (killed)")
        rc = self.proc.wait()
        self.proc = None
        return dict(id=case["id"], code=rc, stderr=f"worker died with {'signal ' + str(-rc) if rc < 0 else rc}")

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def _digest(paths: list[str]) -> dict[str, bytes]:
    import hashlib

    return {p: hashlib.sha256(Path(p).read_bytes()).digest() for p in paths if Path(p).is_file()}


def base_materials(root: Path) -> dict:
    """The valid inputs the generators mutate: the example snapshot, a small synthetic world
    with its history, a model trained on it."""
    from assign.model import TrainParams, train
    from assign.world.centre import generate_history, generate_world

    world = generate_world(n_agents=12, seed=5, n_intents=6)
    hist = generate_history(world, days=2, seed=6)
    world.save(root / "world")
    hist.to_parquet(root / "history.parquet", index=False)
    train(hist, out=root / "model", params=TrainParams(max_rounds=15, early_stopping=5, max_depth=3, nthread=1))
    return dict(doc=json.loads((EXAMPLES / "snapshot.json").read_text()), world=root / "world",
                history=root / "history.parquet", model=root / "model")


def summarise(cases: list[dict], results: dict[int, dict], outcome: dict[int, str], wall: float) -> dict:
    by_class: dict[str, Counter] = defaultdict(Counter)
    for c in cases:
        by_class[c["cls"]][outcome[c["id"]]] += 1
    failing = [dict(id=c["id"], cls=c["cls"], outcome=outcome[c["id"]], args=c["args"], note=c["note"],
                    detail=(results[c["id"]].get("check") or results[c["id"]].get("stderr", ""))[-600:])
               for c in cases if outcome[c["id"]] in FAILURES]
    rss = [r.get("rss", 0) for r in results.values()]
    return dict(inputs=len(cases), outcomes=dict(Counter(outcome.values())),
                per_class={k: dict(v) for k, v in sorted(by_class.items())},
                failures=len(failing), peak_worker_rss_mb=round(max(rss, default=0) / 2**20, 1),
                memory_cap_mb=MEM_LIMIT // 2**20, timeout_s=TIMEOUT_S, wall_s=round(wall, 1),
                machine=f"{platform.machine()} {os.cpu_count()} cpus (shared)", failing=failing)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a quarter of the inputs")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--json", dest="json_out", required=False)
    ap.add_argument("--only", default=None, help="comma-separated classes (generator names without gen_)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker()
        return 0
    from tqdm import tqdm

    root = Path(tempfile.mkdtemp(prefix="assign-fuzz-"))
    try:
        g = Gen(root, random.Random(a.seed), base_materials(root))
        only = set(a.only.split(",")) if a.only else None
        for fn, n in PLAN:
            if only is None or fn.__name__[4:] in only:
                fn(g, max(3, n // 4) if a.quick else n)
        pool, results, outcome = Pool(root), {}, {}
        t0 = time.perf_counter()
        for case in tqdm(g.cases, desc="fuzz", unit="input"):
            before = _digest(case["watch"])
            res = pool.run(case)
            results[case["id"]] = res
            outcome[case["id"]] = "input_changed" if _digest(case["watch"]) != before else classify(res, case)
            if res["code"] is not None and res["code"] < 0:
                outcome[case["id"]] = "signal"
        pool.close()
        doc = summarise(g.cases, results, outcome, time.perf_counter() - t0)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = json.dumps(doc, indent=1, default=str)
    if a.json_out:
        Path(a.json_out).write_text(text + "\n")
    print(json.dumps({k: v for k, v in doc.items() if k != "failing"}, indent=1))
    for f in doc["failing"][:40]:
        print(f"FAIL {f['cls']} {f['outcome']}: {f['note']} :: {f['detail'][-200:]!r}")
    return 1 if doc["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
