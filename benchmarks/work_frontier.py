"""The first-day work ratio's frontier: what a fixed price for new hires costs day 2's uplift share.

    python -m benchmarks.work_frontier --json OUT [--oracle-prices 0,0.02,...] [--learn-prices 0.02,0.04]

A measurement, nothing chosen from it (``docs/learn.md`` 5.10). On the cold-start benchmark's worlds and
seeds (:func:`benchmarks.cold_start.benchmark_world`, its warm history and policies), ``--days`` days
(2: day 2 is the hires' first day), it runs ``fcfs``, the ``oracle`` and, per price ``b``:

- ``oracle+b`` (:class:`PricedOracle`): the truth-knowing router with ``b`` added to the value of each
  pair of a hire in its first ``days`` of tenure (resolution-probability units, where the work floor's
  price goes); with perfect knowledge, the cheapest way to buy the hires' work with a constant price;
- ``ml-learn+b``: ml-learn with 5.9's priced floor at ``start = lambda_max = b``
  (:data:`assign.learn.floor.PRICED` otherwise).

Per seed and policy: the day-2 work ratio (:func:`benchmarks.cold_start.work_parts`, ``contacts``) and the
day-2 resolution; the share of the plain oracle's uplift over fcfs is computed against the same run's fcfs
and oracle.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from assign.constants import DAY_S
from assign.learn.floor import PRICED
from assign.sim.engine import SimConfig, simulate
from assign.sim.policies import OracleScorer, RouterPolicy, make_policy
from assign.sim.worldsource import WorldSource
from assign.validate import Problems
from assign.world.centre import hire_days
from benchmarks.cold_start import _policy, benchmark_world, day_resolution, warm_history, work_parts


class PricedOracleScorer(OracleScorer):
    """The oracle's true expected resolution plus ``bonus`` on each pair whose agent's tenure at the
    decision is in ``[0, days)`` (a synthetic world's agents age with the clock; hires join at tenure 0).
    ``bonus`` 0 is the plain oracle exactly."""

    name = "oracle-priced"

    def __init__(self, *, bonus: float, days: float = 1.0) -> None:
        super().__init__()
        p = Problems()
        p.number("priced_oracle.bonus", bonus, lo=0, hi=1)
        p.number("priced_oracle.days", days, lo=0, lo_open=True)
        p.raise_if_any(what="priced oracle")
        self.bonus, self.days, self.t_s = float(bonus), float(days), 0.0
        self._tenure0 = None

    def bind(self, run) -> None:
        super().bind(run)
        self._tenure0 = np.asarray(run.source.world.arrays.tenure_days, float)

    def score_pairs(self, snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        base = super().score_pairs(snapshot, contact_idx=contact_idx, agent_idx=agent_idx)
        if self.bonus == 0.0:
            return base
        tenure = self._tenure0[snapshot.meta["agent_rows"][agent_idx]] + self.t_s / DAY_S
        return base + self.bonus * ((tenure >= 0) & (tenure < self.days))


class PricedOracle(RouterPolicy):
    """The ``oracle`` policy with a fixed price for new hires (:class:`PricedOracleScorer`)."""

    def __init__(self, *, bonus: float, days: float = 1.0) -> None:
        super().__init__(scorer=PricedOracleScorer(bonus=bonus, days=days), name=f"oracle+{bonus:g}")

    def assign(self, view):
        self.scorer.t_s = float(view.t)
        return super().assign(view)


def _specs(*, hist, warm_days: int, label_delay_h: float, oracle_prices, learn_prices, baselines, refs: bool):
    """(name, family, b, factory) of each policy run, in the order run: the shares' references (fcfs, the
    plain oracle) first where ``refs``."""
    def learn(name, floor=None):
        return lambda: _policy(name, hist=hist, shift=-pd.Timedelta(days=warm_days), label_delay_h=label_delay_h,
                               rule_scorer=False, csat_proxy=True, work_floor=floor)

    out = [("fcfs", "fcfs", None, lambda: make_policy("fcfs")), ("oracle+0", "oracle+b", 0.0,
                                                                  lambda: PricedOracle(bonus=0.0))] if refs else []
    out += [(name, name, None, learn(name)) for name in baselines]
    out += [(f"ml-learn+{b:g}", "ml-learn+b", b, learn("ml-learn", replace(PRICED, lambda_max=b, start=b)
                                                       if b > 0 else None)) for b in learn_prices]
    return out + [(f"oracle+{b:g}", "oracle+b", b, lambda b=b: PricedOracle(bonus=b)) for b in oracle_prices if b > 0]


def frontier_seed(seed: int, *, days: int, oracle_prices, learn_prices, baselines=("ml-live", "ml-batch"), refs=True,
                  n_agents: int = 30, n_intents: int = 6, new_hires: float = 0.2, past: float = 0.2,
                  warm_days: int = 14, window_s: float = 20.0, label_delay_h: float = 72.0, done=None) -> pd.DataFrame:
    """One seed's rows (seed, policy, family, b, day-2 work ratio, resolution per day) on the benchmark's
    world; ``done(rows)`` is called after each run (progress, partial results). ``ml-learn+0``: plain
    ml-learn (no floor)."""
    world = benchmark_world(seed, n_agents=n_agents, n_intents=n_intents, new_hires=new_hires, past=past,
                            warm_days=warm_days)
    src = WorldSource(world)
    hires = np.flatnonzero(hire_days(world.agents) == 1)
    hist = warm_history(world, days=warm_days, seed=seed)
    rows = []
    for name, family, b, make in _specs(hist=hist, warm_days=warm_days, label_delay_h=label_delay_h,
                                        oracle_prices=oracle_prices, learn_prices=learn_prices, baselines=baselines,
                                        refs=refs):
        cfg = SimConfig(days=days, window_s=0.0 if name == "fcfs" else window_s)
        run = simulate(source=src, policy=make(), seed=seed, config=cfg)
        res = day_resolution(run, days=days)
        rows.append({"seed": seed, "policy": name, "family": family, "b": b,
                     "ratio": work_parts(run, src, hires)["contacts"],
                     **{f"resolution_day{d}": r for d, r in enumerate(res, 1)}})
        if done is not None:
            done(rows)
    return pd.DataFrame(rows)


def shares(df: pd.DataFrame, *, day: int = 2) -> pd.DataFrame:
    """Each row's share of the plain oracle's (``oracle+0``) uplift over fcfs on ``day``, same seed (NaN where
    the seed's references are not among the rows)."""
    col = f"resolution_day{day}"
    f = df[df["policy"] == "fcfs"].set_index("seed")[col]
    o = df[df["policy"] == "oracle+0"].set_index("seed")[col]
    return df.assign(share=(df[col] - df["seed"].map(f)) / (df["seed"].map(o) - df["seed"].map(f)))


def summary(df: pd.DataFrame, *, against: str = "ml-live") -> pd.DataFrame:
    """Per policy: the day-2 ratio and share (mean, per seed) and the paired differences against ``against``
    (mean and sd over the seeds both ran)."""
    df = shares(df)
    ref = df[df["policy"] == against].set_index("seed")
    out = []
    for (fam, name), g in df.groupby(["family", "policy"], sort=False):
        g = g.set_index("seed").sort_index()
        d_share = (g["share"] - ref["share"]).dropna()
        d_ratio = (g["ratio"] - ref["ratio"]).dropna()
        out.append({"policy": name, "family": fam, "b": g["b"].iloc[0], "n": len(g),
                    "ratio": g["ratio"].mean(), "ratio_by_seed": [round(x, 3) for x in g["ratio"]],
                    "share": g["share"].mean(), "share_by_seed": [round(x, 3) for x in g["share"]],
                    f"d_share_vs_{against}": d_share.mean(), f"d_share_vs_{against}_sd": d_share.std(ddof=1),
                    f"d_ratio_vs_{against}": d_ratio.mean(), f"d_ratio_vs_{against}_sd": d_ratio.std(ddof=1)})
    return pd.DataFrame(out)


def plot(table: pd.DataFrame, path: str) -> None:
    """Day-2 work ratio against day-2 share: one curve per priced family, the baselines as points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for fam, marker in (("oracle+b", "o-"), ("ml-learn+b", "s-")):
        g = table[table["family"] == fam].sort_values("b")
        ax.plot(g["ratio"], g["share"], marker, label=f"{fam} (b = {', '.join(f'{b:g}' for b in g['b'])})")
        for r in g.itertuples():
            ax.annotate(f"{r.b:g}", (r.ratio, r.share), textcoords="offset points", xytext=(4, 4), fontsize=8)
    fcfs = table[table["policy"] == "fcfs"]
    if len(fcfs):  # its share is 0 by definition, below the axis: its ratio as a line
        ax.axvline(float(fcfs["ratio"].iloc[0]), color="purple", lw=0.8, ls=":", label="fcfs's ratio (share 0)")
    for name, marker in (("ml-live", "^"), ("ml-batch", "v")):
        g = table[table["policy"] == name]
        if len(g):
            ax.plot(g["ratio"], g["share"], marker, markersize=9, label=name)
    ax.axvspan(0.75, 1.25, color="green", alpha=0.08, label="ratio band [0.75, 1.25]")
    live = table[table["policy"] == "ml-live"]
    if len(live):
        ax.axhline(float(live["share"].iloc[0]), color="grey", lw=0.8, ls="--", label="ml-live's day-2 share")
    lo = min(0.85, float(table[table["family"] != "fcfs"]["share"].min()) - 0.02)
    ax.set(xlabel="new hires' first-day work ratio (mean over seeds)", ylabel="day-2 share of the oracle's uplift",
           title="Day 2 (the hires' first day): work ratio vs uplift share", ylim=(lo, 1.03),
           xlim=(min(0.6, float(table["ratio"].min()) - 0.02), max(0.85, float(table["ratio"].max()) + 0.02)))
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _prices(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", dest="json_out", required=True)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--seed0", type=int, default=0)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--oracle-prices", type=_prices, default=[0, 0.065, 0.15, 0.04, 0.1, 0.02])
    ap.add_argument("--learn-prices", type=_prices, default=[0, 0.04, 0.02, 0.065], help="0: plain ml-learn")
    ap.add_argument("--no-references", action="store_true",
                    help="skip fcfs and the plain oracle (a later batch of prices; shares computed on merging)")
    ap.add_argument("--baselines", type=lambda s: [x for x in s.split(",") if x], default=["ml-live", "ml-batch"])
    ap.add_argument("--merge", nargs="*", default=None,
                    help="instead of running: merge these JSONs (rows) into --json, with a summary (and --plot)")
    ap.add_argument("--plot", default=None, help="with --merge: PNG of ratio vs day-2 share")
    a = ap.parse_args(argv)
    if a.merge is not None:
        rows = pd.concat([pd.DataFrame(json.load(open(p))["rows"]) for p in a.merge], ignore_index=True)
        table = summary(rows)
        with open(a.json_out, "w") as f:
            json.dump({"rows": shares(rows).to_dict(orient="records"), "summary": table.to_dict(orient="records"),
                       "merged": [Path(p).name for p in a.merge]}, f, indent=1)
        if a.plot:
            plot(table, a.plot)
        return 0
    t0 = time.perf_counter()
    seeds = range(a.seed0, a.seed0 + a.seeds)
    frames: list[pd.DataFrame] = []
    n_runs = 2 * (not a.no_references) + len(a.baselines) + len(a.learn_prices) + sum(b > 0 for b in a.oracle_prices)
    bar = tqdm(total=a.seeds * n_runs, desc="runs")

    def done(rows) -> None:  # after each run: progress, and the partial results written
        bar.update(1)
        out = shares(pd.concat(frames + [pd.DataFrame(rows)], ignore_index=True))
        with open(a.json_out, "w") as f:
            json.dump({"rows": out.to_dict(orient="records"),
                       "settings": {"seeds": list(seeds), "days": a.days, "oracle_prices": a.oracle_prices,
                                    "learn_prices": a.learn_prices, "baselines": a.baselines,
                                    "floor": PRICED.__dict__, "wall_s": round(time.perf_counter() - t0, 1)}},
                      f, indent=1)

    for s in seeds:
        frames.append(frontier_seed(s, days=a.days, oracle_prices=a.oracle_prices, learn_prices=a.learn_prices,
                                    baselines=a.baselines, refs=not a.no_references, done=done))
    bar.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
