"""Every day test of the living centre's nightly monitor checks, recorded, so that a false-alarm
threshold can be set from a driftless calibration run and checked on other seeds.

    python -m benchmarks.monitor_calibration --world nodrift --seeds 100-105 --json OUT.json
    python -m benchmarks.monitor_calibration --world drift --seeds 0-4 --json OUT.json

The loop (:class:`assign.deploy.loop.LoopPolicy`) alone on the living centre of
``benchmarks.living_centre`` (same settings as docs/living-centre.md: 8 agents, 5 intents, 1
hire a week, 300 s windows, 10 pre-period days, world seed 2026), serially in this process,
with :func:`assign.deploy.monitor.monitor` wrapped so that each call's full report is kept:
every test's kind, name, statistic and p-value, the number of testable tests, the
threshold-based (``unknown``) alarms. The monitor changes nothing the loop does (retrains and
swaps do not read it), so the loop's trajectory, hence every check, is the same whatever the
monitor's threshold; any alarm rule can then be evaluated on the recorded tests
(``benchmarks.monitor_threshold``). Seeds are the traffic and outcome draws of the one centre
(common random numbers): calibration and evaluation runs use disjoint seed sets.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import assign.deploy.monitor  # noqa: F401  (the module, not the function the package exports)
from assign.constants import DAY_S
from assign.deploy.loop import LoopConfig
from assign.world.drift import DriftSchedule, drifting_world

SETTINGS = dict(agents=8, intents=5, hires=1, window_s=300.0, pre_days=10, world_seed=2026, shock_day=9.0,
                mix_day=14.0, label_delay_h=6.0)


def parse_seeds(text: str) -> list[int]:
    """``"100-105"`` or ``"0,3,7"``."""
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",") if x]


class DaySums:
    """Wraps the monitor's ``day_test``: keeps each call's day-level sufficient statistics
    (per reference day: rows, sum, sum of squares of the centred values; the recent rows'
    count and sum), so that other day-level statistics can be computed on the same checks."""

    def __init__(self, inner) -> None:
        self.inner, self.kept = inner, []

    def __call__(self, ref, ref_day, rec, rec_day, **kw):
        from assign.deploy.drift import day_sums

        rd = np.asarray(ref_day, np.int64)
        n, s1, s2 = day_sums(ref, rd, int(rd.max(initial=-1)) + 1)
        cd = np.asarray(rec_day, np.int64)
        rn, rs, _ = day_sums(rec, cd, int(cd.max(initial=-1)) + 1)
        self.kept.append(dict(n=n[n > 0].tolist(), s=s1[n > 0].tolist(), q=s2[n > 0].tolist(),
                              rn=rn[rn > 0].tolist(), rs=rs[rn > 0].tolist()))
        return self.inner(ref, ref_day, rec, rec_day, **kw)


class Recorder:
    """Wraps ``monitor``: calls it as given and keeps a compact copy of every report."""

    def __init__(self, inner, *, jsonl: Path | None = None, sums: DaySums | None = None) -> None:
        self.inner, self.calls, self.jsonl, self.sums = inner, [], jsonl, sums

    def __call__(self, recent, **kw):
        if self.sums is not None:
            self.sums.kept.clear()
        rep = self.inner(recent, **kw)
        kept = self.sums.kept if self.sums is not None and len(self.sums.kept) == len(rep.tests) else None
        tests = [(t["kind"], t["name"], _num(t["statistic"]), _num(t["p_value"]), _num(t["df"]),
                  None if kept is None else kept[k]) for k, t in enumerate(rep.tests) if t["testable"]]
        self.calls.append(dict(now=rep.meta["now"], testable=rep.meta["testable"], tests=tests,
                               days_reference=rep.meta["days_reference"],
                               days_reference_unseen=rep.meta["days_reference_unseen"],
                               threshold_alarms=[dict(kind=a["kind"], name=a["name"]) for a in rep.alarms
                                                 if a["kind"] in ("unknown", "agent")]))
        if self.jsonl is not None:  # as it goes: a run stopped early keeps the checks done
            with self.jsonl.open("a") as f:
                f.write(json.dumps(self.calls[-1]) + "\n")
        return rep


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def run(world: str, seeds: list[int], weeks: int, root: Path, jsonl: Path | None = None) -> list[dict]:
    from benchmarks.living_centre import run_world

    s = SETTINGS
    schedule = (DriftSchedule(weeks=weeks, hires_per_week=s["hires"], leavers_per_week=s["hires"],
                              shock_day=s["shock_day"], mix_day=s["mix_day"]) if world == "drift"
                else DriftSchedule.off(weeks=weeks))
    dw = drifting_world(seed=s["world_seed"], n_agents=s["agents"], n_intents=s["intents"], schedule=schedule)
    monitor_module = sys.modules["assign.deploy.monitor"]
    sums = DaySums(monitor_module.day_test)
    rec = Recorder(monitor_module.monitor, jsonl=jsonl, sums=sums)
    monitor_module.monitor, monitor_module.day_test = rec, sums
    try:
        _, events = run_world(dw, policies=("loop",), seeds=seeds, days=7 * weeks, window_s=s["window_s"], workers=0,
                              root=root, pre_days=s["pre_days"],
                              loop_cfg=LoopConfig(label_delay_s=s["label_delay_h"] * 3600.0,
                                                  level_half_life_h=None))  # the loop its figures were run with
    finally:
        monitor_module.monitor, monitor_module.day_test = rec.inner, sums.inner
    checks = [e for e in events if e["event"] == "monitor"]
    checks.sort(key=lambda e: (e["seed"], e["t_s"]))
    if len(checks) != len(rec.calls):
        raise RuntimeError(f"{len(checks)} monitor events but {len(rec.calls)} monitor calls")
    start = pd.Timestamp(dw.base.start)
    out = []
    for e, c in zip(checks, rec.calls):
        if abs((pd.Timestamp(c["now"]) - start).total_seconds() - e["t_s"]) > 1.0:
            raise RuntimeError(f"monitor call at {c['now']} does not match event at t_s={e['t_s']}")
        wd = (start + pd.Timedelta(seconds=e["t_s"] - DAY_S)).day_name()
        out.append(dict(seed=e["seed"], day=e["day"], weekday_of_recent=wd, champion=e["champion"],
                        loop_alarm=e["alarm"], **c))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world", choices=("drift", "nodrift"), default="nodrift")
    ap.add_argument("--seeds", default="100-105", help="e.g. 100-105 or 0,1,2")
    ap.add_argument("--weeks", type=int, default=4)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", dest="json_out", required=True)
    a = ap.parse_args(argv)
    seeds = parse_seeds(a.seeds)
    root = Path(a.workdir or a.json_out + ".work")
    t0 = time.perf_counter()
    jsonl = Path(a.json_out + ".calls.jsonl")
    jsonl.unlink(missing_ok=True)
    checks = run(a.world, seeds, a.weeks, root, jsonl)
    doc = dict(world=a.world, seeds=seeds, weeks=a.weeks, settings=SETTINGS, checks=checks,
               wall_s=round(time.perf_counter() - t0, 1), machine="shared 2 cores")
    Path(a.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json_out).write_text(json.dumps(doc, default=str))
    print(f"{len(checks)} checks, {doc['wall_s']} s -> {a.json_out}")


if __name__ == "__main__":
    main()
