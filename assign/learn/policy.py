"""The learning router as a simulator policy: ``ml-live`` and ``ml-learn``.

Each decision first folds in the outcomes that have become known by now (resolution
``label_delay_s`` after wrap-up, CSAT ``csat_delay_s`` after wrap-up; in batches at most
every ``observe_every_s``, as a production feed would), then routes the
window with a :class:`~assign.router.Router` on the live estimates, exploring when
``explore`` is set. ``ml-live``: live estimates without the cohort prior, no exploration;
``ml-learn``: live estimates + the cohort prior + budgeted Thompson exploration;
``frozen``: the warm start's estimates, never updated (the frozen-model baseline).
``cohort_prior=False``: no cohort level in the agent effects (the issue's "live estimates, no
cold-start prior"; model scorer only). ``ramp``: the new-hire value bonus
(:mod:`assign.learn.ramp`; model scorer only), on each agent's tenure at the decision (a
synthetic world's agents age with the clock; other sources' as the tick's snapshot ages it,
by whole days). ``work_floor``: the new-hire work floor (:mod:`assign.learn.floor`; model
scorer only), a feedback control on the hires' contacts per staffed hour from the policy's own
assignments and the source's shifts (with ``WorkFloor(handle=True)``, priced per unit of the
hire's time through a handle-time proxy fitted on the warm history, :mod:`assign.learn.handle`).

With a history before the run (``warm_history``, or ``warm_days`` of a synthetic world's own
history), the score is :class:`~assign.learn.modelscorer.ModelScorer`: the population model
fitted on that history (:mod:`assign.learn.population`) plus each agent's live effect
(:mod:`assign.learn.effects`), warmed with the history's residuals; every decision keeps the
model's prediction for its pair, which its outcome events carry. Without one, the previous
design: :class:`~assign.learn.scorer.LearnScorer` (posterior mean resolution of the pair plus
the rule-based :class:`~assign.scorer.SkillScorer` score without its tenure term;
``base_skill=False``: the posterior mean alone), started from ``warm_outcomes`` (else empty).
"""
from __future__ import annotations

import heapq
import math
from dataclasses import replace

import numpy as np
import pandas as pd

from assign.constants import DAY_S
from assign.learn.effects import EffectEstimates
from assign.learn.explore import Explore
from assign.learn.floor import WorkFloor
from assign.learn.handle import HandleModel
from assign.learn.live import LiveEstimates
from assign.learn.logs import MemorySink
from assign.learn.modelscorer import ModelScorer
from assign.learn.population import PopulationModel
from assign.learn.ramp import Ramp
from assign.learn.scorer import LearnScorer
from assign.learn.warm import history_outcomes
from assign.scorer import SkillScorer
from assign.sim.policies import Policy
from assign.sim.view import RunInfo, View
from assign.sim.worldsource import WorldSource

_EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.int64))


