"""An exploring batch router for the simulator, and the decision log of its run.

:class:`ExploringRouter` is ``ml-batch`` with Thompson-style exploration: each window, the
router's own problem (candidates and values, ``Router.problem``) is solved exactly after
adding ``temperature * Gumbel(0, 1)`` to every arc value. Every pair the router could make
keeps a positive chance, and the propensity of every candidate pair is estimated by
re-solving draws (``assign.ope.propensity``). ``temperature = 0`` is the deterministic
router (propensity 1 for its choice, 0 for everything else).

It is a simulator :class:`~assign.sim.policies.Policy`: ``start(run)`` seeds its draws from
the run's seed; ``assign(view)`` reads ``view.t``, ``view.waiting``, ``view.free``,
``view.static_eligible(rows)``, ``view.stream.block.channel`` and
``view.snapshot(contact_rows, agent_rows)``. :func:`build_log` reads the
finished run through ``RunResult`` (``stream.block.ids``, ``status``, ``resolved``, ``csat``,
``handle_s``, ``truth_p_resolved``) and the source's ``agents``, ``intents``, ``languages``,
``styles``, ``start``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from assign.ope.logs import LOG_SCHEMA, OPELog, make_log
from assign.ope.propensity import arc_propensities, perturb
from assign.schema import CHANNELS
from assign.scorer import Scorer, SkillScorer
from assign.sim.policies import Policy
from assign.sim.view import RunInfo, View
from assign.solve import SOLVERS

_EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.int64))


@dataclass
class _Window:
    t_s: float
    contact_rows: np.ndarray      # global stream rows, queue order
    agent_rows: np.ndarray        # global agent rows
    capacity: np.ndarray
    load: np.ndarray
    idle_s: np.ndarray
    waited_s: np.ndarray
    arc_contact: np.ndarray       # global rows of every candidate pair
    arc_agent: np.ndarray
    arc_p: np.ndarray
    chosen: np.ndarray            # arc indices chosen
    score: np.ndarray             # per arc
    value: np.ndarray
    greedy_best: np.ndarray       # arc indices of the unperturbed optimum


@dataclass
class ExploringRouter(Policy):
    """``ml-batch`` with Gumbel-perturbed values solved exactly (see module doc)."""

    temperature: float = 0.1
    n_draws: int = 1000
    scorer: Scorer = field(default_factory=SkillScorer)
    config: Any = None
    name: str = "explore"
    windows: list[_Window] = field(default_factory=list, repr=False)

    def start(self, run: RunInfo) -> None:
        from assign.router import Router

        self._router = Router(scorer=self.scorer, config=self.config)
        self._rng = np.random.default_rng(np.random.SeedSequence([int(run.seed), 9011]))
        self.windows = []

    def assign(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        w, agents = view.routable()
        if not len(w):
            return _EMPTY
        snap = view.snapshot(w, agents)
        tp = self._router.problem(snap)
        prob = tp.problem
        if prob.n_arcs == 0:
            return _EMPTY
        best = SOLVERS["flow"](prob).arcs
        chosen = best if self.temperature <= 0 else SOLVERS["flow"](
            perturb(prob, temperature=self.temperature, rng=self._rng)).arcs
        p = arc_propensities(prob, temperature=self.temperature, n_draws=self.n_draws, rng=self._rng)
        ci = tp.c_order[tp.rows]
        ai = tp.a_order[tp.cols]
        # The draw that chose is one more draw of the same law: count it (never 0 when logged).
        hit = np.zeros(prob.n_arcs)
        hit[chosen] = 1.0
        p = (p * self.n_draws + hit) / (self.n_draws + 1) if self.temperature > 0 else p
        a = snap.agents
        self.windows.append(_Window(
            t_s=float(view.t), contact_rows=w, agent_rows=agents, capacity=a.capacity.copy(), load=a.load.copy(),
            idle_s=a.idle_s.copy(), waited_s=snap.contacts.waited_s.copy(), arc_contact=w[ci], arc_agent=agents[ai],
            arc_p=p, chosen=np.asarray(chosen, np.int64), score=tp.score.copy(), value=prob.value.copy(),
            greedy_best=np.asarray(best, np.int64)))
        return w[ci[chosen]], agents[ai[chosen]]


def build_log(*, run: Any, policy: ExploringRouter, source: Any, log_id: str, window_offset: int = 0,
              decision_prefix: str = "") -> OPELog:
    """The run's decision log (``assign.ope-log/1``) from the windows the policy recorded."""
    blk, ag = run.stream.block, source.agents
    win = [w for w in policy.windows if len(w.chosen)] or policy.windows[:0]
    wid = window_offset + np.arange(len(win))
    start = pd.Timestamp(source.start)
    start = start.tz_localize("UTC") if start.tzinfo is None else start
    at = [start + timedelta(seconds=w.t_s) for w in win]
    windows = pd.DataFrame({"window_id": wid, "t_s": [w.t_s for w in win], "at": at, "log_id": log_id})
    n_c = np.array([len(w.contact_rows) for w in win], dtype=np.int64)
    n_a = np.array([len(w.agent_rows) for w in win], dtype=np.int64)
    cr = np.concatenate([w.contact_rows for w in win]) if win else np.zeros(0, np.int64)
    ar = np.concatenate([w.agent_rows for w in win]) if win else np.zeros(0, np.int64)

    def names(vocab, codes):
        arr = np.asarray(list(vocab) + [None], dtype=object)
        return arr[np.where(codes >= 0, codes, len(vocab))]

    contacts = pd.DataFrame({
        "window_id": np.repeat(wid, n_c), "queue_pos": np.concatenate([np.arange(k) for k in n_c]) if win else [],
        "contact_id": blk.ids[cr], "channel": np.asarray(CHANNELS, object)[blk.channel[cr]],
        "intent": names(source.intents, blk.intent[cr]), "language": names(source.languages, blk.language[cr]),
        "complexity": blk.complexity[cr], "urgency": blk.urgency[cr], "sentiment": blk.sentiment[cr],
        "waited_s": np.concatenate([w.waited_s for w in win]) if win else [],
        "style": names(source.styles, blk.style[cr]), "customer_id": blk.customer_id[cr],
        "customer_tier": blk.customer_tier[cr]})
    cap = np.concatenate([w.capacity for w in win]) if win else np.zeros((0, 3), int)
    load = np.concatenate([w.load for w in win]) if win else np.zeros((0, 3), int)
    agents_w = pd.DataFrame({"window_id": np.repeat(wid, n_a), "agent_id": ag.ids[ar],
                             **{f"capacity_{c}": cap[:, k] for k, c in enumerate(CHANNELS)},
                             **{f"load_{c}": load[:, k] for k, c in enumerate(CHANNELS)},
                             "idle_s": np.concatenate([w.idle_s for w in win]) if win else []})
    n_arc = np.array([len(w.arc_p) for w in win], dtype=np.int64)
    arc_c = np.concatenate([w.arc_contact for w in win]) if win else np.zeros(0, np.int64)
    arc_a = np.concatenate([w.arc_agent for w in win]) if win else np.zeros(0, np.int64)
    arc_p = np.concatenate([w.arc_p for w in win]) if win else np.zeros(0)
    keep = arc_p > 0
    pairs = pd.DataFrame({"window_id": np.repeat(wid, n_arc)[keep], "contact_id": blk.ids[arc_c[keep]],
                          "agent_id": ag.ids[arc_a[keep]], "propensity": arc_p[keep]})
    decisions, outcomes = _decisions(run, policy, win, wid, at, decision_prefix)
    return make_log(meta=log_meta(policy=policy, source=source, window_s=run.config.window_s),
                    tables={"windows": windows, "window_contacts": contacts, "window_agents": agents_w,
                            "agents": agents_table(source), "agent_skills": skills_table(source), "pairs": pairs,
                            "decisions": decisions, "outcomes": outcomes})


