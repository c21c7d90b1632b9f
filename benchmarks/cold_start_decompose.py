"""Where ml-learn's new-hire estimate loses: its error per hire, split into exact additive parts.

    python -m benchmarks.cold_start_decompose [--seeds 5 --seed0 100 --days 5] --json OUT [--plot PNG]

Runs ``ml-learn`` exactly as :mod:`benchmarks.cold_start` does and records, after every batch
of outcomes, each new hire's posterior effect ``e`` (logit offset on the population model), its
cohort's mean effect ``mu`` and the counts of its CSAT and resolutions folded in. With ``m_i``
the model logits of the hire's first ``n`` served contacts and ``E(x) = mean_i sigmoid(m_i + x)``
(the estimate is ``E(e)``), the hire's **true offset** ``e*`` solves ``E(e*) = truth_sofar`` (the
true mean expected resolution of those contacts), and ``ebar*`` is the mean ``e*`` of the seed's
hires at that time. Then, exactly (:func:`parts`)::

    estimate - truth_run = (truth_sofar - truth_run)                 # truth: later contacts differ
                         + (E(ebar + e* - ebar*) - E(e*))            # centre: the hires' mean estimate vs truth
                         + (E(e) - E(ebar + e* - ebar*))             # individual: the hire's deviation

with ``ebar`` the mean estimated effect of the seed's hires at that time (their cohort's mean
``mu`` plus the pull of their pooled CSAT). The centre part is common to a seed's hires (a
bias); the individual part is the hire's own deviation from the hires' mean, estimated against
true (ranking and shrinkage: the variance). The counterfactual
medians of the benchmark's rule with one part removed say what fixing it would buy. The ideal
estimator of :mod:`benchmarks.cold_start_bound` (resolution + CSAT) is given beside it.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from benchmarks.cold_start_bound import contacts_to, hire_contacts, ideal_estimates, median_inf

COUNTS = (1, 25, 50, 100, 150, 200, 300)
PARTS = ("truth", "centre", "individual")


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def solve_offset(margins: np.ndarray, target: float) -> float:
    """``x`` with ``mean(sigmoid(margins + x)) = target`` (bisection; target clipped inside (0, 1))."""
    lo, hi = -12.0, 12.0
    t = min(max(target, 1e-9), 1 - 1e-9)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _sig(margins + mid).mean() < t else (lo, mid)
    return 0.5 * (lo + hi)


def parts(margins: np.ndarray, *, e: float, mu: float, e_star: float, ebar: float, truth_sofar: float,
          truth_run: float) -> dict[str, float]:
    """The exact split of ``E(e) - truth_run`` (module doc; ``mu``: the hires' mean estimated
    effect, ``ebar``: their mean true offset); the parts sum to ``error``."""
    ex = lambda x: float(_sig(margins + x).mean())
    est, at_star, at_centre = ex(e), ex(e_star), ex(mu + e_star - ebar)
    return {"error": est - truth_run, "truth": at_star - truth_run, "centre": at_centre - at_star,
            "individual": est - at_centre, "truth_sofar_gap": at_star - truth_sofar}


class _Recorder:
    """Wraps the benchmark's tracked ml-learn: after each batch, the hires' posterior effects."""

    @staticmethod
    def make(**kw):
        from benchmarks.cold_start import _Tracked

        class Rec(_Tracked):
            def start(self, run) -> None:
                super().start(run)
                self.rec: list[tuple] = []
                self.batch = 0
                self.served: dict[int, list[tuple[int, float]]] = {int(a): [] for a in self.hires}

            def assign(self, view):
                ci, ai = super().assign(view)
                for e in self._started[len(self._started) - len(ci):]:
                    if e[2] in self.served:
                        self.served[e[2]].append((e[1], e[4]))
                return ci, ai

            def observed(self, view) -> None:
                super().observed(view)
                snap = view.snapshot(view.waiting[:0], self.hires)
                eff, rows = self.scorer.effects(snap)
                v = self.scorer.version(snap)
                tot = v.totals(np.asarray(snap.agents.ids).astype(str))
                self.batch += 1
                for k, a in enumerate(self.hires):
                    r = rows[k]
                    self.rec.append((self.batch, int(a), int(self.handled[a]), float(eff.mean[r]),
                                     float(np.sqrt(eff.var[r])),
                                     float(eff.cohort_mean[np.searchsorted(np.unique(eff.cohort), eff.cohort[r]), 0]),
                                     float(tot["n"][k]), float(tot["nb"][k].sum()),
                                     float(eff.sigma[0, 1] / eff.sigma[1, 1])))
        return Rec(**kw)


def seed_parts(seed: int, *, days: int, label_delay_h: float = 72.0, warm_days: int = 14) -> pd.DataFrame:
    """One row per (hire, batch of outcomes) of ml-learn's run on benchmark seed ``seed``."""
    from assign.learn.explore import Explore
    from assign.sim.engine import SERVED, SimConfig, simulate
    from assign.sim.worldsource import WorldSource
    from benchmarks.cold_start import benchmark_world, warm_history

    world = benchmark_world(seed, n_agents=30, n_intents=6, new_hires=0.2, past=0.2, warm_days=warm_days)
    hist = warm_history(world, days=warm_days, seed=seed)
    pol = _Recorder.make(name="ml-learn", explore=Explore(), label_delay_s=label_delay_h * 3600, csat_proxy=True,
                         warm_history=hist, warm_shift=-pd.Timedelta(days=warm_days))
    run = simulate(source=WorldSource(world), policy=pol, seed=seed, config=SimConfig(days=days, window_s=20.0))
    rec = pd.DataFrame(pol.rec, columns=["batch", "agent", "handled", "e", "sd", "mu", "n_csat", "n_res", "slope"])
    rec = rec[rec["handled"] > 0].reset_index(drop=True)
    served = run.status == SERVED
    start = run.stream.arrival_s + np.nan_to_num(run.wait_s)
    info = {}
    for a in pol.hires:
        order = [c for c, _ in pol.served[int(a)]]
        marg = np.array([m for _, m in pol.served[int(a)]])
        pos = np.argsort(start[order], kind="stable")  # the benchmark's order: by start
        tp = run.truth_p_resolved[np.asarray(order, np.int64)[pos]]
        assert len(tp) == int((served & (run.agent == a)).sum())
        info[int(a)] = (marg[pos], tp)
    e_star = np.full(len(rec), np.nan)
    for i, (a, h) in enumerate(zip(rec["agent"], rec["handled"])):
        marg, tp = info[a]
        n = min(h, len(tp))
        e_star[i] = solve_offset(marg[:n], float(tp[:n].mean()))
    rec["e_star"] = e_star
    # the hires' mean true offset at each batch (over the hires that have served a contact by then)
    rec["ebar"] = rec.groupby("batch")["e_star"].transform("mean")
    rec["ehat_bar"] = rec.groupby("batch")["e"].transform("mean")  # the estimator's mean for the hires
    out = []
    for row in rec.itertuples():
        marg, tp = info[row.agent]
        n = min(row.handled, len(tp))
        p = parts(marg[:n], e=row.e, mu=row.ehat_bar, e_star=row.e_star, ebar=row.ebar,
                  truth_sofar=float(tp[:n].mean()), truth_run=float(tp.mean()))
        out.append(p)
    res = pd.concat([rec, pd.DataFrame(out)], axis=1).assign(seed=seed)
    ab, sp = world.agents["ability"].to_numpy(), world.agents["speed"].to_numpy()
    ideal = []
    for a in pol.hires:  # the ideal estimator (resolution + CSAT), per contact handled, against truth_run
        df = hire_contacts(run, int(a))
        est = ideal_estimates(df, ability=float(ab[a]), speed=float(sp[a]), coef=world.coef,
                              label_delay_s=label_delay_h * 3600, csat_delay_s=3600.0, view="resolution+csat")
        ideal.append(pd.DataFrame({"agent": int(a), "handled": np.arange(1, len(df) + 1),
                                   "ideal_error": est - df["tp"].mean(), "ability": float(ab[a])}))
    return res, pd.concat(ideal).assign(seed=seed)


