"""The production loop as a simulator policy: learn while routing, retrain nightly, promote by
the rule, hot-swap the champion in, monitor every day.

:class:`LoopPolicy` is ``ml-learn`` (live agent estimates, cold-start prior, budgeted
exploration; :mod:`assign.learn.policy`) whose base score is the registry's champion
(an XGBoost model, resolution only) instead of the rule-based skill score. It keeps its own
log in the history contract, as a centre logs it: every contact that arrived, those it routed
with the decision and, once known, what came of it, the others abandoned at the end of their
patience. At each ``retrain_every_s`` boundary of the simulated clock:

1. ``retrain`` (:mod:`assign.deploy.retrain`) on that log joined to the pre-period history,
   cut off at the simulated now, so only outcomes already known count (``label_delay_s``);
   with ``alarm_window_days`` set, when the monitor check just made raised a counted alarm,
   this retrain is instead one on a short, recent window (half-life
   ``alarm_half_life_days``), its audit line saying which alarm started it (``trigger``);
   the alarm retrain is opt-in (measured no better, docs/living-centre.md); the promotion rule
   is :func:`loop_rule` unless ``rule`` is set: the last 2 days of matured rows as evaluation
   rows (since loop10: with the challenger fitted up to them, it learns a change within days);
2. when the challenger is promoted, :class:`~assign.deploy.swap.HotSwap` loads it, warms it
   up, checks it on the current window as canary and swaps it in between two decisions;
3. every ``monitor_every_s``: :func:`assign.deploy.monitor.monitor` on the last
   ``monitor_window_s`` of traffic against the champion's retrain window: the rows it
   trained on and its evaluation rows (the calibration checks use the rows it did not fit).

Between retrains the champion's score carries per-intent level offsets
(:mod:`assign.deploy.levels`, ``level_half_life_h``): the decayed mean of resolved minus the
routing champion's prediction over matured outcomes, so a level shift (one intent's
resolution falling overnight) moves the score within hours, not at the next promotion. Opt-in
(``compare_as_routed``): a retrain scores the champion with those offsets, so a challenger is
promoted for routing better than the champion as it routes, and starts with zero offsets.
Pairs out of the champion's domain (a new intent, a hire) are scored by its model, not at the
tick's mean, and a retrain compares the models the same way (``ood_scored``, loop12).
Opt-in (``live_residual``, loop14): the live part is the shrunk residual of outcomes on the
base score each pair was routed on (:mod:`assign.learn.residual`), not an absolute rate.
Opt-in (``live_hybrid``, hybrid17): that residual for the agents the champion knows, the mean of
the champion's score and the absolute posterior mean for the hires it has no rows of
(:mod:`assign.learn.hybrid`).
Opt-in (``blend_previous``, loop15): the champion and the one it replaced route together, the
mean of their scores (:mod:`assign.deploy.blend`).

Every retrain decision goes to the registry's audit log (its own clock: the simulated one);
monitor results and swaps go to ``events`` and, when ``record`` (a directory) is set, to its
``seed<k>.jsonl`` (a Dask worker's way of handing them back).

:class:`FrozenModelPolicy` is the comparison: the Router with the first champion, never
retrained (``ml-batch`` frozen at week 0).
"""
from __future__ import annotations

