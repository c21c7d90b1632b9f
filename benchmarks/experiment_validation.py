"""Validation of the experiment toolkit in simulation (issue 5, item 6).

    python -m benchmarks.experiment_validation [--quick] [--workers 2] [--out DIR]

Every figure comes from the discrete-event simulator (``assign.sim``) running a small
synthetic centre (``assign.world.centre.generate_world``: 20 agents, 6 intents, offered load
0.8, one simulated day per replication unless said otherwise). Nothing is drawn from a
stand-in model. Parts:

1. A/A false-positive rates at alpha = 0.05, >= 500 replications per design, both arms FCFS:
   contact-level (contacts hashed into arms, shared agents, one queue: ``SplitPolicy``;
   Welch / two-proportion z), agent-level (agents split in halves by hash rank, each arm's
   contacts served only by its agents; cluster-robust by agent, and unit-level Welch on agent
   means) and switchback (30-minute windows hashed into arms, 5-minute burn-in after a
   switch; cluster-robust by window). With identical arms ``SplitPolicy`` routes exactly as
   the single policy (tests/test_sim_policies.py), so the contact-level A/A is also the test
   of labels hashed after a one-policy run.
2. Interference: treatment = ``skills`` (most proficient free agent), control = ``fcfs``.
   Truth = global-treatment minus global-control run on the same seed (common random numbers);
   against it, the contact-level estimate (arms share agents) and the switchback estimate.
3. CUPED: agent-level unit analysis of handle time, covariate = the agent's mean handle time
   in an independent pre-period day; the variance of the estimate across replications with
   and without CUPED against the theory 1 - rho^2.
4. Peeking: contact-level A/A over 5 simulated days, a look after every day; the chance that
   any look rejects with the fixed-sample test and with the always-valid confidence sequence.

Results: ``DIR/results.json``, ``DIR/validation.png`` and a Markdown summary on stdout.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from assign.experiment import estimators as est
from assign.experiment.randomise import Switchback, arm_of, hash_uniform

ALPHA = 0.05
N_AGENTS, N_INTENTS, OCCUPANCY, WORLD_SEED = 20, 6, 0.8, 1
WINDOW_S, BURN_IN_S = 1800.0, 300.0
PEEK_DAYS = 5
CUPED_METRICS = ("handle_s", "resolved")
SERVED, ABANDONED = 2, 3

_WORLD = None  # built once per process (fork inherits it)


def _source():
    global _WORLD
    if _WORLD is None:
        from assign.sim.worldsource import WorldSource
        from assign.world.centre import generate_world

        _WORLD = WorldSource(generate_world(n_agents=N_AGENTS, seed=WORLD_SEED, n_intents=N_INTENTS,
                                            occupancy=OCCUPANCY))
    return _WORLD


def _config(days: float = 1.0):
    from assign.sim.engine import SimConfig

    # relaxed eligibility: a 20-agent centre would otherwise leave rare language/intent pairs unservable
    return SimConfig(days=days, drain_s=1800.0, min_proficiency=0.0, require_language=False)


def _run(policy, seed: int, days: float = 1.0):
    from assign.sim.engine import simulate

    return simulate(source=_source(), policy=policy, seed=seed, config=_config(days))


def _fcfs():
    from assign.sim.policies import FCFS

    return FCFS()


_NONE = (np.zeros(0, np.int64), np.zeros(0, np.int64))


def _labelled_split():
    """A ``SplitPolicy`` that keeps its contacts' arm labels (``labels_``) for routing."""
    from assign.sim.policies import SplitPolicy

    class Labelled(SplitPolicy):
        def arm_labels(self, run):
            self.labels_ = np.asarray(super().arm_labels(run), dtype=object)
            return self.labels_

    return Labelled


def _split(arms: dict, arm_fn):
    """Contact-level and switchback designs: ``assign.sim.policies.SplitPolicy`` (one shared
    queue, consecutive contacts of one arm routed together by that arm's policy)."""
    from assign.sim.policies import SplitPolicy

    return SplitPolicy(arms=arms, arm_of=arm_fn)


