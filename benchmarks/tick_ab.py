"""Two source trees' tick benchmarks, alternating: the code before a change against after it.

    python -m benchmarks.tick_ab --base DIR [--rounds 2] [--only PREFIX ...] [--xgb-model M]
                                 [--json OUT] [--plot OUT.png]

``DIR`` is a checkout of the earlier revision (``git archive REV | tar -x -C DIR``). Each
round runs ``python -m benchmarks.tick --quick`` in the base tree, then in this tree (one
process at a time, so both see the same machine), and keeps every case's figures. On a shared
machine read ``cpu_p50_ms`` (process CPU per tick) before the wall clock; the table gives the
ratio base / new of the medians over rounds.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]
KEYS = ("p50_ms", "p99_ms", "cpu_p50_ms", "speedup_p50", "pruning_gap")
STAGES = ("retrieve", "score", "solve")


def _run(tree: Path, args: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="tick-ab-") as tmp:
        out = Path(tmp) / "tick.json"
        subprocess.run([sys.executable, "-m", "benchmarks.tick", "--quick", *args, "--json", str(out)],
                       cwd=tree, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def _median(cases: list[dict], key: str) -> float | None:
    vals = [c[key] for c in cases if c.get(key) is not None]
    return float(np.median(vals)) if vals else None


def _summary(runs: list[dict]) -> list[dict]:
    """Per case and version: the median over rounds of each key and stage."""
    by: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        for c in run["result"]["cases"]:
            by.setdefault((c["name"], run["version"]), []).append(c)
    out = []
    for name in dict.fromkeys(n for n, _ in by):
        row = {"name": name}
        for v in ("base", "new"):
            cs = by.get((name, v), [])
            row[v] = {**{k: _median(cs, k) for k in KEYS},
                      "stages_p50_ms": {s: float(np.median([c["stages_p50_ms"][s] for c in cs])) for s in STAGES}}
        b, n = row["base"]["cpu_p50_ms"], row["new"]["cpu_p50_ms"]
        row["cpu_ratio_base_over_new"] = b / n if b and n else None
        out.append(row)
    return out


def _plot(summary: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2.2 * len(summary) + 2, 4))
    x = np.arange(len(summary))
    for k, (v, colour) in enumerate((("base", "#999999"), ("new", "#1f77b4"))):
        ax.bar(x + (k - 0.5) * 0.38, [r[v]["cpu_p50_ms"] or 0.0 for r in summary], 0.38, color=colour, label=v)
    ax.set_xticks(x, [r["name"] for r in summary], rotation=15, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("CPU ms per tick (p50, median over rounds)")
    ax.set_title("benchmarks.tick, base vs new, alternating runs (shared 2-core machine)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="checkout of the earlier revision")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", nargs="+", metavar="PREFIX", help="passed to benchmarks.tick")
    ap.add_argument("--xgb-model", help="passed to benchmarks.tick")
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--plot")
    args = ap.parse_args(argv)
    extra = (["--only", *args.only] if args.only else []) + (["--xgb-model", args.xgb_model] if args.xgb_model else [])
    runs = []
    for r in range(args.rounds):
        for version, tree in (("base", Path(args.base)), ("new", HERE)):
            print(f"  round {r + 1}: {version}", file=sys.stderr, flush=True)
            runs.append({"version": version, "round": r + 1, "result": _run(tree, extra)})
    summary = _summary(runs)
    print(f"{'case':<24} {'cpu p50 base':>12} {'cpu p50 new':>12} {'base/new':>9} {'wall p50 base':>14} "
          f"{'wall p50 new':>13} {'speedup new':>12}")
    for row in summary:
        b, n = row["base"], row["new"]
        f = lambda v: f"{v:.1f}" if v is not None else "-"
        print(f"{row['name']:<24} {f(b['cpu_p50_ms']):>12} {f(n['cpu_p50_ms']):>12} "
              f"{f(row['cpu_ratio_base_over_new']):>9} {f(b['p50_ms']):>14} {f(n['p50_ms']):>13} "
              f"{f(n['speedup_p50']):>12}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"benchmark": "tick_ab", "base": str(args.base),
                                                   "summary": summary, "runs": runs}, indent=1))
    if args.plot:
        _plot(summary, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
