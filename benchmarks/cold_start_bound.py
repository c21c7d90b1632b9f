"""What the 72 h resolution delay allows: an ideal new-hire estimator on the cold-start benchmark's worlds.

    python -m benchmarks.cold_start_bound [--seeds 3 --seed0 100 --days 5] --json OUT [--plot PNG]

Runs ``ml-learn`` exactly as :mod:`benchmarks.cold_start` does (same worlds, contacts and
outcome draws) and, for each new hire, compares its estimate with that of an **ideal
estimator**: one that knows the world's truth except the hire's hidden ability and speed, i.e.
every contact's true resolution logit up to the ability, the true learning curve, the true CSAT
link (``csat_res + csat_ability`` per unit of ability on the CSAT logit), the true handle-time
model up to the speed, and the population's joint prior of (ability, speed) (the generator's:
ability ~ N(0, 0.45^2), speed = -0.3 ability + N(0, 0.12^2)). It updates a grid posterior of
(ability, speed) with each outcome as soon as the world reveals it (handle time at wrap-up, CSAT
``csat_delay`` after, resolution ``label_delay`` after) and estimates the hire's resolution rate
over the contacts it has served so far (the posterior mean of ``mean_i sigmoid(logit_i + a)``).
Its information sets (``VIEWS``): the prior alone, resolution only, resolution + CSAT, and
resolution + CSAT + handle time. Under the benchmark's rule (contacts handled when the error
enters +-0.03 for good), the ideal estimator's median is what the information allows; no
router's estimator that must learn the truth's links from data does better on average.

Beside it, the **learnable-links estimator** (:mod:`benchmarks.cold_start_links`; rows
``learned[band]`` and ``learned[week1]``, :data:`LEARNED`): the same machinery on what the router
can learn (the population model's logits recorded at each decision; the prior and the CSAT link
fitted by maximum marginal likelihood on the warm history alone, the hires' centre the earlier
cohort's). It says whether the gap between ml-learn and the ideal is knowledge (the links) or the
estimator's machinery (docs/learn.md 5.7).

Two truths (docs/learn.md 5.1): ``truth_run`` (the benchmark's: the mean true expected
resolution of all the contacts the hire served over the run) and ``truth_sofar`` (the same over
the contacts it had served by then: the quantity the estimate is computed on). The ideal
estimate is unbiased for ``truth_sofar``.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from assign.sim.engine import SERVED, SimConfig, simulate
from assign.sim.worldsource import WorldSource
from assign.world.truth import COEF_NAMES
from benchmarks.cold_start_links import A_GRID as LINK_A_GRID
from benchmarks.cold_start_links import Links, agent_logliks, csat_logit, fit_links, learned_estimates

#: The generator's population of agents (assign.world.centre._draw_agents): ability sd, speed on ability, speed noise.
ABILITY_SD, SPEED_SLOPE, SPEED_SD = 0.45, -0.3, 0.12
#: Information sets of the ideal estimator: which outcomes it uses.
VIEWS = {"prior": (), "resolution": ("resolved",), "resolution+csat": ("resolved", "csat"),
         "resolution+csat+handle": ("resolved", "csat", "handle")}
A_GRID = LINK_A_GRID
S_GRID = np.linspace(-1.0, 1.0, 161)
#: The learnable-links estimator (:mod:`benchmarks.cold_start_links`): which of the earlier cohort's
#: warm-history outcomes its hires' prior centre is fitted on (tenure below this many days; None: all).
LEARNED = {"learned[band]": None, "learned[week1]": 7.0}


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def hire_contacts(run, agent: int) -> pd.DataFrame:
    """The hire's served contacts in start order: start, end, drawn outcomes and their truth."""
    m = (run.status == SERVED) & (run.agent == agent)
    start = run.stream.arrival_s[m] + run.wait_s[m]
    df = pd.DataFrame({"row": np.flatnonzero(m), "start": start, "end": start + run.handle_s[m],
                       "resolved": run.resolved[m],
                       "csat": run.csat[m], "handle": run.handle_s[m], "tp": run.truth_p_resolved[m],
                       "tc": run.truth_csat[m], "th": run.truth_handle_s[m]})
    return df.sort_values("start", kind="stable").reset_index(drop=True)