def _pooled_split(arms: dict, arm_fn, agent_arm: np.ndarray):
    """Agent-level design: arm k's contacts go only to arm k's agents (no shared agents)."""
    class PooledSplit(_labelled_split()):
        def assign(self, view):
            w = view.waiting
            out_c, out_a = [], []
            free = view.free.copy()
            for name in self.arms:
                sel = w[self.labels_[w] == name]
                if not len(sel):
                    continue
                mine = free.copy()
                mine[agent_arm != name] = 0
                if not mine.any():
                    continue
                ci, ai = self.arms[name].assign(view.narrowed(waiting=sel, free=mine))
                if len(ci):
                    np.subtract.at(free, (np.asarray(ai), view.stream.block.channel[np.asarray(ci)]), 1)
                    out_c.append(np.asarray(ci, np.int64)); out_a.append(np.asarray(ai, np.int64))
            if not out_c:
                return _NONE
            return np.concatenate(out_c), np.concatenate(out_a)

    return PooledSplit(arms=arms, arm_of=arm_fn, name="pooled-split")


def _metrics(r, mask, treat, *, groups=None):
    """Effects of the four contact metrics between treat and ~treat within mask."""
    served = mask & (r.status == SERVED)
    out = {}
    for name, m, y in (("resolved", served, r.resolved), ("handle_s", served, r.handle_s),
                       ("wait_s", mask & np.isfinite(r.wait_s), r.wait_s),
                       ("abandoned", mask, (r.status == ABANDONED).astype(float))):
        t = treat[m]
        yy = np.asarray(y[m], dtype=float)
        if groups is not None:
            e = est.cluster_diff(yy, t, groups[m], metric=name)
        elif name in ("resolved", "abandoned"):
            e = est.two_proportion(int(yy[t].sum()), int(t.sum()), int(yy[~t].sum()), int((~t).sum()), metric=name)
        else:
            e = est.welch(yy[t], yy[~t], metric=name)
        out[name] = e
    return out


def _summ(e: est.Effect) -> dict:
    return {"diff": e.diff, "p": e.p_value, "lo": e.ci_low, "hi": e.ci_high, "degenerate": e.degenerate}


# ---- tasks (run in worker processes) ---------------------------------------------------------
def task_aa_contact(rep: int) -> dict:
    salt = f"aa-contact-{rep}"
    r = _run(_split({"control": _fcfs(), "treatment": _fcfs()},
                    lambda row, t: arm_of(row.contact_id, salt=salt)), seed=10_000 + rep)
    treat = np.asarray(r.arm) == "treatment"
    return {k: _summ(e) for k, e in _metrics(r, np.ones(len(treat), bool), treat).items()}