import heapq
import itertools
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assign.constants import DAY_S
from assign.deploy.levels import LevelOffsets, OffsetScorer
from assign.errors import InputError
from assign.history import conform_history, epoch_seconds, repeat_within
from assign.learn.explore import Explore
from assign.learn.policy import LearnPolicy
from assign.schema import CHANNELS, Snapshot
from assign.sim.policies import RouterPolicy
from assign.sim.view import RunInfo, View


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """Settings of the loop (simulated seconds unless named otherwise)."""

    retrain_every_s: float = DAY_S
    monitor_every_s: float = DAY_S
    monitor_window_s: float = DAY_S
    window_days: float = 28.0
    half_life_days: float = 7.0
    label_delay_s: float = 6 * 3600.0
    csat_delay_s: float = 3600.0
    observe_every_s: float = 3600.0
    live_half_life_days: float = 30.0  # memory of the live agent estimates (assign.learn.live)
    #: A check with a counted alarm starts one retrain at once (it replaces a scheduled one
    #: due at the same moment) on a short, recent window: ``alarm_window_days``, half-life
    #: ``alarm_half_life_days``; None (the default: measured no better, docs/living-centre.md):
    #: alarms start nothing.
    alarm_window_days: float | None = None
    alarm_half_life_days: float = 1.0
    rule: Any = None          # assign.deploy.retrain.PromotionRule; None: loop_rule()
    monitor: Any = None       # assign.deploy.monitor.MonitorConfig; None: loop_monitor_config
    train_params: Any = None  # assign.model.TrainParams; None: loop_train_params
    seed: int = 0
    #: Online level recalibration (:mod:`assign.deploy.levels`): per intent, the decayed mean of
    #: (resolved - the champion's predicted resolution) over matured outcomes, half-life
    #: ``level_half_life_h`` hours of simulated time, shrunk by ``level_prior_n`` pseudo-outcomes,
    #: added to the champion's score (probability scale); folded at the live estimates' pace
    #: (``observe_every_s``) and kept across promotions. None: off (the design before loop4:
    #: on the tuning seeds the offsets raised the lowest weekly share, so they are on by default).
    level_half_life_h: float | None = 12.0
    level_prior_n: float = 20.0
    #: The scale the offsets move the champion's score on (:data:`assign.deploy.levels.SCALES`):
    #: "probability" (the default: a constant per intent) or "logit" (slope28, opt-in until
    #: measured, docs/living-centre.md: the same mean level, with the gaps between agents
    #: stretched as an intent's logit shift stretches the truth's).
    level_scale: str = "probability"
    #: Opt-in (loop10; on one tuning seed it did not remove the dip it was built for,
    #: docs/living-centre.md): a promoted champion starts with zero offsets, and residuals of
    #: the one it replaced are dropped.
    level_reset_on_swap: bool = False
    #: Opt-in (loop11, docs/living-centre.md, "The champion scored as it routes": it removed the
    #: day-13 dip it was built for but, promoting a third as often, lost week 3 on seeds 0-4): a
    #: retrain scores the champion with the level offsets it routes with
    #: (``retrain(champion_offsets=...)``), the challenger without; a promoted challenger then
    #: starts with zero offsets (as ``level_reset_on_swap``).
    compare_as_routed: bool = False
    #: loop13 (docs/living-centre.md, "loop13"): at a swap the level offsets are rebased onto the
    #: new champion (:meth:`LevelOffsets.rebase`, per intent by the old champion's mean predicted
    #: resolution minus the new one's on the retrain's evaluation rows), and so are the residuals
    #: not yet folded, so the routed level of each intent (champion + offset) is the same just
    #: after the swap as before it; False: the offsets are kept as they are (measured against
    #: the old champion) and relax onto the new one at the level half-life (the design before).
    #: Ignored when the offsets are zeroed at a swap (``level_reset_on_swap``, ``compare_as_routed``).
    level_rebase_on_swap: bool = False
    #: How the champion scores a pair out of its domain (a new intent, a hire it has no rows
    #: of): "model" (loop12, the default: it raised the lowest weekly share on the tuning seeds,
    #: docs/living-centre.md), its own prediction with the intent missing / the agent's history
    #: features missing, so proficiency and tenure still order the agents, and a retrain scores
    #: the evaluation rows the same way (``retrain(ood=...)``); "mean": the tick's in-domain mean,
    #: no preference among the agents (the design before); "hire" (loop13): as "model", with a
    #: hire read as an agent with no history (counts 0, rates missing; ``XGBScorer.ood``).
    ood_scored: str = "model"
    #: loop11: the monitor's window holds the contacts still waiting at the check too (their
    #: features are known at arrival); False: left out, so the slowest channel (email, patience
    #: of days) looked ~1.5 points short of its share at every check (the design before).
    monitor_waiting: bool = True
    #: mon11: the champion's calibration reference grows with the traffic it routed since its
    #: window ended (matured, before the monitor's window; every such row is out of sample for
    #: it), so a champion promoted on a few days of evaluation rows is not judged against a
    #: ~3-day reference for weeks. Feature and prediction checks keep the window.
    #: False: the reference is the version's window only (the design before).
    monitor_reference_grows: bool = True
    #: Alarm kinds that count as the loop's alarm. Prediction drift is reported, not counted:
    #: the predictions of served pairs move with the router (a better router serves pairs with
    #: higher predicted resolution), so it cannot tell a moved world from a changed router.
    alarm_kinds: tuple[str, ...] = ("feature", "calibration", "unknown")
    #: Opt-in (loop14, docs/living-centre.md, "loop14"): the live part learns each agent's (and
    #: agent x intent's, with the cohort above them) deviation of outcomes from the base score it
    #: was routed on (the champion + the level offsets, recorded at the decision as the outcome
    #: events' ``pred_margin``), shrunk (:mod:`assign.learn.residual`), and the score is the base
    #: plus that residual; False: the base plus the absolute posterior mean resolution of the
    #: pair (:class:`~assign.learn.scorer.LearnScorer`, the design before). Residuals folded
    #: before a swap are kept (measured against the champion that routed them).
    live_residual: bool = False
    #: Opt-in (hybrid17, docs/living-centre.md, "hybrid17"): ``live_residual``'s residual for the
    #: agents the champion has training rows of, and for those it has none of (hires until a
    #: champion trained on their rows is promoted) the mean of the champion's score and the
    #: absolute posterior mean of the pair (:mod:`assign.learn.hybrid`). Excludes ``live_residual``.
    live_hybrid: bool = False
    #: Opt-in (hybrid18, docs/living-centre.md, "hybrid18"), with ``live_residual`` or
    #: ``live_hybrid``: each hourly batch's residuals centred per intent before they are folded
    #: (:func:`assign.learn.residual.fold_residuals`), so a level shift not yet in the level
    #: offsets is not read as the deviation of the agents who took that intent's contacts.
    residual_centred: bool = False
    #: Opt-in (hybrid19, docs/living-centre.md, "hybrid19"), with ``live_hybrid``: the pairs on an
    #: intent the champion has no rows of (a new intent, until a champion trained on it is
    #: promoted) are scored as the hires' are, in the absolute form.
    hybrid_new_intents: bool = False
    #: Opt-in (hybrid23, docs/living-centre.md, "hybrid23"), with ``live_hybrid``: an agent whose
    #: tenure at the tick is under the retrain window (``window_days``) stays a hire, in the
    #: absolute form, after a champion trained on its rows is promoted: that champion holds less
    #: than a window of the agent's rows, all from its first days (:func:`hybrid_hires`).
    hybrid_hires_window: bool = False
    #: Opt-in (hybrid20, docs/living-centre.md, "hybrid20"), with ``live_residual`` or
    #: ``live_hybrid``: the residual totals' memory in days (None: ``live_half_life_days``, as the
    #: absolute part's), and whether they are emptied when a promoted champion is swapped in (it
    #: was trained on the outcomes they hold; outcomes of earlier decisions still to mature fold in).
    residual_half_life_days: float | None = None
    residual_reset_on_swap: bool = False
    #: Opt-in (rebuild26, docs/living-centre.md, "rebuild26"), with ``live_residual`` or
    #: ``live_hybrid``: when a promoted champion is swapped in, every resolution the residual
    #: totals folded is folded again, in its batch and at its time, as its outcome minus the *new*
    #: champion's prediction for the pair (its history row's features, point in time; the level
    #: offsets left out: centring per intent, ``residual_centred``, removes them), so the totals
    #: say what the champion now routing gets wrong instead of what the replaced one got wrong.
    residual_rebuild_on_swap: bool = False
    #: Opt-in (slope31, docs/living-centre.md, "slope31"), with ``live_residual`` or
    #: ``live_hybrid``: tenure bounds in days (increasing, > 0; e.g. ``(30.0,)``: the first month
    #: apart) of the bands whose residual strengths, agent and agent x intent, are fitted apart
    #: (``ResidualScorer(band_days=...)``, :mod:`assign.learn.residual`), so the champion's wider
    #: errors on agents in their first month are not shrunk with the pooled strength the
    #: well-predicted tenured agents set. None: one strength per level.
    residual_band_days: tuple[float, ...] | None = None
    #: Opt-in (slope33, docs/living-centre.md, "slope33"): the absolute live part's agent x intent
    #: estimates shrink towards the agent's rate shifted by the intent's centre rate on the logit
    #: scale (``LearnScorer(intent_parent=True)``, :mod:`assign.learn.shrink`), so an agent with
    #: no outcome on a hard intent (a hire on its first days) does not read there at its
    #: all-intents rate. False: the agent's rate on every intent alike (the design before).
    live_intent_parent: bool = False
    #: Opt-in (refit15, docs/living-centre.md, "refit15"): a promoted challenger is refitted on its
    #: whole window, evaluation rows included, and that refit is swapped in
    #: (``retrain(refit_on_promotion=True)``); False: the evaluated challenger itself (the design before).
    refit_full_window: bool = False
    #: Opt-in (loop15, docs/living-centre.md, "loop15"): after a promotion the routed base score is
    #: the mean of the new champion's and the previous champion's scores
    #: (:class:`~assign.deploy.blend.MeanScorer`), until the next promotion replaces the older of the
    #: two; the first champion routes alone. The level offsets measure the mean. False: the champion
    #: alone (the design before).
    blend_previous: bool = False
    #: Opt-in (relrate15, docs/living-centre.md, "relrate15"): the agents' outcome-history rates
    #: the retrains' models are fitted on, "absolute" (the default) or "relative" to the centre's
    #: rate on each intent (:class:`assign.features.FeatureSpec`); the benchmark's first champion too
    #: unless ``first_history_rates`` says otherwise.
    history_rates: str = "absolute"
    #: Opt-in (relrate16, docs/living-centre.md, "relrate16"): the rates the *first* champion is
    #: trained with, by whoever trains it (the loop does not: ``benchmarks.living_centre``); None: as
    #: ``history_rates``. "absolute" with ``history_rates`` "relative" keeps the first champion (and
    #: so every decision up to the first promotion) the default's, and only the retrains relative.
    #: Versions with different rates mix safely: every model scores with its own spec and state.
    first_history_rates: str | None = None

    def __post_init__(self) -> None:
        if self.live_residual and self.live_hybrid:
            raise InputError(["live_residual, live_hybrid: exclude each other (the residual for every agent, or "
                              "for the agents the champion knows)"], what="LoopConfig")
        hybrid_only = [k for k in ("hybrid_new_intents", "hybrid_hires_window") if getattr(self, k)]
        if hybrid_only and not self.live_hybrid:
            raise InputError([f"{k}: needs live_hybrid" for k in hybrid_only], what="LoopConfig")
        needs = [k for k in ("residual_centred", "residual_reset_on_swap", "residual_rebuild_on_swap")
                 if getattr(self, k)]
        needs += [k for k in ("residual_half_life_days", "residual_band_days") if getattr(self, k) is not None]
        if needs and not (self.live_residual or self.live_hybrid):
            raise InputError([f"{k}: needs live_residual or live_hybrid (the absolute live part has no residuals)"
                              for k in needs], what="LoopConfig")
        if self.residual_reset_on_swap and self.residual_rebuild_on_swap:
            raise InputError(["residual_reset_on_swap, residual_rebuild_on_swap: exclude each other (empty the "
                              "residual totals at a swap, or fold them again against the new champion)"],
                             what="LoopConfig")
        h = self.residual_half_life_days
        if h is not None and not (isinstance(h, (int, float)) and h > 0):
            raise InputError([f"residual_half_life_days: must be > 0 days, got {h!r}"], what="LoopConfig")
        b = self.residual_band_days
        if b is not None and not (len(b) and all(isinstance(d, (int, float)) and d > 0 for d in b)
                                  and all(x < y for x, y in itertools.pairwise(b))):
            raise InputError([f"residual_band_days: must be increasing tenure bounds > 0 days, got {b!r}"],
                             what="LoopConfig")

    def first_rates(self) -> str:
        """The first champion's outcome-history rates (``first_history_rates``, else ``history_rates``)."""
        return self.history_rates if self.first_history_rates is None else self.first_history_rates