def _loglik(df: pd.DataFrame, *, ability: float, speed: float, coef: np.ndarray) -> dict[str, np.ndarray]:
    """Per contact, the log-likelihood of each drawn outcome over the grid (resolution and CSAT
    over ``A_GRID``, handle time over ``S_GRID``), the truth's links with the hire's own
    ability and speed taken out."""
    o = np.log(df["tp"] / (1 - df["tp"])).to_numpy() - ability  # resolution logit of an ability-0 hire
    kc = coef[COEF_NAMES.index("csat_res")] + coef[COEF_NAMES.index("csat_ability")]
    q0 = np.clip((df["tc"].to_numpy() - 1) / 4, 1e-12, 1 - 1e-12)
    zc = np.log(q0 / (1 - q0)) - kc * ability
    sig = coef[COEF_NAMES.index("ht_sigma")]
    p = np.clip(_sig(o[:, None] + A_GRID[None]), 1e-12, 1 - 1e-12)
    y = df["resolved"].to_numpy()[:, None]
    q = np.clip(_sig(zc[:, None] + kc * A_GRID[None]), 1e-12, 1 - 1e-12)
    k = df["csat"].to_numpy()[:, None] - 1
    r = np.log(df["handle"].to_numpy() / df["th"].to_numpy()) + speed  # log handle of a speed-0 hire, - mean
    return {"resolved": y * np.log(p) + (1 - y) * np.log(1 - p), "csat": k * np.log(q) + (4 - k) * np.log(1 - q),
            "handle": -((r[:, None] - S_GRID[None] + 0.5 * sig * sig) ** 2) / (2 * sig * sig), "o": o}