def _agent_arms(salt: str) -> np.ndarray:
    ids = _source().agents.ids
    order = np.argsort([hash_uniform(salt, a) for a in ids], kind="stable")
    arms = np.empty(len(ids), dtype=object)
    arms[order[: len(ids) // 2]] = "control"
    arms[order[len(ids) // 2:]] = "treatment"
    return arms


def _agent_means(r, n_agents: int, values) -> np.ndarray:
    served = r.status == SERVED
    s = np.bincount(r.agent[served], values[served], minlength=n_agents)
    n = np.bincount(r.agent[served], minlength=n_agents)
    return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def task_aa_agent(rep: int) -> dict:
    salt = f"aa-agent-{rep}"
    agent_arm = _agent_arms(salt)
    r = _run(_pooled_split({"control": _fcfs(), "treatment": _fcfs()},
                           lambda row, t: arm_of(row.contact_id, salt=salt), agent_arm), seed=20_000 + rep)
    served = r.status == SERVED
    treat = np.asarray(r.arm) == "treatment"
    out = {}
    for name, y in (("resolved", r.resolved), ("handle_s", r.handle_s)):
        e = est.cluster_diff(np.asarray(y[served], float), treat[served], r.agent[served], metric=name)
        out[name] = _summ(e)
    # unit-level analysis on agent means, with and without CUPED (pre-period: an independent day)
    n_agents = len(agent_arm)
    pre = _run(_fcfs(), seed=90_000 + rep)
    for name in CUPED_METRICS:
        y = _agent_means(r, n_agents, getattr(r, name))
        x = _agent_means(pre, n_agents, getattr(pre, name))
        ok = np.isfinite(y) & np.isfinite(x)
        at = agent_arm[ok] == "treatment"
        plain = est.welch(y[ok][at], y[ok][~at], metric=f"agent_{name}")
        cup = est.cuped(y[ok], x[ok], at, metric=f"agent_{name}")
        out[f"agent_{name}"] = _summ(plain)
        out[f"agent_{name}_cuped"] = {**_summ(cup), "rho": cup.extras.get("rho"),
                                      "reduction": cup.extras.get("variance_reduction"), "agents": int(ok.sum())}
    return out


def _switchback(salt: str) -> Switchback:
    return Switchback(salt=salt, window_s=WINDOW_S, burn_in_s=BURN_IN_S)


def _switchback_effects(r, sb: Switchback) -> dict:
    lab = sb.label(r.stream.arrival_s)
    treat = lab["arm"].to_numpy() == "treatment"
    keep = ~lab["burn_in"].to_numpy()
    return _metrics(r, keep, treat, groups=lab["window"].to_numpy())


def task_aa_switchback(rep: int) -> dict:
    sb = _switchback(f"aa-sw-{rep}")
    r = _run(_split({"control": _fcfs(), "treatment": _fcfs()},
                    lambda row, t: sb.arm_of_window(int(t // WINDOW_S))), seed=30_000 + rep)
    return {k: _summ(e) for k, e in _switchback_effects(r, sb).items()}


def task_bias(rep: int) -> dict:
    from assign.sim.policies import Skills

    seed = 40_000 + rep
    out = {}
    rc, rt = _run(_fcfs(), seed), _run(Skills(), seed)
    allc, allt = np.ones(len(rc.status), bool), np.ones(len(rt.status), bool)
    for name in ("resolved", "handle_s", "wait_s", "abandoned"):
        def mean(r, m):
            if name == "abandoned":
                return float((r.status[m] == ABANDONED).mean())
            if name == "wait_s":
                return float(np.nanmean(r.wait_s[m]))
            s = m & (r.status == SERVED)
            return float(np.nanmean((r.resolved if name == "resolved" else r.handle_s)[s]))
        out[f"truth_{name}"] = mean(rt, allt) - mean(rc, allc)
    salt = f"bias-contact-{rep}"
    rs = _run(_split({"control": _fcfs(), "treatment": Skills()}, lambda row, t: arm_of(row.contact_id, salt=salt)), seed)
    treat = np.asarray(rs.arm) == "treatment"
    for k, e in _metrics(rs, np.ones(len(treat), bool), treat).items():
        out[f"contact_{k}"] = _summ(e)
    sb = _switchback(f"bias-sw-{rep}")
    rw = _run(_split({"control": _fcfs(), "treatment": Skills()},
                     lambda row, t: sb.arm_of_window(int(t // WINDOW_S))), seed)
    for k, e in _switchback_effects(rw, sb).items():
        out[f"switchback_{k}"] = _summ(e)
    return out


def task_peek(rep: int, n_planned: float) -> dict:
    salt = f"peek-{rep}"
    r = _run(_split({"control": _fcfs(), "treatment": _fcfs()}, lambda row, t: arm_of(row.contact_id, salt=salt)),
             seed=50_000 + rep, days=PEEK_DAYS)
    treat = np.asarray(r.arm) == "treatment"
    served = r.status == SERVED
    fixed, seq = [], []
    for d in range(1, PEEK_DAYS + 1):
        m = served & (r.stream.arrival_s < d * 86400.0)
        t, y = treat[m], r.resolved[m]
        e = est.two_proportion(int(y[t].sum()), int(t.sum()), int(y[~t].sum()), int((~t).sum()), metric="resolved")
        fixed.append(e.p_value)
        seq.append(est.confidence_sequence(e, n_now=int(m.sum()), n_planned=n_planned).p_value)
    return {"fixed": fixed, "seq": seq}


def _call(args):
    fn, rep, kw = args
    return fn, rep, globals()[fn](rep, **kw)


# ---- aggregation --------------------------------------------------------------------------
def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(c - h, 0.0), min(c + h, 1.0)


def _fpr(ps: list) -> dict:
    ps = [p for p in ps if p is not None]
    k = sum(p < ALPHA for p in ps)
    lo, hi = wilson(k, len(ps))
    return {"reps": len(ps), "rejections": k, "fpr": k / len(ps), "ci95": [lo, hi],
            "within_3.5_6.5": 0.035 <= k / len(ps) <= 0.065}


def aggregate(res: dict, n_planned: float) -> dict:
    out = {"aa": {}, "bias": {}, "cuped": {}, "peeking": {}}
    for design, key in (("contact-level", "task_aa_contact"), ("agent-level", "task_aa_agent"),
                        ("switchback", "task_aa_switchback")):
        rows = res.get(key, [])
        if not rows:
            continue
        out["aa"][design] = {m: _fpr([r[m]["p"] for r in rows]) for m in rows[0] if not m.endswith("_cuped")}
        out["aa"][design]["degenerate"] = sum(v["degenerate"] is not None for r in rows for v in r.values())
    rows = res.get("task_aa_agent", [])
    for name in CUPED_METRICS if rows else ():
        k = f"agent_{name}"
        plain = np.array([r[k]["diff"] for r in rows], float)
        cup = np.array([r[f"{k}_cuped"]["diff"] for r in rows], float)
        rho = np.array([r[f"{k}_cuped"]["rho"] for r in rows], float)
        red = np.array([r[f"{k}_cuped"]["reduction"] for r in rows], float)
        ratio = float(np.var(cup, ddof=1) / np.var(plain, ddof=1))
        # a bootstrap over replications for the ratio's uncertainty
        rng = np.random.default_rng(0)
        boots = [np.var(cup[i], ddof=1) / np.var(plain[i], ddof=1)
                 for i in (rng.integers(0, len(cup), len(cup)) for _ in range(2000))]
        out["cuped"][name] = {
            "reps": len(rows), "agents_per_rep": float(np.mean([r[f"{k}_cuped"]["agents"] for r in rows])),
            "mean_rho": float(rho.mean()), "theory_1_minus_rho2": float(1 - np.mean(rho**2)),
            "measured_var_ratio": ratio, "var_ratio_ci95": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))],
            "mean_in_sample_reduction": float(red.mean()),
            "fpr_plain": _fpr([r[k]["p"] for r in rows]),
            "fpr_cuped": _fpr([r[f"{k}_cuped"]["p"] for r in rows]),
        }
    rows = res.get("task_bias", [])
    if rows:
        for m in ("resolved", "handle_s", "wait_s", "abandoned"):
            truth = np.array([r[f"truth_{m}"] for r in rows])
            d = {"reps": len(rows), "truth": float(truth.mean()), "truth_se": float(truth.std(ddof=1) / math.sqrt(len(truth)))}
            for design in ("contact", "switchback"):
                est_ = np.array([r[f"{design}_{m}"]["diff"] for r in rows], float)
                lo = np.array([r[f"{design}_{m}"]["lo"] if r[f"{design}_{m}"]["lo"] is not None else np.nan for r in rows])
                hi = np.array([r[f"{design}_{m}"]["hi"] if r[f"{design}_{m}"]["hi"] is not None else np.nan for r in rows])
                bias = est_ - truth
                d[design] = {"mean_estimate": float(np.nanmean(est_)), "bias": float(np.nanmean(bias)),
                             "bias_se": float(np.nanstd(bias, ddof=1) / math.sqrt(np.isfinite(bias).sum())),
                             "ci_covers_truth": float(np.nanmean((lo <= truth) & (truth <= hi)))}
            out["bias"][m] = d
    rows = res.get("task_peek", [])
    if rows:
        fixed_any = [min(r["fixed"]) for r in rows]
        seq_any = [min(r["seq"]) for r in rows]
        out["peeking"] = {"days": PEEK_DAYS, "n_planned": n_planned,
                          "fixed_any_look": _fpr(fixed_any), "sequential_any_look": _fpr(seq_any),
                          "fixed_last_look": _fpr([r["fixed"][-1] for r in rows])}
    return out


def plot(agg: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    ax = axes[0]
    labels, vals, los, his = [], [], [], []
    for design, ms in agg["aa"].items():
        for m, v in ms.items():
            if isinstance(v, dict):
                labels.append(f"{design}\n{m}"); vals.append(v["fpr"]); los.append(v["ci95"][0]); his.append(v["ci95"][1])
    if agg.get("peeking"):
        for k in ("fixed_any_look", "sequential_any_look"):
            v = agg["peeking"][k]
            labels.append(f"peek x{agg['peeking']['days']}\n{k.split('_')[0]}"); vals.append(v["fpr"])
            los.append(v["ci95"][0]); his.append(v["ci95"][1])
    y = np.arange(len(vals))
    ax.errorbar(vals, y, xerr=[np.subtract(vals, los), np.subtract(his, vals)], fmt="o", capsize=3)
    ax.axvspan(0.035, 0.065, color="green", alpha=0.15)
    ax.axvline(ALPHA, color="black", lw=0.8)
    ax.set_yticks(y); ax.set_yticklabels(labels, fontsize=6); ax.invert_yaxis()
    ax.set_title("A/A false-positive rate (95% Wilson CI); band = [3.5%, 6.5%]", fontsize=9)
    ax = axes[1]
    if agg.get("bias"):
        # metrics whose global effect is resolved from zero (|truth| > 3 SE); the others are in the table
        ms = [m for m, b in agg["bias"].items() if abs(b["truth"]) > 3 * b["truth_se"]]
        for j, m in enumerate(ms):
            b = agg["bias"][m]
            scale = abs(b["truth"])
            for k, (design, c) in enumerate((("contact", "tab:red"), ("switchback", "tab:blue"))):
                ax.errorbar([b[design]["mean_estimate"] / scale], [j + 0.15 * (k * 2 - 1)],
                            xerr=[[1.96 * b[design]["bias_se"] / scale]], fmt="o", color=c, capsize=3,
                            label=f"{design}-level estimate" if j == 0 else None)
            ax.plot([b["truth"] / scale], [j], "k|", ms=18, mew=2, label="truth (global T − global C)" if j == 0 else None)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_yticks(range(len(ms))); ax.set_yticklabels(ms)
        ax.set_ylim(-0.6, len(ms) - 0.4)
        ax.set_xlabel("estimate / |truth|  (±1.96 SE over seeds)")
        ax.legend(fontsize=7)
        ax.set_title(f"skills vs fcfs, {next(iter(agg['bias'].values()))['reps']} seeds: interference bias", fontsize=9)
    ax = axes[2]
    if agg.get("cuped"):
        names = list(agg["cuped"])
        x = np.arange(len(names))
        th = [agg["cuped"][n]["theory_1_minus_rho2"] for n in names]
        me = [agg["cuped"][n]["measured_var_ratio"] for n in names]
        err = [[m - agg["cuped"][n]["var_ratio_ci95"][0] for n, m in zip(names, me)],
               [agg["cuped"][n]["var_ratio_ci95"][1] - m for n, m in zip(names, me)]]
        ax.bar(x - 0.2, th, 0.4, color="grey", label="theory 1 − ρ²")
        ax.bar(x + 0.2, me, 0.4, yerr=err, color="tab:green", capsize=4, label="measured Var(CUPED)/Var(plain)")
        ax.set_xticks(x); ax.set_xticklabels([f"agent {n}\nρ̄ = {agg['cuped'][n]['mean_rho']:.2f}" for n in names])
        ax.legend(fontsize=7)
        ax.set_title("CUPED, agent-level unit analysis, pre-period covariate", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _md(agg: dict) -> str:
    lines = ["| design | metric | reps | FPR | 95% CI | in [3.5%, 6.5%] |", "|---|---|---|---|---|---|"]
    for design, ms in agg["aa"].items():
        for m, v in ms.items():
            if isinstance(v, dict):
                lines.append(f"| {design} | {m} | {v['reps']} | {100 * v['fpr']:.1f}% | "
                             f"[{100 * v['ci95'][0]:.1f}%, {100 * v['ci95'][1]:.1f}%] | {'yes' if v['within_3.5_6.5'] else 'NO'} |")
    if agg.get("peeking"):
        p = agg["peeking"]
        lines += ["", "| peeking, resolved, contact-level A/A | reps | P(reject at some look) | 95% CI | target |",
                  "|---|---|---|---|---|"]
        for k, target in (("fixed_last_look", "= 5% (one look)"), ("fixed_any_look", "inflated by peeking"),
                          ("sequential_any_look", "<= 5%")):
            v = p[k]
            lines.append(f"| {k.replace('_', ' ')} ({p['days']} daily looks) | {v['reps']} | {100 * v['fpr']:.1f}% | "
                         f"[{100 * v['ci95'][0]:.1f}%, {100 * v['ci95'][1]:.1f}%] | {target} |")
    if agg.get("bias"):
        lines += ["", "| metric | truth (global T − C) | contact-level estimate | bias | switchback estimate | bias | CI covers truth (contact / switchback) |",
                  "|---|---|---|---|---|---|---|"]
        for m, b in agg["bias"].items():
            c, s = b["contact"], b["switchback"]
            lines.append(f"| {m} | {b['truth']:.4g} ± {b['truth_se']:.2g} | {c['mean_estimate']:.4g} | {c['bias']:+.4g} ± {c['bias_se']:.2g} | "
                         f"{s['mean_estimate']:.4g} | {s['bias']:+.4g} ± {s['bias_se']:.2g} | {100 * c['ci_covers_truth']:.0f}% / {100 * s['ci_covers_truth']:.0f}% |")
    if agg.get("cuped"):
        lines += ["", "| CUPED metric (agent means) | reps | agents | mean rho | theory 1 - rho^2 | measured Var ratio [95% CI] | FPR plain | FPR CUPED |",
                  "|---|---|---|---|---|---|---|---|"]
        for n, c in agg["cuped"].items():
            lines.append(f"| {n} | {c['reps']} | {c['agents_per_rep']:.1f} | {c['mean_rho']:.3f} | {c['theory_1_minus_rho2']:.3f} | "
                         f"{c['measured_var_ratio']:.3f} [{c['var_ratio_ci95'][0]:.3f}, {c['var_ratio_ci95'][1]:.3f}] | "
                         f"{100 * c['fpr_plain']['fpr']:.1f}% | {100 * c['fpr_cuped']['fpr']:.1f}% |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aa-reps", type=int, default=500)
    ap.add_argument("--bias-reps", type=int, default=80)
    ap.add_argument("--peek-reps", type=int, default=120)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--quick", action="store_true", help="20 A/A reps, 4 bias reps, 8 peeking reps (smoke run)")
    ap.add_argument("--only", default="aa_contact,aa_agent,aa_switchback,bias,peek")
    ap.add_argument("--out", default="docs/experiments-validation")
    ap.add_argument("--replot", action="store_true", help="redraw the figure and tables from OUT/results.json")
    a = ap.parse_args(argv)
    if a.replot:
        agg = json.loads((Path(a.out) / "results.json").read_text())
        for d in [*agg["aa"].values(), agg.get("peeking", {}), *agg.get("cuped", {}).values()]:
            for v in d.values():
                if isinstance(v, dict) and "rejections" in v:
                    v["ci95"] = list(wilson(v["rejections"], v["reps"]))
        plot(agg, Path(a.out) / "validation.png")
        print(_md(agg))
        return 0
    if a.quick:
        a.aa_reps, a.bias_reps, a.peek_reps = 20, 4, 8
    from tqdm import tqdm

    t0 = time.perf_counter()
    _source()
    # the planned size of the sequential test: served contacts per day in a pilot day x days
    pilot = _run(_fcfs(), seed=1)
    n_planned = float((pilot.status == SERVED).sum() * PEEK_DAYS)
    only = set(a.only.split(","))
    jobs = []
    reps = {"aa_contact": a.aa_reps, "aa_agent": a.aa_reps, "aa_switchback": a.aa_reps, "bias": a.bias_reps,
            "peek": a.peek_reps}
    for name, n in reps.items():
        if name in only:
            kw = {"n_planned": n_planned} if name == "peek" else {}
            jobs += [(f"task_{name}", i, kw) for i in range(n)]
    jobs.sort(key=lambda j: j[0] != "task_peek")  # the long ones first, for load balance
    res: dict[str, list] = {}
    by_rep: dict[str, dict] = {}
    ctx = mp.get_context("fork")
    with ctx.Pool(a.workers) as pool:
        for fn, rep, out in tqdm(pool.imap_unordered(_call, jobs), total=len(jobs), file=sys.stderr,
                                 desc="replications", mininterval=2):
            by_rep.setdefault(fn, {})[rep] = out
    for fn, d in by_rep.items():
        res[fn] = [d[i] for i in sorted(d)]
    agg = aggregate(res, n_planned)
    agg["setup"] = {"agents": N_AGENTS, "intents": N_INTENTS, "occupancy": OCCUPANCY, "world_seed": WORLD_SEED,
                    "window_s": WINDOW_S, "burn_in_s": BURN_IN_S, "alpha": ALPHA, "workers": a.workers,
                    "machine": f"{platform.machine()}, {os.cpu_count()} cpus", "wall_s": time.perf_counter() - t0,
                    "argv": sys.argv[1:]}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(agg, indent=2, default=float))
    plot(agg, out / "validation.png")
    print(_md(agg))
    print(f"\nwall {agg['setup']['wall_s']:.0f} s on {agg['setup']['machine']}, {a.workers} workers; "
          f"results in {out}/results.json, figure {out}/validation.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