def at_counts(res: pd.DataFrame, ideal: pd.DataFrame) -> dict:
    """Per contact count n: over hires, at the first batch after n handled, mean / sd of the error,
    of each part and of the ideal estimator's error."""
    out = {}
    for n in COUNTS:
        g = res[res["handled"] >= n].sort_values("handled", kind="stable").groupby(["seed", "agent"]).head(1)
        i = ideal[ideal["handled"] == n]
        d = {"hires": int(len(g)), "median_abs_error": float(g["error"].abs().median()),
             "within_003": float((g["error"].abs() <= 0.03).mean())}
        for c in ("error", *PARTS):
            d[f"{c}_mean"], d[f"{c}_sd"] = float(g[c].mean()), float(g[c].std())
        d.update(ideal_mean=float(i["ideal_error"].mean()), ideal_sd=float(i["ideal_error"].std()),
                 ideal_median_abs=float(i["ideal_error"].abs().median()), n_csat=float(g["n_csat"].median()),
                 n_res=float(g["n_res"].median()), sd_effect=float(g["sd"].median()),
                 cohort_minus_true_logit=float((g["mu"] - g["ebar"]).mean()),
                 hires_minus_cohort_logit=float((g["ehat_bar"] - g["mu"]).mean()),
                 hires_minus_true_logit=float((g["ehat_bar"] - g["ebar"]).mean()), slope=float(g["slope"].median()))
        out[str(n)] = d
    return out