def _decisions(run: Any, policy: ExploringRouter, win: list[_Window], wid: np.ndarray, at: list,
               prefix: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    blk, ids = run.stream.block, run.agent_ids
    rows = []
    for k, w in enumerate(win):
        greedy = dict(zip(w.arc_contact[w.greedy_best].tolist(), w.arc_agent[w.greedy_best].tolist()))
        for x in w.chosen:
            c, a = int(w.arc_contact[x]), int(w.arc_agent[x])
            rows.append((wid[k], at[k], c, a, w.score[x], w.value[x], greedy.get(c) != a, w.arc_p[x]))
    c = np.array([r[2] for r in rows], dtype=np.int64)
    dec_id = [f"{prefix}d{int(r[0])}-{blk.ids[r[2]]}" for r in rows]
    decisions = pd.DataFrame({
        "decision_id": dec_id, "window_id": [r[0] for r in rows], "at": [r[1] for r in rows],
        "model_version": f"{policy.name}:{getattr(policy.scorer, 'name', 'scorer')}:T{policy.temperature:g}",
        "contact_id": blk.ids[c] if len(c) else [], "agent_id": ids[[r[3] for r in rows]] if rows else [],
        "score": [float(r[4]) for r in rows], "value": [float(r[5]) for r in rows],
        "explored": [bool(r[6]) for r in rows], "propensity": [float(r[7]) for r in rows]})
    outcomes = pd.DataFrame({"decision_id": dec_id, "resolved": run.resolved[c], "csat": run.csat[c],
                             "handle_s": run.handle_s[c], "truth_p_resolved": run.truth_p_resolved[c]})
    return decisions, outcomes


def log_meta(*, policy: ExploringRouter, source: Any, window_s: float) -> dict[str, Any]:
    return {"schema": LOG_SCHEMA, "intents": list(source.intents), "languages": list(source.languages),
            "styles": list(source.styles), "start": pd.Timestamp(source.start).isoformat(), "window_s": window_s,
            "logging_policy": {"name": policy.name, "temperature": policy.temperature, "n_draws": policy.n_draws,
                               "scorer": getattr(policy.scorer, "name", "scorer")},
            "source": getattr(source, "name", "source")}


def agents_table(source: Any) -> pd.DataFrame:
    a = source.agents
    langs = [";".join(source.languages[k] for k in np.flatnonzero(row)) for row in a.speaks]
    style = np.asarray(list(source.styles) + [None], dtype=object)[np.where(a.style >= 0, a.style, len(source.styles))]
    return pd.DataFrame({"agent_id": a.ids, "languages": langs, "tenure_days": a.tenure_days,
                         "sentiment_handling": a.sentiment_handling, "style": style})


def skills_table(source: Any) -> pd.DataFrame:
    a = source.agents
    j, k = np.nonzero(a.skill)
    return pd.DataFrame({"agent_id": a.ids[j], "intent": np.asarray(source.intents, object)[k],
                         "proficiency": a.skill[j, k]})


def concat_logs(logs: list[OPELog]) -> OPELog:
    """Several logs of the same centre as one (window ids must not overlap)."""
    tables = {name: pd.concat([lg.tables[name] for lg in logs], ignore_index=True) for name in logs[0].tables
              if name not in ("agents", "agent_skills")}
    tables["agents"], tables["agent_skills"] = logs[0].tables["agents"], logs[0].tables["agent_skills"]
    return make_log(meta=logs[0].meta, tables=tables)