def hybrid_hires(snapshot: Snapshot, *, unknown: Callable[[Snapshot], np.ndarray], window_days: float) -> np.ndarray:
    """Per snapshot agent, scored as a hire by ``HybridScorer`` (``LoopConfig.hybrid_hires_window``):
    one the champion has no rows of (``unknown``), or one whose tenure at the tick is under the
    retrain window, of whom every champion holds only its first days."""
    return np.asarray(unknown(snapshot), bool) | (np.asarray(snapshot.agents.tenure_days, float) < window_days)


#: Pair and agent features: their distribution follows who the router picks, so traffic routed
#: by the loop differs from the champion's training rows (routed by another policy) without
#: the world having moved. The loop's monitor leaves them out; contact features, calibration
#: and unknown categories are what the world's drift moves.
ROUTED_FEATURES = ("agent_log_tenure", "agent_handling", "agent_load", "proficiency", "lang_match", "style_match",
                   "prof_x_complexity", "neg_x_handling")


def loop_monitor_config(*, label_delay_s: float):
    """The monitor's defaults, minus :data:`ROUTED_FEATURES`, with the loop's label delay."""
    from assign.deploy.monitor import DEFAULT_EXCLUDE, MonitorConfig

    return MonitorConfig(label_delay_s=label_delay_s, exclude=(*DEFAULT_EXCLUDE, *ROUTED_FEATURES))