def ideal_estimates(df: pd.DataFrame, *, ability: float, speed: float, coef: np.ndarray, label_delay_s: float,
                    csat_delay_s: float, view: str) -> np.ndarray:
    """The ideal estimate at the start of each of the hire's contacts (after ``n`` = 1, 2, ...
    contacts handled, the n-th just started): outcomes known by then only."""
    use = VIEWS[view]
    ll = _loglik(df, ability=ability, speed=speed, coef=coef)
    delays = {"resolved": label_delay_s, "csat": csat_delay_s, "handle": 0.0}
    lp_a = -0.5 * (A_GRID / ABILITY_SD) ** 2
    lp_s = -0.5 * ((S_GRID[None] - SPEED_SLOPE * A_GRID[:, None]) / SPEED_SD) ** 2  # (a, s)
    t = df["start"].to_numpy()
    cum = {}
    for name in use:  # cumulative log-likelihood over the events in order of when they are known
        known = df["end"].to_numpy() + delays[name]
        order = np.argsort(known, kind="stable")
        c = np.vstack([np.zeros((1, ll[name].shape[1])), np.cumsum(ll[name][order], axis=0)])
        cum[name] = c[np.searchsorted(known[order], t, side="right")]  # (n_contacts, grid)
    la = lp_a[None] + sum((cum[k] for k in ("resolved", "csat") if k in cum), np.zeros((len(t), len(A_GRID))))
    if "handle" in cum:  # marginalise the speed out: log sum_s exp(lh(s) + log prior(s | a))
        z = cum["handle"][:, None, :] + lp_s[None]
        zmax = z.max(axis=2, keepdims=True)
        la = la + (zmax[..., 0] + np.log(np.exp(z - zmax).sum(axis=2)))
    w = np.exp(la - la.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    rate = np.cumsum(_sig(ll["o"][:, None] + A_GRID[None]), axis=0) / np.arange(1, len(t) + 1)[:, None]
    return (w * rate).sum(axis=1)


def contacts_to(handled: np.ndarray, error: np.ndarray, *, tol: float = 0.03) -> float:
    """Contacts handled when ``|error|`` entered ``tol`` for good (NaN: never); the benchmark's rule."""
    bad = np.flatnonzero(np.abs(error) > tol)
    last = bad[-1] if len(bad) else -1
    return float(handled[last + 1]) if last + 1 < len(handled) else np.nan


def _recording_policy(**kw):
    """The benchmark's tracked ml-learn, also keeping the population model's predictions
    (resolution logit, CSAT mean) of each hire's served contacts by contact row: what the
    learnable-links estimator reads (recording changes nothing in the run)."""
    from benchmarks.cold_start import _Tracked

    class Rec(_Tracked):
        def start(self, run) -> None:
            super().start(run)
            self.pred: dict[int, tuple[float, float]] = {}

        def assign(self, view):
            ci, ai = super().assign(view)
            for e in self._started[len(self._started) - len(ci):]:
                if e[2] in self.margins:
                    self.pred[int(e[1])] = (e[4], e[5])
            return ci, ai

    return Rec(**kw)


def warm_links(hist: pd.DataFrame, model, world) -> dict[str, Links]:
    """The hires' prior and links (:data:`LEARNED`) fitted on the warm history alone: tenured
    agents one group, the earlier cohort another (all its outcomes, or those of its first week)."""
    from assign.world.centre import past_hires

    served = hist[hist["agent_id"].notna()].reset_index(drop=True)
    pred = model.history_predictions(hist)
    assert (pred["contact_id"].to_numpy() == served["contact_id"].astype(str).to_numpy()).all()
    agent = served["agent_id"].astype(str).to_numpy()
    past = set(world.agents["agent_id"].astype(str)[past_hires(world.agents)])
    agents = np.unique(agent)
    group = np.array([a in past for a in agents], np.int64)
    tenure = served["agent_tenure_days"].to_numpy(float)
    res = pd.to_numeric(served["resolved"], errors="coerce").to_numpy(float)
    cs = pd.to_numeric(served["csat"], errors="coerce").to_numpy(float)
    out = {}
    for name, limit in LEARNED.items():
        keep = ~np.isin(agent, list(past)) | (tenure < (np.inf if limit is None else limit))
        R, C = agent_logliks(agent[keep], resolved=res[keep], m=pred["pred_margin"].to_numpy()[keep],
                             csat=cs[keep], z=csat_logit(pred["pred_csat"].to_numpy()[keep]), agents=agents)
        mu, sigma = fit_links(R, C, group=group, n_groups=2)
        out[name] = Links(mu=mu[1], sigma=sigma, mu_tenured=mu[0])
    return out


def _links_json(links: dict[str, Links]) -> dict:
    out = {}
    for name, lk in links.items():
        b, su = lk.conditional()
        s = lk.sigma
        out[name] = {"mu_hires": lk.mu.tolist(), "mu_tenured": lk.mu_tenured.tolist(), "sigma": s.tolist(),
                     "rho": float(s[0, 1] / np.sqrt(s[0, 0] * s[1, 1])), "slope_phi_on_a": b, "sd_phi_given_a": su}
    return out


def seed_bound(seed: int, *, days: int, label_delay_h: float, csat_delay_h: float = 1.0, n_agents: int = 30,
               n_intents: int = 6, new_hires: float = 0.2, past: float = 0.2, window_s: float = 20.0,
               warm_days: int = 14) -> tuple[pd.DataFrame, dict]:
    """Per hire of ``ml-learn``'s run on the benchmark's world of ``seed``: contacts to +-0.03
    of the ideal estimator (each view) and of ml-learn, against both truths; and the run's mean
    true resolution per day (days 1, 2, ...)."""
    from assign.learn.explore import Explore
    from benchmarks.cold_start import benchmark_world, warm_history

    world = benchmark_world(seed, n_agents=n_agents, n_intents=n_intents, new_hires=new_hires, past=past,
                            warm_days=warm_days)
    hist = warm_history(world, days=warm_days, seed=seed)
    pol = _recording_policy(name="ml-learn", explore=Explore(), label_delay_s=label_delay_h * 3600, csat_proxy=True,
                            warm_history=hist, warm_shift=-pd.Timedelta(days=warm_days))
    links = warm_links(hist, pol.model, world)
    run = simulate(source=WorldSource(world), policy=pol, seed=seed, config=SimConfig(days=days, window_s=window_s))
    ab, sp = world.agents["ability"].to_numpy(), world.agents["speed"].to_numpy()
    trace = pd.DataFrame(pol.trace, columns=["agent", "handled", "estimate"])
    rows = []
    for a in pol.hires:
        df = hire_contacts(run, int(a))
        if not len(df):
            continue
        n = np.arange(1, len(df) + 1)
        truth = {"truth_run": np.full(len(df), df["tp"].mean()), "truth_sofar": np.cumsum(df["tp"].to_numpy()) / n}
        row = {"seed": seed, "agent": int(a), "contacts": len(df), "ability": float(ab[a])}
        for view in VIEWS:
            est = ideal_estimates(df, ability=float(ab[a]), speed=float(sp[a]), coef=world.coef,
                                  label_delay_s=label_delay_h * 3600, csat_delay_s=csat_delay_h * 3600, view=view)
            for tn, tv in truth.items():
                row[f"ideal[{view}]|{tn}"] = contacts_to(n, est - tv)
            k = min(149, len(est) - 1)  # the error after 150 contacts (or the last), on the same contacts
            row[f"ideal[{view}]|err150"] = float(est[k] - truth["truth_sofar"][k])
        pm = np.array([pol.pred[int(r)] for r in df["row"]])
        for name, lk in links.items():
            est = learned_estimates(df, m=pm[:, 0], z=csat_logit(pm[:, 1]), links=lk,
                                    label_delay_s=label_delay_h * 3600, csat_delay_s=csat_delay_h * 3600)
            for tn, tv in truth.items():
                row[f"{name}|{tn}"] = contacts_to(n, est - tv)
            k = min(149, len(est) - 1)
            row[f"{name}|err150"] = float(est[k] - truth["truth_sofar"][k])
        t = trace[trace["agent"] == a].sort_values("handled", kind="stable")
        h = t["handled"].to_numpy()
        for tn, tv in truth.items():
            ref = tv[np.clip(h - 1, 0, len(df) - 1)]
            row[f"ml-learn|{tn}"] = contacts_to(h, t["estimate"].to_numpy() - ref) if len(t) else np.nan
        at = np.flatnonzero(h >= min(150, len(df)))  # ml-learn's first estimate after 150 handled
        row["ml-learn|err150"] = (float(t["estimate"].to_numpy()[at[0]] - truth["truth_sofar"][h[at[0]] - 1])
                                  if len(at) else np.nan)
        rows.append(row)
    served = run.status == SERVED
    day = np.floor(run.stream.arrival_s / 86400.0).astype(int)
    res = [float(run.truth_p_resolved[served & (day == d)].mean()) for d in range(days)]
    return pd.DataFrame(rows), {"seed": seed, "ml_learn_resolution_by_day": res, "links": _links_json(links)}


def median_inf(x: pd.Series) -> float | None:
    """Median with never-reached (NaN) counted as +inf; None when fewer than half got there."""
    v = np.where(np.isfinite(x), x, np.inf)
    return float(np.median(v)) if np.isfinite(x).sum() * 2 > len(x) else None


def summarise(per_hire: pd.DataFrame) -> dict:
    cols = [c for c in per_hire.columns if "|truth_" in c]
    return {"median_contacts_to_003": {c: median_inf(per_hire[c]) for c in cols},
            "reached": {c: f"{int(np.isfinite(per_hire[c]).sum())}/{len(per_hire)}" for c in cols},
            "ideal_error_at_150_median_abs": {c.split("|")[0]: float(per_hire[c].abs().median())
                                              for c in per_hire.columns if c.endswith("|err150")},
            "error_at_150_mean_abs": {c.split("|")[0]: float(per_hire[c].abs().mean())
                                      for c in per_hire.columns if c.endswith("|err150")},
            "error_at_150_mean": {c.split("|")[0]: float(per_hire[c].mean())
                                  for c in per_hire.columns if c.endswith("|err150")}}


def plot(per_hire: pd.DataFrame, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    cols = [c for c in per_hire.columns if c.endswith("|truth_sofar")]
    for c in cols:
        v = np.sort(np.where(np.isfinite(per_hire[c]), per_hire[c], np.inf))
        ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=c.split("|")[0])
    ax.axvline(150, ls="--", c="grey")
    ax.set(xscale="log", xlabel="contacts handled until within +-0.03 for good (truth on the same contacts)",
           ylabel="share of new hires", title="New hires: ideal estimator vs ml-learn (72 h resolution delay)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", dest="json_out", required=True)
    ap.add_argument("--plot", default=None)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed0", type=int, default=100, help="tuning seeds by default (the benchmark reports 0-4)")
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--label-delay-h", type=float, default=72.0)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    got = [seed_bound(s, days=a.days, label_delay_h=a.label_delay_h)
           for s in tqdm(range(a.seed0, a.seed0 + a.seeds), desc="seeds")]
    per = pd.concat([g[0] for g in got], ignore_index=True)
    out = summarise(per)
    out["by_seed"] = [g[1] for g in got]
    out["ml_learn_resolution_days2plus"] = float(np.mean([np.mean(g[1]["ml_learn_resolution_by_day"][1:])
                                                          for g in got]))
    out["per_hire"] = json.loads(per.to_json(orient="records"))
    out["settings"] = {"seeds": a.seeds, "seed0": a.seed0, "days": a.days, "label_delay_h": a.label_delay_h,
                       "wall_s": round(time.perf_counter() - t0, 1)}
    with open(a.json_out, "w") as f:
        json.dump(out, f, indent=1)
    if a.plot:
        plot(per, a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