class LearnPolicy(Policy):
    """Router with live estimates (and exploration when ``explore`` is set); see module doc.
    ``log_decisions`` keeps the decision and outcome logs (``sink``), with propensities when
    exploring (extra draws per window: slower)."""

    def __init__(self, *, name: str = "ml-learn", explore: Explore | None = None, half_life_days: float = 30.0,
                 label_delay_s: float = 72 * 3600.0, csat_delay_s: float = 3600.0, config=None,
                 budget_ms: float | None = None, log_decisions: bool = False,
                 observe_every_s: float = 300.0, base_skill: bool = True,
                 warm_outcomes: pd.DataFrame | None = None, csat_proxy: bool = True,
                 warm_history: pd.DataFrame | None = None, warm_shift: pd.Timedelta | None = None,
                 frozen: bool = False, warm_days: int = 0, cohort_prior: bool = True,
                 ramp: Ramp | None = None, work_floor: WorkFloor | None = None) -> None:
        self.cohort_prior, self.ramp, self.work_floor = bool(cohort_prior), ramp, work_floor
        self.floor = None  # the floor's controller of the current run
        self.name, self.explore, self.config, self.budget_ms = name, explore, config, budget_ms
        self.half_life_s = half_life_days * 86400.0
        self.label_delay_s, self.csat_delay_s = float(label_delay_s), float(csat_delay_s)
        self.log_decisions = log_decisions
        self.base_skill = base_skill  # score = rule-based skill score + the live posterior mean
        self.observe_every_s = float(observe_every_s)  # outcomes are folded in batches at most this often
        self.sink: MemorySink | None = None
        self.csat_proxy = csat_proxy
        self.warm_outcomes = warm_outcomes  # outcome events before the run, folded in at start
        # A history before the run: fits the population model (assign.learn.population) and warms the
        # agent effects; the policy then scores with ModelScorer instead of the rule-based score.
        self.frozen = frozen  # True: what the warm start gave, never updated (the frozen-model baseline)
        self.warm_history, self.warm_shift = warm_history, warm_shift  # shift: history time -> run time
        self.model = None
        if warm_history is not None:
            self.model = PopulationModel.fit(warm_history)
        # Without a history, on a synthetic world: ``warm_days`` of the world's own history of the
        # agents working on day 1, drawn per replication (the CLI's ml-live / ml-learn use 14).
        self.warm_days, self._drew_history = int(warm_days), False

    def _world_history(self, run: RunInfo) -> None:
        """Draw ``warm_days`` of history before the run from the world's history generator."""
        from assign.world.centre import generate_history, history_world

        seed = int(np.random.SeedSequence([run.seed, 20_000]).generate_state(1)[0])
        # the agents working on day 1, tenure as it was warm_days before the start
        self.warm_history = generate_history(history_world(run.source.world, days=self.warm_days), days=self.warm_days,
                                             seed=seed)
        self.warm_shift, self._drew_history = -pd.Timedelta(days=self.warm_days), True
        self.model = PopulationModel.fit(self.warm_history)

    def start(self, run: RunInfo) -> None:
        from assign.router import Router

        if self.warm_days > 0 and (self.warm_history is None or self._drew_history):
            if isinstance(run.source, WorldSource):
                self._world_history(run)
            else:  # no world to draw a history from: nothing from an earlier replication carries over
                self.warm_history, self.model, self._drew_history = None, None, False
        self._run_intents = run.source.intents
        self.floor = self.work_floor.controller(agent_ids=run.source.agents.ids) if self.work_floor else None
        self._shifts = _ShiftClock(run.source, run.n_agents) if self.floor is not None else None
        self.scorer, self.live = self._scorer()
        self.scorer.bind(run)
        self.sink = MemorySink() if self.log_decisions else None
        explore = self.explore
        if explore is not None:
            seed = int(np.random.SeedSequence([run.seed, explore.seed]).generate_state(1)[0])
            explore = Explore(**{**explore.__dict__, "seed": seed})
        self.router = Router(scorer=self.scorer, config=self.config, live=self.live, sink=self.sink,
                             explore=explore, model_version=self.name)
        self._run = run
        # a synthetic world's tenure at time 0 (a hire: below 0 until it joins), aged per decision for the ramp
        self._tenure0 = (run.source.world.arrays.tenure_days
                         if self.ramp is not None and isinstance(run.source, WorldSource) else None)
        self._floor_tenure0 = None if self.floor is None else (
            run.source.world.arrays.tenure_days if isinstance(run.source, WorldSource)
            else np.asarray(run.source.agents.tenure_days, float))
        self._t0 = pd.Timestamp(run.source.start)
        self._t0 = self._t0.tz_localize("UTC") if self._t0.tzinfo is None else self._t0
        # (t, contact row, agent row, decision id, population logit, population CSAT) of started contacts
        self._started: list[tuple[float, int, int, str, float, float]] = []
        # (known at, seq, contact, agent, decision id, resolved, csat, handle, logit, CSAT prediction)
        self._events: list[tuple] = []
        self._seq = 0
        self._next_observe = 0.0
        self.n_prior_only = 0

    def _scorer(self):
        """(scorer, live object): population model + agent effects with a warm history, else
        the posterior-mean scorer (+ the rule-based score without its tenure term: what tenure
        does to resolution is the cohort prior's to learn from outcomes)."""
        if self.model is not None:
            live = EffectEstimates(half_life_s=self.half_life_s)
            preds = self.model.history_predictions(self.warm_history)
            ev = history_outcomes(self.warm_history, shift=self.warm_shift)
            live.observe(ev.merge(preds, left_on="decision_id", right_on="contact_id").drop(columns="contact_id"))
            handle = (HandleModel.fit(self.warm_history, spec=self.model.spec)
                      if self.floor is not None and self.work_floor.handle else None)
            return ModelScorer(model=self.model, live=live, cohort_prior=self.cohort_prior, ramp=self.ramp,
                               floor=self.floor, handle=handle), live
        live = LiveEstimates(intents=tuple(self._run_intents), half_life_s=self.half_life_s)
        if self.warm_outcomes is not None and len(self.warm_outcomes):
            live.observe(self.warm_outcomes)
        base = SkillScorer(w_tenure=0.0) if self.base_skill else None
        return LearnScorer(live=live, base=base, csat_proxy=self.csat_proxy), live

    def assign(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        self._learn(view)
        if self.floor is not None:  # one dual-ascent step before the tick (synthetic world: tenure ages)
            aged = self._floor_tenure0 + (view.t / DAY_S if isinstance(self._run.source, WorldSource) else 0.0)
            self.floor.step(t_s=view.t, staffed=self._shifts.on_at(view.t), tenure_days=aged)
        w, agents = view.routable()
        if not len(w):
            return _EMPTY
        snap = view.snapshot(w, agents)
        if self._tenure0 is not None:  # the ramp reads each agent's tenure now
            aged = np.maximum(self._tenure0[agents] + view.t / DAY_S, 0.0)
            snap = replace(snap, agents=replace(snap.agents, tenure_days=aged))
        res = self.router.tick(snap, budget_ms=self.budget_ms)
        self.n_prior_only += res.n_prior_only
        cs, as_ = np.asarray(res.contact_index, np.int64), np.asarray(res.agent_index, np.int64)
        ci, ai = w[cs], agents[as_]
        if self.floor is not None:
            self.floor.record(ai)
        ids = [d.decision_id for d in res.decisions]
        if self.model is not None and len(cs):
            m, c = self.scorer.margins(snap, contact_idx=cs, agent_idx=as_)
        else:
            m = c = np.full(len(cs), np.nan)
        self._started += [(view.t, int(a), int(b), i, float(x), float(y))
                          for a, b, i, x, y in zip(ci.tolist(), ai.tolist(), ids, m, c)]
        return ci, ai

    def _learn(self, view: View) -> None:
        """Schedule the outcomes of contacts started before this decision; observe those known by now."""
        if self._started:
            t, c, a, ids, pm, pc = zip(*self._started)
            self._started = []
            handle, res, csat = view.outcomes_of(np.array(c))
            for k in range(len(c)):
                end = t[k] + float(handle[k])
                for delay, r, s, h in ((0.0, math.nan, math.nan, float(handle[k])),
                                       (self.label_delay_s, res[k], math.nan, math.nan),
                                       (self.csat_delay_s, math.nan, csat[k], math.nan)):
                    heapq.heappush(self._events, (end + delay, self._seq, c[k], a[k], ids[k], float(r), float(s), h,
                                                  pm[k], pc[k]))
                    self._seq += 1
        if view.t < self._next_observe or self.frozen:
            return
        self._next_observe = view.t + self.observe_every_s
        due = []
        while self._events and self._events[0][0] <= view.t:
            due.append(heapq.heappop(self._events))
        frame = self._frame(due)
        if len(frame):  # a source without resolution or CSAT (a queueing scenario) has events with none
            self.router.observe(frame)
            self.observed(view)

    def observed(self, view: View) -> None:
        """Called after each batch of outcomes is folded in (benchmarks record the estimates
        here). Default: nothing."""

    def _frame(self, events: list[tuple]) -> pd.DataFrame:
        src, blk = self._run.source, self._run.stream.block
        events = [e for e in events if not (math.isnan(e[5]) and math.isnan(e[6]) and math.isnan(e[7]))]
        frame = pd.DataFrame({
            "decision_id": [e[4] for e in events],
            "known_at": self._t0 + pd.to_timedelta([e[0] for e in events], unit="s"),
            "agent_id": [str(src.agents.ids[e[3]]) for e in events],
            "intent": [src.intents[blk.intent[e[2]]] for e in events],
            "resolved": [e[5] for e in events], "csat": [e[6] for e in events], "handle_s": [e[7] for e in events]})
        if self.model is not None:  # the model's prediction for the pair, which the agent effects need
            frame["pred_margin"], frame["pred_csat"] = [e[8] for e in events], [e[9] for e in events]
        return frame

    def close(self, run) -> MemorySink | None:
        """After the run (``RunResult``): log the outcome events still to come (known after
        the simulated horizon) so that every decision has its outcomes; returns the sink."""
        if self.sink is None:
            return None
        self.router.flush()
        for t, c, a, i, pm, pc in self._started:
            end = t + float(run.handle_s[c])
            self._events += [(end, 0, c, a, i, math.nan, math.nan, float(run.handle_s[c]), pm, pc),
                             (end + self.label_delay_s, 0, c, a, i, float(run.resolved[c]), math.nan, math.nan, pm, pc),
                             (end + self.csat_delay_s, 0, c, a, i, math.nan, float(run.csat[c]), math.nan, pm, pc)]
        self._started = []
        frame = self._frame(sorted(self._events))
        self._events = []
        if len(frame):
            self.sink.outcomes(frame)
        return self.sink


class _ShiftClock:
    """Who is on shift at a decision, from the source's shift plan (what a centre's roster
    says), replayed forward; the plan is extended a day ahead as the clock passes it."""

    def __init__(self, source, n_agents: int) -> None:
        self.source, self.on = source, np.zeros(n_agents, bool)
        self._horizon, self._t, self._plan = -1.0, -math.inf, None

    def on_at(self, t: float) -> np.ndarray:
        if t >= self._horizon:
            self._horizon = (math.floor(t / DAY_S) + 2) * DAY_S
            self._plan = self.source.shifts(horizon_s=self._horizon)
        p = self._plan
        k = np.flatnonzero((p.t_s > self._t) & (p.t_s <= t))
        for a, on in zip(p.agent[k].tolist(), p.on[k].tolist()):
            self.on[a] = on
        self._t = max(self._t, t)
        return self.on
