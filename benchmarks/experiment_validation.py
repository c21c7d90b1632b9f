"""Validation of the experiment toolkit in simulation (issue 15): A/A false-positive rates with
their binomial intervals, power at a stated effect, interference bias, peeking.

    python -m benchmarks.experiment_validation [--quick] [--workers 2] [--days 2000] [--draws 5]
                                               [--out DIR] [--progress FILE] [--replot]

Data: the discrete-event simulator (``assign.sim``, public API: ``simulate``,
``policies.make_policy``, ``SplitPolicy``) running a small synthetic centre
(``generate_world``: 20 agents, 6 intents, offered load 0.8), one simulated day per seed.

A/A: every design runs the same policy (FCFS) in both arms, and with identical arms a split
routes every contact exactly as the single policy does (tests/test_sim_policies.py), so the
outcome data of a day do not depend on the labels: one FCFS day is simulated per seed and the
three designs' labels are hashed onto it afterwards (contacts; agents in hash-ranked halves;
30-minute switchback windows with a 5-minute burn-in after a switch). ``--draws`` independent
label draws (new salts) are taken per simulated day. Each draw is an exact A/A replicate (the
labels are independent of the data), so the rejection rate is unbiased; draws of one day share
its data, so the intervals treat the day as a cluster (Wilson interval on the effective number
of replications, n / design effect, the design effect measured from the per-day rejection
counts). For the agent design the post-hoc labels stand for the real design in which each
arm's contacts go only to its agents: under the null both have the agent clustering that
makes the test hard; the pooled routing differs.

Power: the same days and draws with a constant effect added to the treatment rows (resolution
+3 points: a treated unresolved contact becomes resolved with probability 0.03 / (1 - p);
handle time x 0.95), analysed by the method the readout would choose.

Interference: treatment ``skills`` vs control ``fcfs``; truth = global treatment minus global
control on the same seed; the contact-level estimate (shared agents) and the switchback
estimate (randomisation inference) against it.

Peeking: 14 daily looks, (a) on synthetic daily streams whose per-day volume and resolution
rate are those of the simulated days (binomial counts; >= 1,000 replications), (b) on the
simulated A/A days themselves, 14 consecutive seeds per replication.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from assign.experiment import estimators as est
from assign.experiment import smallsample as ss
from assign.experiment import switchback as sw
from assign.experiment.randomise import Switchback, arms_of, hash_uniform

ALPHA = 0.05
N_AGENTS, N_INTENTS, OCCUPANCY, WORLD_SEED = 20, 6, 0.8, 1
WINDOW_S, BURN_IN_S = 1800.0, 300.0
RI_DRAWS, BOOT_DRAWS = 200, 999  # 201 assignments: p < 0.05 has size 10/201 = 4.98% (199 would give 4.5%)
PEEK_DAYS = 14
EFFECT = {"resolved": 0.03, "handle_s": -0.05}  # absolute (rate) / relative (handle time)
SERVED, ABANDONED = 2, 3
BAND = (0.045, 0.055)
SEED0, BIAS_SEED0 = 100_000, 400_000

_WORLD = None  # built once per process


def _source():
    global _WORLD
    if _WORLD is None:
        from assign.sim.worldsource import WorldSource
        from assign.world.centre import generate_world

        _WORLD = WorldSource(generate_world(n_agents=N_AGENTS, seed=WORLD_SEED, n_intents=N_INTENTS,
                                            occupancy=OCCUPANCY))
    return _WORLD


def _run(policy, seed: int):
    from assign.sim.engine import SimConfig, simulate

    # relaxed eligibility: a 20-agent centre would otherwise leave rare language/intent pairs unservable
    cfg = SimConfig(days=1.0, drain_s=1800.0, min_proficiency=0.0, require_language=False)
    return simulate(source=_source(), policy=policy, seed=seed, config=cfg)


def _policy(name: str):
    from assign.sim.policies import make_policy

    return make_policy(name)


# ---- per-day data ----------------------------------------------------------------------------
def _metrics(r) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """metric -> (row mask into the day's contacts, values on those rows)."""
    served = r.status == SERVED
    wait_ok = np.isfinite(r.wait_s)
    return {"resolved": (served, np.asarray(r.resolved, float)[served]),
            "handle_s": (served, np.asarray(r.handle_s, float)[served]),
            "wait_s": (wait_ok, np.asarray(r.wait_s, float)[wait_ok]),
            "abandoned": (np.ones(len(r.status), bool), (r.status == ABANDONED).astype(float))}


def _with_effect(name: str, y: np.ndarray, treat: np.ndarray, rng) -> np.ndarray:
    if name == "resolved":
        p = y.mean()
        flip = treat & (y == 0) & (rng.random(y.size) < EFFECT[name] / max(1 - p, 1e-9))
        return np.where(flip, 1.0, y)
    return np.where(treat, y * (1 + EFFECT[name]), y)


def _simple(name: str, y: np.ndarray, t: np.ndarray) -> float | None:
    if name in ("resolved", "abandoned"):
        e = est.two_proportion(int(y[t].sum()), int(t.sum()), int(y[~t].sum()), int((~t).sum()), metric=name)
    else:
        e = est.welch(y[t], y[~t], metric=name)
    return e.p_value


def _X(t: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(t.size), t.astype(float)])