def loop_train_params(*, seed: int = 0):
    """Small, fast XGBoost settings for nightly retrains in simulation (one thread, depth 4,
    at most 150 rounds at eta 0.15 with early stopping after 10 on the newest 5% of the fitted
    rows: ~1.3 days of a 28-day window, about as many rows as the 2-day evaluation window)."""
    from assign.model.train import TrainParams

    return TrainParams(nthread=1, max_rounds=150, max_depth=4, early_stopping=10, learning_rate=0.15, seed=seed,
                       valid_fraction=0.05)


def loop_rule():
    """The loop's promotion rule: :class:`~assign.deploy.retrain.PromotionRule`'s defaults with
    the last 2 days of matured rows as evaluation rows (~4,000 rows at the realistic sizing:
    a paired s.e. of the log-loss gain ~0.0013, so the 0.002 margin still decides)."""
    from assign.deploy.retrain import PromotionRule

    return PromotionRule(eval_days=2.0)


def resolution_weights():
    """Value weights scoring resolution alone (what the living-centre benchmark measures)."""
    from assign.model.scorer import ValueWeights

    return ValueWeights(w_resolved=1.0, w_csat=0.0, cost_per_handle_min=0.0, w_repeat=0.0)


class LoopPolicy(LearnPolicy):
    """ml-learn + nightly retrain with promotion + hot swap + daily monitoring (module doc).
    ``registry`` is a registry directory holding the first champion; the run works on a copy
    at ``workdir`` (each replication its own). ``pre_history`` is the history the first
    champion was trained on (the loop's log is appended to it)."""

    def __init__(self, *, registry: str | Path, workdir: str | Path, pre_history: pd.DataFrame,
                 config: LoopConfig | None = None, name: str = "loop", explore: Explore | None = None,
                 record: str | Path | None = None) -> None:
        cfg = config or LoopConfig()
        super().__init__(name=name, explore=explore if explore is not None else Explore(),
                         label_delay_s=cfg.label_delay_s, csat_delay_s=cfg.csat_delay_s,
                         observe_every_s=cfg.observe_every_s, half_life_days=cfg.live_half_life_days)
        self.cfg, self.registry_src, self.workdir = cfg, Path(registry), Path(workdir)
        self.pre_history = conform_history(pre_history)
        self.record = None if record is None else Path(record)

    # ------------------------------------------------------------------ set-up
    def start(self, run: RunInfo) -> None:
        from assign.deploy.registry import open_registry
        from assign.deploy.swap import HotSwap

        super().start(run)
        self._tenure0_log = run.source.tenure_at_start()
        work = self.workdir / f"seed{run.seed}"
        if work.exists():
            shutil.rmtree(work, onerror=_writable)
        shutil.copytree(self.registry_src, work / "registry")
        self.reg = open_registry(work / "registry")
        self.swapper = HotSwap(self.router, registry=self.reg, loader=self._load, wrap=self._wrap)
        self.events: list[dict[str, Any]] = []
        self._log: list[tuple[float, int, int, float]] = []  # (start t, contact row, agent row, load before)
        self._residual_batches: list[tuple[pd.DataFrame, np.ndarray]] = []  # (folded frame, its contact ids)
        self._next_retrain = self.cfg.retrain_every_s
        self._next_monitor = self.cfg.monitor_every_s
        self._reference = self._rows_of(self.pre_history, self.reg.resolve("champion"))
        self._reference_end = self._at(0.0)
        if self.record is not None:
            self.record.mkdir(parents=True, exist_ok=True)
            self._record_file = self.record / f"seed{run.seed}.jsonl"
            self._record_file.write_text("")
        self._routed_xgb = self._loaded_xgb = None  # blend_previous: the champion routing now, the one loaded last
        self.levels = None if self.cfg.level_half_life_h is None else LevelOffsets(
            intents=tuple(run.source.intents), half_life_s=self.cfg.level_half_life_h * 3600.0,
            prior_n=self.cfg.level_prior_n, scale=self.cfg.level_scale)
        self._level_started: list[tuple[float, np.ndarray, np.ndarray]] = []  # (t, contact rows, predictions)
        # heap: (known at, seq, intent, residual, the champion's prediction)
        self._level_due: list[tuple[float, int, int, float, float]] = []
        self._level_seq, self._next_level = 0, 0.0
        self.level_folds: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []  # (at, known, intent, resid)
        res = self.swapper.load("champion", canary=_tiny_canary(run))
        self._event("swap", 0.0, **res.to_dict())
        if res.ok:
            self._routed_xgb = self._loaded_xgb

    def _load(self, path: Path):
        from assign.model.scorer import XGBScorer

        return XGBScorer.load(path, weights=resolution_weights(), nthread=1, ood=self.cfg.ood_scored)

    def _wrap(self, xgb):
        """The learning scorer over the live estimates with ``xgb`` as its base score."""
        from assign.learn.residual import ResidualScorer
        from assign.learn.scorer import LearnScorer

        self._loaded_xgb = xgb
        champ = xgb
        if self.cfg.blend_previous and self._routed_xgb is not None and self._routed_xgb is not xgb:
            from assign.deploy.blend import MeanScorer

            champ = MeanScorer(members=(xgb, self._routed_xgb))
        base = champ if self.levels is None else OffsetScorer(base=champ, levels=self.levels)
        if self.cfg.live_hybrid:
            from assign.learn.hybrid import HybridScorer

            hires = (partial(hybrid_hires, unknown=xgb.unknown_agents, window_days=self.cfg.window_days)
                     if self.cfg.hybrid_hires_window else xgb.unknown_agents)
            s = HybridScorer(live=self.live, base=base, hires=hires,
                             new_intents=xgb.unknown_intents if self.cfg.hybrid_new_intents else None,
                             residual_band_days=self.cfg.residual_band_days,
                             absolute_intent_parent=self.cfg.live_intent_parent)
        elif self.cfg.live_residual:
            s = ResidualScorer(live=self.live, base=base, band_days=self.cfg.residual_band_days)
        else:
            s = LearnScorer(live=self.live, base=base, intent_parent=self.cfg.live_intent_parent)
        s.bind(self._run)
        return s

    @property
    def _records_base(self) -> bool:
        """The live part learns residuals on the base score, which the decisions must record."""
        return self.cfg.live_residual or self.cfg.live_hybrid

    def _scorer(self):
        """With ``live_residual`` the residual live object, with ``live_hybrid`` both (their
        scorer is replaced by the champion's at once); else :class:`LearnPolicy`'s."""
        if not self._records_base:
            return super()._scorer()
        from assign.learn.residual import ResidualEstimates, ResidualScorer

        h = self.cfg.residual_half_life_days
        residual = ResidualEstimates(intents=tuple(self._run_intents), centred=self.cfg.residual_centred,
                                     half_life_s=self.half_life_s if h is None else h * DAY_S)
        bands = self.cfg.residual_band_days
        if not self.cfg.live_hybrid:
            return ResidualScorer(live=residual, band_days=bands), residual
        from assign.learn.hybrid import HybridScorer, PairedEstimates
        from assign.learn.live import LiveEstimates

        live = PairedEstimates(absolute=LiveEstimates(intents=tuple(self._run_intents), half_life_s=self.half_life_s),
                               residual=residual)
        return HybridScorer(live=live, residual_band_days=bands,
                            absolute_intent_parent=self.cfg.live_intent_parent), live

    def _record_base(self, view: View, ci: np.ndarray, ai: np.ndarray) -> None:
        """``live_residual``: the base score each pair just routed was scored on (the champion +
        the level offsets), as a logit, in the decision records :class:`LearnPolicy` carries to the
        outcome events' ``pred_margin`` (``_started`` holds exactly this decision's pairs here)."""
        from assign.learn.logit import margin_of

        uniq = np.unique(ai)
        base = self.router.scorer.base
        p = np.asarray(base.score_pairs(view.snapshot(ci, uniq), contact_idx=np.arange(len(ci)),
                                        agent_idx=np.searchsorted(uniq, ai)), float)
        m = margin_of(p)
        self._started = [(*e[:4], float(x), e[5]) for e, x in zip(self._started, m)]

    def _frame(self, events: list[tuple]) -> pd.DataFrame:
        """:class:`LearnPolicy`'s outcome events, with ``pred_margin`` under ``live_residual`` / ``live_hybrid``."""
        if not self._records_base:
            return super()._frame(events)
        events = [e for e in events if not (np.isnan(e[5]) and np.isnan(e[6]) and np.isnan(e[7]))]
        frame = super()._frame(events)
        frame["pred_margin"] = np.array([e[8] for e in events], float)
        if self.cfg.residual_rebuild_on_swap and len(frame):
            ids = self._run.stream.block.ids[np.array([e[2] for e in events], np.int64)]
            self._residual_batches.append((frame, np.asarray(ids)))
        return frame

    @property
    def _residual_live(self):
        """The residual totals (the whole live part under ``live_residual``, its residual half under
        ``live_hybrid``)."""
        return self.live.residual if self.cfg.live_hybrid else self.live

    def _rebuild_residuals(self, hist: pd.DataFrame) -> None:
        """``residual_rebuild_on_swap``: the residual totals folded again, batch by batch, with
        each resolution's margin under the champion just loaded (its row of ``hist``, the loop's
        history up to now, scored point in time); the batches keep the new margins, so a later
        rebuild starts from them and a test can fold them again."""
        from assign.learn.logit import margin_of
        from assign.model.scorer import predict_history

        if not self._residual_batches:
            return
        pred = predict_history(self._loaded_xgb.model, hist).drop_duplicates("contact_id", keep="last")
        p_of = pd.Series(pred["p_resolved"].to_numpy(float), index=pred["contact_id"].to_numpy())
        live = self._residual_live
        live.reset()
        batches = []
        for frame, ids in self._residual_batches:
            frame = frame.assign(pred_margin=margin_of(p_of.reindex(ids).to_numpy(float)))
            live.observe(frame)
            batches.append((frame, ids))
        self._residual_batches = batches

    # ------------------------------------------------------------------ each decision
    def assign(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        due_m, due_r = view.t >= self._next_monitor, view.t >= self._next_retrain
        if due_m or due_r:
            self._outcomes(view)
        alarms: list[str] = []
        if due_m:
            self._next_monitor = (np.floor(view.t / self.cfg.monitor_every_s) + 1) * self.cfg.monitor_every_s
            alarms = self._check(view.t)
            if self.levels is not None:
                self._event("levels", view.t, offsets=dict(zip(self.levels.intents, self.levels.values.tolist())),
                            weight=dict(zip(self.levels.intents, self.levels.weight.tolist())))
        if due_r:
            self._next_retrain = (np.floor(view.t / self.cfg.retrain_every_s) + 1) * self.cfg.retrain_every_s
        if alarms and self.cfg.alarm_window_days is not None:
            self._retrain(view, alarms=alarms)
        elif due_r:
            self._retrain(view)
        if self.levels is not None:
            self._fold_levels(view)
        ci, ai = super().assign(view)
        if self._records_base and len(ci):
            self._record_base(view, ci, ai)
        if self.levels is not None and len(ci):
            self._level_started.append((view.t, ci, self._champion_predictions(view, ci, ai)))
        if len(ci):
            uniq = np.unique(ai)
            held = view.snapshot(ci[:0], uniq).agents.load.sum(axis=1)[np.searchsorted(uniq, ai)]
            before = held + _earlier_same(ai)
            self._log += [(view.t, c, a, float(b)) for c, a, b in zip(ci.tolist(), ai.tolist(), before.tolist())]
        return ci, ai

    def _champion_predictions(self, view: View, ci: np.ndarray, ai: np.ndarray) -> np.ndarray:
        """The routing champion's score (predicted resolution, as the tick scored it; with
        ``blend_previous``, the mean of the two champions) of the pairs just routed."""
        uniq = np.unique(ai)
        xgb = self.router.scorer.base.base  # LearnScorer -> OffsetScorer -> the champion
        return np.asarray(xgb.score_pairs(view.snapshot(ci, uniq), contact_idx=np.arange(len(ci)),
                                          agent_idx=np.searchsorted(uniq, ai)), float)

    def _fold_levels(self, view: View) -> None:
        """Schedule the resolutions of pairs started before this decision (known
        ``label_delay_s`` after wrap-up); every ``observe_every_s``, fold those known by now."""
        if self._level_started:
            t = np.concatenate([np.full(len(c), s) for s, c, _ in self._level_started])
            c = np.concatenate([c for _, c, _ in self._level_started])
            p = np.concatenate([p for _, _, p in self._level_started])
            self._level_started = []
            handle, res, _ = view.outcomes_of(c)
            known = t + handle + self.cfg.label_delay_s
            intent = self._run.stream.block.intent[c]
            for k in np.flatnonzero(np.isfinite(res)):
                item = (float(known[k]), self._level_seq, int(intent[k]), float(res[k] - p[k]), float(p[k]))
                heapq.heappush(self._level_due, item)
                self._level_seq += 1
        if view.t < self._next_level:
            return
        self._next_level = view.t + self.cfg.observe_every_s
        due = []
        while self._level_due and self._level_due[0][0] <= view.t:
            due.append(heapq.heappop(self._level_due))
        known_s, _, intent, residual, predicted = (np.array(x) for x in zip(*due)) if due else ([],) * 5
        self.levels.observe(at_s=view.t, known_s=np.asarray(known_s, float), intent=np.asarray(intent, np.int64),
                            residual=np.asarray(residual, float), predicted=np.asarray(predicted, float))
        self.level_folds.append((view.t, np.asarray(known_s, float), np.asarray(intent, np.int64),
                                 np.asarray(residual, float)))

    def _retrain(self, view: View, *, alarms: list[str] | None = None) -> None:
        """One retrain at the simulated now: the scheduled one, or (``alarms``: the counted
        alarms of the check just made) the short-window one an alarm starts."""
        from assign.deploy.retrain import retrain

        cfg = self.cfg
        now = self._at(view.t)
        hist = pd.concat([self.pre_history, self._own_history(upto=view.t)], ignore_index=True)
        if alarms:
            window, half_life, trigger = cfg.alarm_window_days, cfg.alarm_half_life_days, "alarm: " + ", ".join(alarms)
        else:
            window, half_life, trigger = cfg.window_days, cfg.half_life_days, "schedule"
        offsets = None
        if cfg.compare_as_routed and self.levels is not None:
            offsets = dict(zip(self.levels.intents, self.levels.values.tolist()))
        d = retrain(hist, registry=self.reg, cutoff=now, window_days=window, half_life_days=half_life,
                    rule=cfg.rule or loop_rule(), seed=cfg.seed, params=self._params(), trigger=trigger,
                    resolution_delay_h=cfg.label_delay_s / 3600.0, csat_delay_h=cfg.csat_delay_s / 3600.0, at=now,
                    champion_offsets=offsets, ood=cfg.ood_scored, refit_on_promotion=cfg.refit_full_window,
                    history_rates=cfg.history_rates)
        self._event("retrain", view.t, **d.to_dict())
        if d.promoted:
            w, agents = view.routable()
            canary = view.snapshot(w, agents) if len(w) else _tiny_canary(self._run)
            res = self.swapper.load(d.deployed or d.version, canary=canary)
            self._event("swap", view.t, **res.to_dict())
            if res.ok:
                self._routed_xgb = self._loaded_xgb
                self._reference = self._rows_of(hist, d.version, decision=d)
                self._reference_end = pd.Timestamp(d.cutoff)
                if (self.cfg.level_reset_on_swap or self.cfg.compare_as_routed) and self.levels is not None:
                    self.levels.reset()
                    self._level_started, self._level_due = [], []
                elif self.cfg.level_rebase_on_swap and self.levels is not None:
                    self._rebase_levels(d, t=view.t)
                if self.cfg.residual_reset_on_swap:
                    self._residual_live.reset()
                elif self.cfg.residual_rebuild_on_swap:
                    self._rebuild_residuals(hist)

    def _rebase_levels(self, d: Any, *, t: float) -> None:
        """Rebase the level offsets, and the residuals measured against the old champion and not
        yet folded, onto the champion just swapped in (``level_rebase_on_swap``): per intent, the
        shift is the old champion's mean predicted resolution minus the new one's on the decision's
        evaluation rows of that intent (0 for an intent with none)."""
        old, new = d.levels.get("champion", {}), d.levels.get("challenger", {})
        shift = np.array([old[k] - new[k] if k in old and k in new else 0.0 for k in self.levels.intents])
        self.levels.rebase(shift)
        self._level_started = [(t, c, p - shift[self._run.stream.block.intent[c]]) for t, c, p in self._level_started]
        due = [(k, q, i, r + shift[i], p - shift[i]) for k, q, i, r, p in self._level_due]
        heapq.heapify(due)
        self._level_due = due
        self._event("rebase", t, shift=dict(zip(self.levels.intents, shift.tolist())),
                    offsets=dict(zip(self.levels.intents, self.levels.values.tolist())))

    def _check(self, t: float) -> list[str]:
        """Monitor the last window of traffic against the champion's reference rows
        (:meth:`_rows_of`); returns the names of the counted alarms (``alarm_kinds``)."""
        from assign.deploy.monitor import monitor
        from assign.deploy.retrain import mature_only

        now = self._at(t)
        hist = self._own_history(upto=t, waiting=self.cfg.monitor_waiting)
        recent = hist[hist["arrival_at"] >= now - pd.Timedelta(seconds=self.cfg.monitor_window_s)]
        if not len(recent) or not len(self._reference):
            return []
        recent = mature_only(recent, cutoff=now, resolution_delay_h=self.cfg.label_delay_s / 3600.0,
                             csat_delay_h=self.cfg.csat_delay_s / 3600.0)
        mc = self.cfg.monitor or loop_monitor_config(label_delay_s=self.cfg.label_delay_s)
        champion = self.reg.resolve("champion")
        reference, routed_from = self._reference, None
        if self.cfg.monitor_reference_grows:
            routed_from = self._reference_end
            routed = self._routed_since(routed_from, upto=t - self.cfg.monitor_window_s, now=now)
            reference = pd.concat([reference, routed], ignore_index=True) if len(routed) else reference
        rep = monitor(recent, reference=reference, model_dir=self.reg.path(champion), config=mc, now=now,
                      context=pd.concat([reference, hist], ignore_index=True).drop_duplicates("contact_id"),
                      routed_from=routed_from)
        counted = [a for a in rep.alarms if a.get("kind") in self.cfg.alarm_kinds]
        self._event("monitor", t, alarm=bool(counted), any_alarm=rep.alarm, champion=champion,
                    alarms=[{k: a.get(k) for k in ("kind", "name", "statistic", "p_value")} for a in rep.alarms],
                    rows_recent=rep.meta.get("rows_recent"), matured_recent=rep.meta.get("matured_recent"))
        return [str(a.get("name")) for a in counted]

    def _routed_since(self, start: pd.Timestamp, *, upto: float, now: pd.Timestamp) -> pd.DataFrame:
        """The contacts the loop served that arrived from ``start`` to ``upto`` (run seconds)
        and whose every outcome is known at ``now`` (ended at least the longest label delay
        before it): the champion's out-of-sample traffic since its window."""
        own = self._own_history(upto=upto)
        if not len(own):
            return own
        from assign.deploy.retrain import ended_at_s

        delay = max(self.cfg.label_delay_s, self.cfg.csat_delay_s)
        keep = (own["arrival_at"] >= start).to_numpy() & own["agent_id"].notna().to_numpy() \
            & (ended_at_s(own) + delay <= epoch_seconds(pd.Series([now])).item())
        return own[keep].reset_index(drop=True)

    # ------------------------------------------------------------------ the loop's own log
    def _own_history(self, *, upto: float, waiting: bool = False) -> pd.DataFrame:
        """Every contact that arrived before ``upto`` and is no longer waiting, as a contact
        centre logs it: those the loop routed with their agent and outcomes (as they will be;
        ``retrain`` and ``monitor`` blank those not known at their cut-off), the others
        abandoned at the end of their patience. Contacts still waiting are left out unless
        ``waiting`` (the monitor's window: a centre knows a contact's features from its arrival;
        without them the slow channel's share of recent traffic looks low, loop11): then they
        are rows with no agent, not abandoned, ``wait_s`` the wait so far."""
        st = self._run.stream
        rows = [r for r in self._log if r[0] < upto]
        routed = np.zeros(len(st), bool)
        routed[[r[1] for r in rows]] = True
        gone = np.flatnonzero(~routed & (st.arrival_s + st.patience_s <= upto))
        held = np.flatnonzero(~routed & (st.arrival_s < upto) & (st.arrival_s + st.patience_s > upto)) if waiting \
            else np.zeros(0, np.int64)
        if not rows and not len(gone) and not len(held):
            return self.pre_history.iloc[:0]
        parts = [self._rows_frame(rows)] if rows else []
        if len(gone):
            parts.append(self._abandoned_frame(gone))
        if len(held):
            parts.append(pd.DataFrame({**self._contact_columns(held), "wait_s": upto - st.arrival_s[held],
                                       "abandoned": False}))
        df = pd.concat(parts, ignore_index=True).sort_values(["arrival_at", "contact_id"], kind="stable")
        arr = (df["arrival_at"] - df["arrival_at"].iloc[0]).dt.total_seconds().to_numpy()
        df["repeat_72h"] = repeat_within(df["customer_id"].to_numpy(object), arr)
        return conform_history(df.reset_index(drop=True))

    def _outcomes(self, view: View) -> None:
        """Fetch handle time, resolution and CSAT of logged contacts that do not have them yet."""
        todo = [k for k, r in enumerate(self._log) if len(r) == 4]
        if not todo:
            return
        rows = np.array([self._log[k][1] for k in todo], np.int64)
        handle, res, csat = view.outcomes_of(rows)
        for j, k in enumerate(todo):
            self._log[k] = (*self._log[k], float(handle[j]), float(res[j]), float(csat[j]))

    def _contact_columns(self, c: np.ndarray) -> dict[str, Any]:
        """The contact part of history rows for stream rows ``c``."""
        src, st = self._run.source, self._run.stream
        b = st.block
        t0 = pd.Timestamp(src.start)
        t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0
        return {"contact_id": b.ids[c], "arrival_at": t0 + pd.to_timedelta(st.arrival_s[c], unit="s"),
                "channel": np.asarray(CHANNELS, dtype=object)[b.channel[c]],
                "intent": np.asarray(src.intents, dtype=object)[b.intent[c]],
                "language": np.asarray(src.languages, dtype=object)[b.language[c]],
                "complexity": b.complexity[c], "urgency": b.urgency[c], "sentiment": b.sentiment[c],
                "style": [src.styles[k] if k >= 0 else None for k in b.style[c]],
                "customer_id": b.customer_id[c], "customer_tier": b.customer_tier[c]}

    def _abandoned_frame(self, c: np.ndarray) -> pd.DataFrame:
        """Contacts that hung up before the loop routed them."""
        return pd.DataFrame({**self._contact_columns(c), "wait_s": self._run.stream.patience_s[c],
                             "abandoned": True})

    def _rows_frame(self, rows: list[tuple]) -> pd.DataFrame:
        """Logged pairs (with outcomes once fetched) as history rows."""
        src, st = self._run.source, self._run.stream
        b, ag = st.block, src.agents
        full = [r if len(r) == 7 else (*r, np.nan, np.nan, np.nan) for r in rows]
        t, c, a, load, handle, res, csat = (np.array(x) for x in zip(*full))
        c, a = c.astype(np.int64), a.astype(np.int64)
        langs = [";".join(src.languages[k] for k in np.flatnonzero(ag.speaks[j])) for j in a]
        arr = st.arrival_s[c]
        return pd.DataFrame({
            **self._contact_columns(c),
            "agent_id": ag.ids[a], "agent_tenure_days": np.maximum(self._tenure0_log[a] + arr / DAY_S, 0.0),
            "agent_proficiency": ag.skill[a, b.intent[c]], "agent_sentiment_handling": ag.sentiment_handling[a],
            "agent_style": [src.styles[k] if k >= 0 else None for k in ag.style[a]], "agent_languages": langs,
            "agent_load": load, "wait_s": t - arr, "abandoned": False, "handle_s": handle,
            "resolved": pd.array([None if np.isnan(x) else bool(x) for x in res], dtype="boolean"), "csat": csat})

    # ------------------------------------------------------------------ helpers
    def _rows_of(self, hist: pd.DataFrame, version: str | None, *, decision: Any = None) -> pd.DataFrame:
        """A version's reference rows: its decision's window, the rows it trained on and the
        evaluation rows it did not (the monitor's out-of-sample calibration reference); the
        pre-period history for the first champion."""
        if decision is None:
            return hist
        lo, hi = pd.Timestamp(decision.window[0]), pd.Timestamp(decision.cutoff)
        return hist[(hist["arrival_at"] >= lo) & (hist["arrival_at"] < hi)].reset_index(drop=True)

    def _params(self):
        return self.cfg.train_params or loop_train_params(seed=self.cfg.seed)

    def _at(self, t: float) -> pd.Timestamp:
        t0 = pd.Timestamp(self._run.source.start)
        return (t0.tz_localize("UTC") if t0.tzinfo is None else t0) + pd.Timedelta(seconds=float(t))

    def _event(self, kind: str, t: float, **fields: Any) -> None:
        e = {"event": kind, "t_s": float(t), "day": float(t) / DAY_S, "seed": self._run.seed, **fields}
        self.events.append(e)
        if self.record is not None:
            with self._record_file.open("a") as f:
                f.write(json.dumps(e, default=str) + "\n")


class FrozenModelPolicy(RouterPolicy):
    """``ml-batch`` on one model directory for the whole run (loaded at start, resolution-only
    weights as the loop's)."""

    def __init__(self, *, model_dir: str | Path, name: str = "ml-batch", budget_ms: float | None = None) -> None:
        super().__init__(name=name, budget_ms=budget_ms)
        self.model_dir = str(model_dir)
        self.scorer = None

    def start(self, run: RunInfo) -> None:
        if self.scorer is None:
            from assign.model.scorer import XGBScorer

            self.scorer = XGBScorer.load(self.model_dir, weights=resolution_weights(), nthread=1)
        super().start(run)


def _earlier_same(ai: np.ndarray) -> np.ndarray:
    """Per pair, how many earlier pairs of the same decision went to the same agent."""
    out = np.zeros(len(ai))
    seen: dict[int, int] = {}
    for k, a in enumerate(ai.tolist()):
        out[k] = seen.get(a, 0)
        seen[a] = seen.get(a, 0) + 1
    return out


def _tiny_canary(run: RunInfo, *, n_contacts: int = 1):
    """A snapshot of the run's first ``n_contacts`` contacts and all agents (one: for the first load)."""
    from assign.schema import Snapshot
    from assign.sim.source import at_time

    st, src = run.stream, run.source
    a = src.agents
    c = st.block
    import dataclasses

    contacts = dataclasses.replace(c, **{f.name: getattr(c, f.name)[:n_contacts] for f in dataclasses.fields(c)
                                         if isinstance(getattr(c, f.name), np.ndarray)})
    return Snapshot(snapshot_id="canary", at=at_time(src.start, 0.0), intents=src.intents, languages=src.languages,
                    styles=src.styles, contacts=contacts, agents=a, meta={})


def _writable(func, path, _exc) -> None:
    import os
    import stat

    os.chmod(Path(path).parent, stat.S_IRWXU)
    os.chmod(path, stat.S_IRWXU)
    func(path)
