"""False alarms and detection delay of ``assign monitor`` on the synthetic centre.

Per seed: a world (``--agents``, ``--intents``) and ``--days`` days of history; the champion is
trained on the first ``--train-days`` days (the reference), then every later day is checked
once, as a nightly job would (recent = that day, context = everything before it, now = the
end of the day). On the unchanged history every alarm is a false alarm. Shocked copies of
the same world, from day ``--shock-day`` on (spliced at midnight):

- ``difficulty``: one intent's resolution logit drops by ``--logit-drop`` (its resolution
  falls by about 0.1-0.15);
- ``complexity``: one intent's contacts get ``--complexity-up`` more complexity (a feature
  and the outcomes move);
- ``mix``: one intent's arrival share triples;
- ``new_intent``: ``--new-share`` of the contacts come with an intent the model never saw.

The delay is the number of nightly checks from the shock to the first alarm (1: the check at
the end of the shock's first day). Usage::

    python -m benchmarks.monitor_alarms --seeds 5 --json OUT.json
    python -m benchmarks.monitor_alarms --seeds 5 --calibration-margin resolved=0.02,csat=0.1,handle_time=0.05
    python -m benchmarks.monitor_alarms --seeds 5 --calibration-reference all   # in-sample reference (before)
    python -m benchmarks.monitor_alarms --seeds 1 --first-seed 100 --shocks difficulty --max-delay 2 --also-plain

Each check also records its smallest Bonferroni-adjusted p-value per kind (``min_p_adjusted``;
with ``--also-plain`` also for the day test as it was, part days in), so the delays at any
alpha follow from the JSON (``benchmarks.monitor_threshold --alarms``); with ``--json OUT``
each finished seed is appended to ``OUT.seeds.jsonl`` as it goes.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from assign.constants import DAY_S
from assign.deploy.monitor import MonitorConfig, assess, build_side
from assign.history import conform_history, epoch_seconds
from assign.model.scorer import ModelDir
from assign.model.train import train
from assign.world.centre import generate_history, generate_world

SHOCKS = ("difficulty", "complexity", "mix", "new_intent")


def _shocked_world(world, kind: str, k: int, args):
    if kind == "difficulty":
        base = world.intent_base.copy()
        base[k] -= args.logit_drop
        return replace(world, intent_base=base)
    if kind == "complexity":
        cx = world.intent_complexity.copy()
        cx[k] += args.complexity_up
        return replace(world, intent_complexity=cx)
    share = world.intent_share.copy()
    share[k] *= 3.0
    return replace(world, intent_share=share)


def _splice(hist: pd.DataFrame, shocked: pd.DataFrame, at) -> pd.DataFrame:
    return conform_history(pd.concat([hist[hist["arrival_at"] < at], shocked[shocked["arrival_at"] >= at]],
                                     ignore_index=True))


def _new_intent(hist: pd.DataFrame, at, share: float, seed: int) -> pd.DataFrame:
    h = hist.copy()
    rng = np.random.default_rng(seed)
    m = (h["arrival_at"] >= at).to_numpy() & (rng.random(len(h)) < share)
    h["intent"] = h["intent"].astype(object)
    h.loc[m, "intent"] = "brand_new_intent"
    return conform_history(h)


def _checks(model, hist: pd.DataFrame, cfg: MonitorConfig, *, train_end, first_day: int,
            last_day: int, also_plain: bool = False) -> list[dict]:
    """One nightly check per day in [first_day, last_day] (days from the history's start)."""
    hist = hist.sort_values(["arrival_at", "contact_id"], kind="stable").reset_index(drop=True)
    t = epoch_seconds(hist["arrival_at"])
    t0 = float(np.floor(t.min() / DAY_S) * DAY_S)
    ref = build_side(model, hist[hist["arrival_at"] < train_end].reset_index(drop=True), None, cfg, t0=t0,
                     reference=True)
    rec_all = build_side(model, hist, None, cfg, t0=t0, reference=False)
    out = []
    for d in range(first_day, last_day + 1):
        rec = rec_all.take(rec_all.day == d)
        rep = assess(model, ref, rec, cfg, now_s=t0 + (d + 1) * DAY_S)
        out.append(dict(day=d, alarm=rep.alarm, alarms=[f"{a['kind']}:{a['name']}" for a in rep.alarms],
                        rows=len(rec.hist), testable=rep.meta["testable"], min_p_adjusted=_min_adjusted(rep)))
        if also_plain:  # the same check with the day test as it was (part days in, no dispersion factor)
            before = replace(cfg, dispersion=False, min_day_share=0.0)
            plain = assess(model, ref, rec, before, now_s=t0 + (d + 1) * DAY_S)
            out[-1]["min_p_adjusted_plain"] = _min_adjusted(plain)
    return out


def _min_adjusted(rep) -> dict[str, float]:
    """Per kind of day test: the smallest p-value times the number of testable tests (the
    Bonferroni-adjusted p; the check alarms on that kind at any alpha above it)."""
    n = max(rep.meta["testable"], 1)
    out: dict[str, float] = {}
    for t in rep.tests:
        if t["testable"]:
            out[t["kind"]] = min(out.get(t["kind"], 1.0), min(1.0, float(t["p_value"]) * n))
    return out


def run_seed(seed: int, args, cfg: MonitorConfig, workdir: Path) -> dict:
    world = generate_world(n_agents=args.agents, seed=seed, n_intents=args.intents)
    hist = generate_history(world, days=args.days, seed=seed + 1)
    start = pd.Timestamp(world.start)
    train_end = start + pd.Timedelta(days=args.train_days)
    shock_at = start + pd.Timedelta(days=args.shock_day)
    mdir = workdir / f"model-{seed}"
    train(hist[hist["arrival_at"] < train_end], out=mdir)
    model = ModelDir.load(mdir)
    null = _checks(model, hist, cfg, train_end=train_end, first_day=args.train_days, last_day=args.days - 1,
                   also_plain=args.also_plain)
    k = int(np.argsort(world.intent_share)[len(world.intent_share) // 2])  # a middling intent
    res = dict(seed=seed, intent=world.intents[k], rows_per_day=float(len(hist) / args.days), null=null, shocks={})
    for kind in args.shocks.split(","):
        if kind == "new_intent":
            shocked = _new_intent(hist, shock_at, args.new_share, seed)
        else:
            shocked = _splice(hist, generate_history(_shocked_world(world, kind, k, args), days=args.days,
                                                     seed=seed + 1), shock_at)
        checks = _checks(model, shocked, cfg, train_end=train_end, first_day=args.shock_day,
                         last_day=min(args.shock_day + args.max_delay - 1, args.days - 1), also_plain=args.also_plain)
        first = next((n + 1 for n, c in enumerate(checks) if c["alarm"]), None)
        res["shocks"][kind] = dict(delay_days=first, first_alarms=next((c["alarms"] for c in checks if c["alarm"]), []),
                                   min_p_adjusted=[c["min_p_adjusted"] for c in checks],
                                   min_p_adjusted_plain=[c.get("min_p_adjusted_plain") for c in checks])
    return res


def summarise(results: list[dict], cfg: MonitorConfig) -> dict:
    null = [c for r in results for c in r["null"]]
    k = sum(c["alarm"] for c in null)
    n = len(null)
    from scipy import stats

    hi = float(stats.beta.ppf(0.975, k + 1, n - k)) if n else None
    delays = {s: [r["shocks"][s]["delay_days"] for r in results] for s in SHOCKS if s in results[0]["shocks"]}
    kinds = ("feature", "prediction", "calibration", "unknown")
    by_kind = {k: sum(any(a.startswith(k + ":") for a in c["alarms"]) for c in null) for k in kinds}
    return dict(alpha=cfg.alpha, null_checks=n, false_alarms=k, false_alarm_rate=k / n if n else None,
                false_alarm_rate_upper95=hi, false_alarms_per_week=7 * k / n if n else None,
                null_checks_alarming_by_kind=by_kind,
                false_alarm_names=sorted({a for c in null for a in c["alarms"]}), delay_days=delays,
                rows_per_day=float(np.mean([r["rows_per_day"] for r in results])))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=100)
    ap.add_argument("--agents", type=int, default=30)
    ap.add_argument("--intents", type=int, default=8)
    ap.add_argument("--days", type=int, default=21)
    ap.add_argument("--train-days", type=int, default=14)
    ap.add_argument("--shock-day", type=int, default=17)
    ap.add_argument("--max-delay", type=int, default=4)
    ap.add_argument("--logit-drop", type=float, default=0.6)
    ap.add_argument("--complexity-up", type=float, default=0.15)
    ap.add_argument("--new-share", type=float, default=0.03)
    ap.add_argument("--shocks", default=",".join(SHOCKS), help="comma-separated subset of " + ",".join(SHOCKS))
    ap.add_argument("--alpha", type=float, default=MonitorConfig().alpha)
    ap.add_argument("--calibration-margin", default="", help="e.g. resolved=0.02,csat=0.1,handle_time=0.05")
    ap.add_argument("--calibration-reference", choices=("held_out", "all"),
                    default=MonitorConfig().calibration_reference,
                    help="reference rows of the calibration checks: those the model did not fit, or all")
    ap.add_argument("--prediction-reference", choices=("held_out", "all"), default=MonitorConfig().prediction_reference)
    ap.add_argument("--dispersion", action="store_true", help="day tests with the reference's dispersion factor")
    ap.add_argument("--also-plain", action="store_true",
                    help="also record each check's smallest adjusted p-values with the day test as it was "
                         "(part days in)")
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args(argv)
    bad = sorted(set(args.shocks.split(",")) - set(SHOCKS))
    if bad:
        ap.error(f"--shocks: unknown {bad}; choose from {', '.join(SHOCKS)}")
    margins = dict((k, float(v)) for k, v in (x.split("=") for x in args.calibration_margin.split(",") if x))
    cfg = MonitorConfig(alpha=args.alpha, calibration_margin=margins, calibration_reference=args.calibration_reference,
                        prediction_reference=args.prediction_reference, dispersion=args.dispersion)
    t = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in tqdm(range(args.first_seed, args.first_seed + args.seeds), desc="seeds", unit="seed"):
            results.append(run_seed(seed, args, cfg, Path(tmp)))
            if args.json_out:  # as it goes: a run stopped early keeps the seeds done
                with Path(args.json_out + ".seeds.jsonl").open("a") as f:
                    f.write(json.dumps(results[-1], default=str) + "\n")
    doc = dict(summary=summarise(results, cfg), args=vars(args), seconds=time.perf_counter() - t, results=results)
    print(json.dumps(doc["summary"], indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(doc, indent=1, default=str))


if __name__ == "__main__":
    main()