# ---- designs ---------------------------------------------------------------------------------
def _contact(r, data, salt, out, rng) -> dict:
    treat = arms_of(r.stream.block.ids, salt=salt) == "treatment"
    for name, (m, y) in data.items():
        t = treat[m]
        out.setdefault(f"contact|{name}|Welch t / two-proportion z", []).append(_simple(name, y, t))
        if name in EFFECT:
            out.setdefault(f"power|contact|{name}|Welch t / two-proportion z", []).append(
                _simple(name, _with_effect(name, y, t, rng), t))
    m, y = data["resolved"]
    t = treat[m]
    return {"n_t": int(t.sum()), "x_t": int(y[t].sum()), "n_c": int((~t).sum()), "x_c": int(y[~t].sum())}


def _agent_arm(salt: str) -> np.ndarray:
    ids = _source().agents.ids
    order = np.argsort([hash_uniform(salt, a) for a in ids], kind="stable")
    arm = np.zeros(len(ids), dtype=bool)
    arm[order[len(ids) // 2:]] = True
    return arm


def _agent_methods(y, t, g, seed, full: bool) -> dict[str, float | None]:
    X = _X(t)
    out = {"wild cluster bootstrap (WCR)": ss.wild_cluster_bootstrap(X, y, g, draws=BOOT_DRAWS, seed=seed).p_value}
    if not full:
        return out
    out["CR1, t on G-1 df"] = est.cluster_diff(y, t, g).p_value
    out["CR2, Bell-McCaffrey df"] = ss.cr2(X, y, g).p_value
    codes = np.unique(g, return_inverse=True)[1].ravel()
    size = np.bincount(codes)
    ym, tm = np.bincount(codes, y) / size, np.bincount(codes, t.astype(float)) > 0
    out["Welch t on agent means"] = est.welch(ym[tm], ym[~tm]).p_value
    return out


def _agent(r, data, salt, out, rng, seed, full: bool) -> None:
    arm = _agent_arm(salt)
    for name in EFFECT:
        m, y = data[name]
        g = r.agent[m]
        t = arm[g]
        for method, p in _agent_methods(y, t, g, seed, full).items():
            out.setdefault(f"agent|{name}|{method}", []).append(p)
        y1 = _with_effect(name, y, t, rng)
        out.setdefault(f"power|agent|{name}|wild cluster bootstrap (WCR)", []).append(
            ss.wild_cluster_bootstrap(_X(t), y1, g, draws=BOOT_DRAWS, seed=seed).p_value)


def _cells(y, k, post, n_win) -> sw.Cells:
    return sw.Cells(site=np.full(n_win, "all", dtype=object), window=np.arange(n_win),
                    n_all=np.bincount(k, minlength=n_win).astype(float), s_all=np.bincount(k, y, minlength=n_win),
                    n_post=np.bincount(k, post.astype(float), minlength=n_win),
                    s_post=np.bincount(k, np.where(post, y, 0.0), minlength=n_win))


def _switch_methods(y, k, post, arms, switched, seed, full: bool) -> dict[str, float | None]:
    n_win = switched.shape[1]
    c = _cells(y, k, post, n_win)
    ri = sw.ri_test(c, arms, switched, treatment="treatment", control="control", interval=False)
    if not full:
        return {"randomisation inference": ri.p_value}
    inc = post | ~switched[0][k]
    t = (arms[0][k] == "treatment")[inc]
    yy, g, X = y[inc], k[inc], _X((arms[0][k] == "treatment")[inc])
    return {"randomisation inference": ri.p_value,
            "HAC over windows": ss.hac_windows(X, yy, g).p_value,
            "CR2, Bell-McCaffrey df": ss.cr2(X, yy, g).p_value,
            "wild cluster bootstrap (WCR)": ss.wild_cluster_bootstrap(X, yy, g, draws=BOOT_DRAWS, seed=seed).p_value,
            "CR1, t on G-1 df": est.cluster_diff(yy, t, g).p_value}


def _pool(r, day: int):
    """The day's reference assignments for randomisation inference: RI_DRAWS re-draws of the
    design with salts of their own, shared by the day's label draws (each draw's real salt is
    independent of them, so each test stays exact; the sharing is in the design effect)."""
    sec = np.asarray(r.stream.arrival_s, float)
    k = np.floor(sec / WINDOW_S).astype(np.int64)
    n_win = int(k.max()) + 1
    grid = _cells(np.zeros(sec.size), k, np.ones(sec.size, bool), n_win)
    design = Switchback(salt=f"pool-{day}", window_s=WINDOW_S, burn_in_s=BURN_IN_S)
    return (grid, *sw.assignments(grid, design, sw.draw_salts(f"pool-{day}", RI_DRAWS)[1:]))


def _switchback(r, data, salt, pool, out, rng, seed, full: bool) -> None:
    grid, arms_p, switched_p = pool
    design = Switchback(salt=salt, window_s=WINDOW_S, burn_in_s=BURN_IN_S)
    a0, s0 = sw.assignments(grid, design, [salt])
    arms, switched = np.vstack([a0, arms_p]), np.vstack([s0, switched_p])
    n_win = switched.shape[1]
    sec = np.asarray(r.stream.arrival_s, float)
    k_all = np.floor(sec / WINDOW_S).astype(np.int64)
    post_all = (sec - k_all * WINDOW_S) >= BURN_IN_S
    for name, (m, y) in data.items():
        k, post = k_all[m], post_all[m]
        for method, p in _switch_methods(y, k, post, arms, switched, seed, full).items():
            out.setdefault(f"switchback|{name}|{method}", []).append(p)
        if name == "resolved" and full:
            c = _cells(y, k, post, n_win)
            out.setdefault("switchback|resolved|carryover test (RI)", []).append(
                sw.carryover_test(c, arms, treatment="treatment", control="control")[1])
        if name in EFFECT:
            y1 = _with_effect(name, y, arms[0][k] == "treatment", rng)
            out.setdefault(f"power|switchback|{name}|randomisation inference", []).append(
                sw.ri_test(_cells(y1, k, post, n_win), arms, switched, treatment="treatment",
                           control="control", interval=False).p_value)


def task_days(days: list[int], draws: int, full_draws: int) -> list[dict]:
    """A/A and power results of the given simulated days (one FCFS run each): the readout's
    methods on every draw, the other methods on the first ``full_draws`` draws."""
    rows = []
    for day in days:
        r = _run(_policy("fcfs"), seed=SEED0 + day)
        data = _metrics(r)
        out: dict = {}
        peek = None
        pool = _pool(r, day)
        for k in range(draws):
            i = day * draws + k
            rng = np.random.default_rng([day, k])
            counts = _contact(r, data, f"aa-c-{i}", out, rng)
            peek = peek or counts
            _agent(r, data, f"aa-a-{i}", out, rng, seed=i, full=k < full_draws)
            _switchback(r, data, f"aa-s-{i}", pool, out, rng, seed=i, full=k < full_draws)
        rows.append({"day": day, "p": out, "peek": peek})
    return rows


def task_bias(rep: int) -> dict:
    """Interference: skills (treatment) vs fcfs (control) on one seed, four runs."""
    from assign.sim.policies import SplitPolicy

    seed = BIAS_SEED0 + rep
    runs = {"control": _run(_policy("fcfs"), seed), "treatment": _run(_policy("skills"), seed)}
    out = {}
    for name in ("resolved", "handle_s", "wait_s", "abandoned"):
        mt, mc = _metrics(runs["treatment"])[name][1], _metrics(runs["control"])[name][1]
        out[f"truth|{name}"] = float(mt.mean() - mc.mean())
    salt = f"bias-c-{rep}"
    rc = _run(SplitPolicy(arms={"control": _policy("fcfs"), "treatment": _policy("skills")},
                          arm_of=lambda row, t: "treatment" if hash_uniform(salt, row.contact_id) >= 0.5
                          else "control"), seed)
    treat = np.asarray(rc.arm) == "treatment"
    for name, (m, y) in _metrics(rc).items():
        e = (est.two_proportion(int(y[treat[m]].sum()), int(treat[m].sum()), int(y[~treat[m]].sum()),
                                int((~treat[m]).sum())) if name in ("resolved", "abandoned")
             else est.welch(y[treat[m]], y[~treat[m]]))
        out[f"contact|{name}"] = [e.diff, e.ci_low, e.ci_high]
    design = Switchback(salt=f"bias-s-{rep}", window_s=WINDOW_S, burn_in_s=BURN_IN_S)
    rs = _run(SplitPolicy(arms={"control": _policy("fcfs"), "treatment": _policy("skills")},
                          arm_of=lambda row, t: design.arm_of_window(int(t // WINDOW_S))), seed)
    sec = np.asarray(rs.stream.arrival_s, float)
    for name, (m, y) in _metrics(rs).items():
        c = sw.cells_of(y, sec[m], design)
        arms, switched = sw.assignments(c, design, sw.draw_salts(design.salt, RI_DRAWS))
        ri = sw.ri_test(c, arms, switched, treatment="treatment", control="control")
        out[f"switchback|{name}"] = [ri.diff, ri.ci_low, ri.ci_high]
    return out


def _call(job):
    fn, arg, kw = job
    return fn, arg, globals()[fn](arg, **kw)


# ---- aggregation -----------------------------------------------------------------------------
CHOSEN = {"contact": "Welch t / two-proportion z", "agent": "wild cluster bootstrap (WCR)",
          "switchback": "randomisation inference"}


def wilson(k: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials (n may be an effective, fractional n)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(c - h, 0.0), min(c + h, 1.0)


def rate(per_day: list[list]) -> dict:
    """Rejection rate at ALPHA over days x draws, its design effect (draws of one day share data)
    and the Wilson interval on the effective number of replications."""
    r = np.array([sum(p is not None and p < ALPHA for p in ps) for ps in per_day], float)
    k = np.array([sum(p is not None for p in ps) for ps in per_day], float)
    n, rej = float(k.sum()), float(r.sum())
    degenerate = int(sum(len(ps) for ps in per_day) - n)
    f = rej / n if n else float("nan")
    deff = 1.0
    if n and 0 < f < 1 and len(r) > 1:
        var_cl = len(r) / (len(r) - 1) * float(np.sum((r - f * k) ** 2)) / n**2
        deff = max(1.0, var_cl / (f * (1 - f) / n))
    lo, hi = wilson(f * n / deff, n / deff) if n else (0.0, 1.0)
    return {"reps": int(n), "rejections": int(rej), "fpr": f, "fpr_ci": [lo, hi], "design_effect": deff,
            "degenerate": degenerate}


def _band(lo: float, hi: float) -> str:
    if BAND[0] <= lo and hi <= BAND[1]:
        return "inside"
    if hi < BAND[0] or lo > BAND[1]:
        return "outside"
    return "overlaps"


def aggregate_aa(rows: list[dict]) -> tuple[list, list]:
    keys = sorted({k for r in rows for k in r["p"]})
    aa, power = [], []
    for key in keys:
        per_day = [r["p"][key] for r in rows if key in r["p"]]
        parts = key.split("|")
        if parts[0] == "power":
            _, design, metric, method = parts
            s = rate(per_day)
            eff = EFFECT[metric]
            power.append({"design": design, "metric": metric, "method": method,
                          "effect": f"{eff:+g} absolute" if metric == "resolved" else f"{100 * eff:+g}% relative",
                          "reps": s["reps"], "power": s["fpr"], "power_ci": s["fpr_ci"]})
            continue
        design, metric, method = parts
        s = rate(per_day)
        aa.append({"design": design, "metric": metric, "method": method, **s,
                   "band": _band(*s["fpr_ci"]), "chosen_by_readout": CHOSEN.get(design) == method})
    return aa, power


def aggregate_bias(rows: list[dict]) -> dict:
    if not rows:
        return {}
    out = {"treatment": "skills", "control": "fcfs", "reps": len(rows), "metrics": {}}
    for m in ("resolved", "handle_s", "wait_s", "abandoned"):
        truth = np.array([r[f"truth|{m}"] for r in rows])
        d = {"truth": float(truth.mean()), "truth_se": float(truth.std(ddof=1) / math.sqrt(len(truth)))}
        for design in ("contact", "switchback"):
            v = np.array([[np.nan if x is None else x for x in r[f"{design}|{m}"]] for r in rows], float)
            bias = v[:, 0] - truth
            se = float(np.nanstd(bias, ddof=1) / math.sqrt(np.isfinite(bias).sum()))
            b = float(np.nanmean(bias))
            d[design] = {"estimate": float(np.nanmean(v[:, 0])), "bias": b, "bias_se": se,
                         "bias_ci": [b - 1.96 * se, b + 1.96 * se],
                         "ci_covers_truth": float(np.nanmean((v[:, 1] <= truth) & (truth <= v[:, 2])))}
        out["metrics"][m] = d
    return out


def _looks(n_t, x_t, n_c, x_c, n_planned) -> tuple[list, list]:
    fixed, seq = [], []
    for a, b, c, d in zip(np.cumsum(n_t), np.cumsum(x_t), np.cumsum(n_c), np.cumsum(x_c)):
        e = est.two_proportion(int(b), int(a), int(d), int(c), metric="resolved")
        fixed.append(e.p_value if e.p_value is not None else 1.0)
        cs = est.confidence_sequence(e, n_now=float(a + c), n_planned=n_planned)
        seq.append(cs.p_value if cs.p_value is not None else 1.0)
    return fixed, seq


def _peek_summary(fixed, seq, source: str) -> dict:
    def one(ps):
        k = int(sum(p < ALPHA for p in ps))
        return {"reps": len(ps), "rate": k / len(ps), "ci": list(wilson(k, len(ps)))}
    return {"source": source, "looks": PEEK_DAYS, "fixed_last_look": one([f[-1] for f in fixed]),
            "fixed_any_look": one([min(f) for f in fixed]), "sequential_any_look": one([min(s) for s in seq])}


def peeking(rows: list[dict], reps: int, seed: int = 7) -> dict:
    """(a) synthetic daily binomial streams with the simulated days' volumes and rate,
    (b) the simulated days, 14 consecutive seeds per replication."""
    days = [r["peek"] for r in sorted(rows, key=lambda r: r["day"]) if r.get("peek")]
    if not days:
        return {}
    tot = np.array([d["n_t"] + d["n_c"] for d in days])
    p = float(sum(d["x_t"] + d["x_c"] for d in days) / tot.sum())
    n_planned = float(tot.mean() * PEEK_DAYS)
    rng = np.random.default_rng(seed)
    fixed, seq = [], []
    for _ in range(reps):
        n = rng.choice(tot, PEEK_DAYS)
        n_t = rng.binomial(n, 0.5)
        n_c = n - n_t
        f, s = _looks(n_t, rng.binomial(n_t, p), n_c, rng.binomial(n_c, p), n_planned)
        fixed.append(f)
        seq.append(s)
    out = {"synthetic": _peek_summary(fixed, seq, f"binomial daily streams, resolution {p:.4f}, daily volume "
                                                  f"resampled from {len(tot)} simulated days (mean {tot.mean():.0f})"),
           "n_planned": n_planned}
    fixed, seq = [], []
    for i in range(len(days) // PEEK_DAYS):
        g = days[i * PEEK_DAYS:(i + 1) * PEEK_DAYS]
        f, s = _looks(*(np.array([d[k] for d in g]) for k in ("n_t", "x_t", "n_c", "x_c")), n_planned)
        fixed.append(f)
        seq.append(s)
    if fixed:
        out["simulated"] = _peek_summary(fixed, seq, "simulated FCFS days, 14 consecutive seeds per replication")
    return out


# ---- report ----------------------------------------------------------------------------------
def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    aa = res["aa"]
    fig, axes = plt.subplots(1, 3, figsize=(17, max(5.0, 0.24 * len(aa) + 1.5)),
                             gridspec_kw={"width_ratios": [2.2, 1, 1]})
    ax = axes[0]
    y = np.arange(len(aa))
    for i, a in enumerate(aa):
        c = {"inside": "tab:green", "overlaps": "tab:blue", "outside": "tab:red"}[a["band"]]
        ax.errorbar([100 * a["fpr"]], [i], xerr=[[max(0, 100 * (a["fpr"] - a["fpr_ci"][0]))],
                                                 [max(0, 100 * (a["fpr_ci"][1] - a["fpr"]))]],
                    fmt="D" if a["chosen_by_readout"] else "o", color=c, capsize=3)
    ax.axvspan(100 * BAND[0], 100 * BAND[1], color="green", alpha=0.12)
    ax.axvline(100 * ALPHA, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{a['design']} · {a['metric']} · {a['method']}" + (" ◆" if a["chosen_by_readout"] else "")
                        for a in aa], fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("A/A false-positive rate, % (95% interval; band 4.5–5.5%)")
    ax.set_title("A/A rejections at α = 0.05 (◆ = the readout's choice; red: interval wholly outside the band)",
                 fontsize=8)
    ax = axes[1]
    pk = res.get("peeking", {})
    labels, vals, errs = [], [], []
    for src in ("synthetic", "simulated"):
        if src in pk:
            for k in ("fixed_last_look", "fixed_any_look", "sequential_any_look"):
                v = pk[src][k]
                labels.append(f"{src} ({v['reps']})\n{k.replace('_', ' ')}")
                vals.append(100 * v["rate"])
                errs.append([max(0, 100 * (v["rate"] - v["ci"][0])), max(0, 100 * (v["ci"][1] - v["rate"]))])
    ax.barh(range(len(vals)), vals, xerr=np.array(errs).T if errs else None, color="tab:purple", capsize=3)
    ax.axvline(100 * ALPHA, color="black", lw=0.8)
    ax.set_yticks(range(len(vals)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(left=0)
    ax.set_title(f"peeking: {PEEK_DAYS} daily looks, P(any look rejects)", fontsize=8)
    ax = axes[2]
    pw = res.get("power", [])
    ax.barh(range(len(pw)), [100 * p["power"] for p in pw], color="tab:orange",
            xerr=np.array([[max(0, 100 * (p["power"] - p["power_ci"][0])),
                            max(0, 100 * (p["power_ci"][1] - p["power"]))]
                           for p in pw]).T if pw else None, capsize=3)
    ax.set_yticks(range(len(pw)))
    ax.set_yticklabels([f"{p['design']} · {p['metric']}\n{p['effect']}" for p in pw], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_title("power at the stated effect, 1 simulated day (readout's method)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pc(x: float) -> str:
    return f"{100 * x:.2f}%"


def markdown(res: dict) -> str:
    lines = ["| design | metric | method | reps | fpr | 95% interval | design effect | vs [4.5%, 5.5%] "
             "| readout's choice |",
             "|---|---|---|---|---|---|---|---|---|"]
    for a in res["aa"]:
        lines.append(f"| {a['design']} | {a['metric']} | {a['method']} | {a['reps']} | {_pc(a['fpr'])} | "
                     f"[{_pc(a['fpr_ci'][0])}, {_pc(a['fpr_ci'][1])}] | {a['design_effect']:.2f} | {a['band']} | "
                     f"{'yes' if a['chosen_by_readout'] else ''} |")
    lines += ["", "| power: design | metric | method | true effect | reps | power | 95% interval |",
              "|---|---|---|---|---|---|---|"]
    for p in res.get("power", []):
        lines.append(f"| {p['design']} | {p['metric']} | {p['method']} | {p['effect']} | {p['reps']} | "
                     f"{_pc(p['power'])} | [{_pc(p['power_ci'][0])}, {_pc(p['power_ci'][1])}] |")
    pk = res.get("peeking", {})
    if pk:
        lines += ["", f"| peeking ({PEEK_DAYS} daily looks) | reps | fixed, last look | fixed, any look | "
                      "confidence sequence, any look |", "|---|---|---|---|---|"]
        for src in ("synthetic", "simulated"):
            if src in pk:
                v = pk[src]
                cell = [f"{_pc(v[k]['rate'])} [{_pc(v[k]['ci'][0])}, {_pc(v[k]['ci'][1])}]"
                        for k in ("fixed_last_look", "fixed_any_look", "sequential_any_look")]
                lines.append(f"| {v['source']} | {v['fixed_last_look']['reps']} | " + " | ".join(cell) + " |")
    bias = res.get("interference", {})
    if bias:
        lines += ["", f"| interference ({bias['treatment']} vs {bias['control']}, {bias['reps']} seeds) | truth | "
                      "contact-level bias [95%] | covers | switchback (RI) bias [95%] | covers |",
                  "|---|---|---|---|---|---|"]
        for m, d in bias["metrics"].items():
            c, s = d["contact"], d["switchback"]
            lines.append(f"| {m} | {d['truth']:+.4g} ± {d['truth_se']:.2g} | {c['bias']:+.4g} [{c['bias_ci'][0]:+.3g}, "
                         f"{c['bias_ci'][1]:+.3g}] | {100 * c['ci_covers_truth']:.0f}% | {s['bias']:+.4g} "
                         f"[{s['bias_ci'][0]:+.3g}, {s['bias_ci'][1]:+.3g}] | {100 * s['ci_covers_truth']:.0f}% |")
    return "\n".join(lines)


# ---- running ---------------------------------------------------------------------------------
def _jobs(a) -> list:
    chunk = max(1, min(10, a.days // max(1, 4 * max(a.workers, 1))))
    jobs = [("task_bias", i, {}) for i in range(a.bias_from, a.bias_reps)]
    jobs += [("task_days", list(range(s, min(s + chunk, a.days))), {"draws": a.draws, "full_draws": a.full_draws})
             for s in range(0, a.days, chunk)]
    return jobs


def _execute(jobs: list, workers: int):
    """Yield (fn, arg, result) as jobs finish: in this process, or on a local Dask cluster."""
    if workers <= 0:
        for j in jobs:
            yield _call(j)
        return
    from dask.distributed import Client, LocalCluster, as_completed

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=40) as cluster, Client(cluster) as client:
        from benchmarks import (
            experiment_validation as named,  # not __main__: workers import it by name
        )

        futures = [client.submit(named._call, j, pure=False) for j in jobs]
        for f in as_completed(futures):
            yield f.result()
            f.release()


def run(a) -> None:
    from tqdm import tqdm

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "raw.jsonl"
    if not a.bias_from:
        raw.write_text("")
    jobs = _jobs(a)
    t0 = time.perf_counter()
    prog = open(a.progress, "a") if a.progress else None
    with raw.open("a") as fh, tqdm(total=len(jobs), file=sys.stderr, desc="validation", mininterval=5) as bar:
        for done, (fn, arg, res) in enumerate(_execute(jobs, a.workers), 1):
            fh.write(json.dumps({"fn": fn, "arg": arg, "res": res}) + "\n")
            fh.flush()
            bar.update(1)
            if prog:
                el = time.perf_counter() - t0
                prog.write(f"{done}/{len(jobs)} jobs, {el:.0f} s, eta {el / done * (len(jobs) - done):.0f} s\n")
                prog.flush()
    if prog:
        prog.close()
    return time.perf_counter() - t0


def summarise(out: Path, peek_reps: int, setup: dict) -> dict:
    days, bias = [], []
    for line in (out / "raw.jsonl").read_text().splitlines():
        rec = json.loads(line)
        (days.extend if rec["fn"] == "task_days" else bias.append)(rec["res"])
    aa, power = aggregate_aa(days)
    res = {"aa": aa, "interference": aggregate_bias(bias), "power": power,
           "peeking": peeking(days, peek_reps), "setup": setup}
    res["setup"]["simulated_days"] = len(days)
    (out / "results.json").write_text(json.dumps(res, indent=1, default=float))
    plot(res, out / "validation.png")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=500, help="simulated A/A days (one FCFS run each)")
    ap.add_argument("--draws", type=int, default=20, help="independent label draws per day and design")
    ap.add_argument("--full-draws", type=int, default=5,
                    help="of those, how many also run the methods the readout does not choose")
    ap.add_argument("--bias-reps", type=int, default=80)
    ap.add_argument("--bias-from", type=int, default=0, help="first interference seed (to extend a run)")
    ap.add_argument("--peek-reps", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                    help="Dask worker processes (0: serial)")
    ap.add_argument("--quick", action="store_true", help="20 days x 3 draws, 3 bias seeds, 1,000 peeking reps")
    ap.add_argument("--out", default="docs/experiments-validation")
    ap.add_argument("--progress", default=None, help="append progress lines to this file")
    ap.add_argument("--replot", action="store_true", help="aggregate OUT/raw.jsonl again (e.g. of a partial run)")
    a = ap.parse_args(argv)
    if a.quick:
        a.days, a.draws, a.full_draws, a.bias_reps, a.peek_reps = 20, 3, 2, 3, 1000
    setup = {"agents": N_AGENTS, "intents": N_INTENTS, "occupancy": OCCUPANCY, "world_seed": WORLD_SEED,
             "window_s": WINDOW_S, "burn_in_s": BURN_IN_S, "alpha": ALPHA, "ri_draws": RI_DRAWS,
             "bootstrap_draws": BOOT_DRAWS, "draws_per_day": a.draws,
             "full_draws_per_day": a.full_draws, "workers": a.workers,
             "machine": f"{platform.machine()}, {os.cpu_count()} cpus (shared)", "argv": sys.argv[1:]}
    out = Path(a.out)
    if not a.replot:
        setup["wall_s"] = run(a)
    elif (out / "results.json").exists():
        setup = {**json.loads((out / "results.json").read_text()).get("setup", {}), "replot": True}
    res = summarise(out, a.peek_reps, setup)
    print(markdown(res))
    print(f"\nresults in {out}/results.json, figure {out}/validation.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