def counterfactual(res: pd.DataFrame) -> dict:
    """Median contacts to +-0.03 (the benchmark's rule) of the error, and with parts removed."""
    out = {}
    for name, cols in (("as_run", ()), ("without_truth", ("truth",)), ("without_centre", ("centre",)),
                       ("without_individual", ("individual",)), ("only_individual", ("truth", "centre"))):
        to = []
        for _, t in res.sort_values("handled", kind="stable").groupby(["seed", "agent"]):
            err = t["error"].to_numpy() - sum((t[c].to_numpy() for c in cols), np.zeros(len(t)))
            to.append(contacts_to(t["handled"].to_numpy(), err))
        s = pd.Series(to)
        out[name] = {"median": median_inf(s), "reached": f"{int(np.isfinite(s).sum())}/{len(s)}"}
    return out


def plot(res: pd.DataFrame, ideal: pd.DataFrame, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = np.array([1, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    res = res.assign(b=np.searchsorted(bins, res["handled"], side="right") - 1)
    mids = bins[:-1]
    for c, col in (("error", "k"), ("truth", "tab:grey"), ("centre", "tab:red"), ("individual", "tab:blue")):
        g = res.groupby("b")[c]
        axes[0].plot(mids[: len(g.mean())], g.mean().to_numpy()[: len(mids)], "-o", c=col, ms=3, label=f"{c}: mean")
        axes[1].plot(mids[: len(g.std())], g.std().to_numpy()[: len(mids)], "-o", c=col, ms=3, label=f"{c}: sd")
    idl = ideal.assign(b=np.searchsorted(bins, ideal["handled"], side="right") - 1).groupby("b")["ideal_error"]
    axes[0].plot(mids[: len(idl.mean())], idl.mean().to_numpy()[: len(mids)], "--", c="tab:green", label="ideal: mean")
    axes[1].plot(mids[: len(idl.std())], idl.std().to_numpy()[: len(mids)], "--", c="tab:green", label="ideal: sd")
    for ax, t in zip(axes, ("bias: mean over hires (estimate - truth)", "spread: sd over hires")):
        ax.axhline(0.0, c="grey", lw=0.5)
        ax.axhline(0.03, c="grey", ls=":", lw=0.8)
        ax.set(xscale="log", xlabel="contacts handled", title=t)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", dest="json_out", required=True)
    ap.add_argument("--plot", default=None)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--seed0", type=int, default=100, help="tuning seeds by default (the benchmark reports 0-4)")
    ap.add_argument("--days", type=int, default=5)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    got = [seed_parts(s, days=a.days) for s in tqdm(range(a.seed0, a.seed0 + a.seeds), desc="seeds")]
    res = pd.concat([g[0] for g in got], ignore_index=True)
    ideal = pd.concat([g[1] for g in got], ignore_index=True)
    out = {"at_counts": at_counts(res, ideal), "counterfactual_contacts_to_003": counterfactual(res),
           "settings": {"seeds": a.seeds, "seed0": a.seed0, "days": a.days,
                        "wall_s": round(time.perf_counter() - t0, 1)}}
    with open(a.json_out, "w") as f:
        json.dump(out, f, indent=1)
    if a.plot:
        plot(res, ideal, a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
