"""Live estimates as residuals on a base model: what the base gets wrong, per agent and intent.

The loop's default live part (:class:`~assign.learn.scorer.LearnScorer`) adds an absolute
resolution rate of the (agent, intent) pair to the champion's score: a second estimate of the
agent's level, blind to the contact mix, which the champion already reads. Here the live part
is a **residual** instead (loop14, opt-in ``LoopConfig.live_residual``): each outcome event
carries the base's prediction for its pair, recorded at the decision (``pred_margin``, the
logit, the column :mod:`assign.learn.effects` reads), and the totals are of ``r = y - p``:

- :class:`ResidualEstimates`: decayed totals per agent x intent of ``n = sum w``,
  ``s = sum w r``, ``q = sum w r^2`` (exponential forgetting as :mod:`assign.learn.live`);
- :func:`fit_residuals`: a Gaussian hierarchy of the same levels as :mod:`assign.learn.shrink`,
  cohort -> agent -> agent x intent, around a centre of 0 (the base is taken as unbiased
  overall; the per-intent levels are the level offsets' job). Each level's mean is
  ``(s + M m_parent) / (n + M)`` with ``M = sigma^2 / tau^2``, ``sigma^2`` the pooled residual
  variance ``Q / N`` and ``tau^2`` the between-group variance by moments,
  ``sum_j n_j (r_j - m_j)^2 = k sigma^2 + tau^2 sum_j n_j`` over the ``k`` groups with outcomes
  (decayed weights read as counts: approximate under forgetting);
- :class:`ResidualScorer`: ``score = base + shrunk residual`` of the pair; Thompson draws are
  normal with variance ``sigma^2 / (n + M)``. An agent the base predicts well adds ~0; a pair
  the base gets wrong is corrected by its own outcomes, a hire with none by its cohort's.

One pooled ``M`` per level lets the many cells the base predicts well set ``tau^2`` (the moment
sum weighs each group by its outcomes): measured on the living centre (slope31), the champion's
errors on agents in their first month spread ten times wider than on the tenured ones, and one
``M`` shrank a hire's -0.14 residual over 180 outcomes to -0.05. ``band_days`` (opt-in: tenure
bounds in days, e.g. ``(30,)``: the first month apart) fits the agent and agent x intent levels'
``M`` per tenure band (:func:`~assign.learn.shrink.tenure_band`), each band's groups alone; a band
with fewer than :data:`MIN_BAND_GROUPS` groups with outcomes keeps the pooled ``M``.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from assign.history import epoch_seconds
from assign.learn.effects import FoldedTotals, row_codes
from assign.learn.scorer import LearnScorer, Roster
from assign.learn.shrink import cohorts, tenure_band

#: Floor of a level's between-group variance, and the pooled variance when nothing is known.
TAU2_MIN, SIGMA2_FALLBACK = 1e-6, 0.25
#: ``band_days``: the fewest groups with outcomes a tenure band fits its own strength from.
MIN_BAND_GROUPS = 3


@dataclass(frozen=True, eq=False)
class ResidualVersion:
    """Decayed residual totals (n_agents, n_intents) at time ``t_s``; immutable."""

    version: int
    t_s: float
    agent_ids: tuple[str, ...]
    intents: tuple[str, ...]
    n: np.ndarray
    s: np.ndarray
    q: np.ndarray

    def agent_codes(self, agent_ids) -> np.ndarray:
        return row_codes(self.agent_ids, agent_ids)


class ResidualEstimates(FoldedTotals):
    """The live residual totals of :func:`fold_residuals` (see :class:`FoldedTotals`);
    ``centred``: each batch's residuals centred per intent (:func:`fold_residuals`)."""

    def __init__(self, *, intents: tuple[str, ...], half_life_s: float = math.inf, centred: bool = False) -> None:
        if not half_life_s > 0:
            raise ValueError(f"half_life_s must be > 0, got {half_life_s}")
        self.half_life_s, self.centred = float(half_life_s), bool(centred)
        z = np.zeros((0, len(intents)))
        self._v = ResidualVersion(version=0, t_s=-math.inf, agent_ids=(), intents=tuple(intents), n=z, s=z, q=z)
        self._lock = threading.Lock()

    def _fold(self, v: ResidualVersion, ev: pd.DataFrame) -> ResidualVersion:
        return fold_residuals(v, ev, half_life_s=self.half_life_s, centred=self.centred)

    def reset(self) -> ResidualVersion:
        """Forget every total (a new version with none): residuals measured against a base that
        has just been replaced by one trained on the same outcomes."""
        with self._lock:
            z = np.zeros((0, len(self._v.intents)))
            self._v = ResidualVersion(version=self._v.version + 1, t_s=-math.inf, agent_ids=(),
                                      intents=self._v.intents, n=z, s=z, q=z)
            return self._v


def fold_residuals(v: ResidualVersion, ev: pd.DataFrame, *, half_life_s: float,
                   centred: bool = False) -> ResidualVersion:
    """``v`` decayed to the batch's time plus the batch's residuals ``resolved - sigmoid(pred_margin)``,
    each weighted by its age; rows without a resolution or a prediction, or on an intent outside
    ``v.intents``, carry nothing. ``centred``: each residual minus the weighted mean residual of
    the batch's rows on its intent, so what the base gets wrong for every agent of an intent at
    once (a level shift the level offsets have not caught up with yet) does not become the
    deviation of the agents who happened to take that intent's contacts (hybrid18)."""
    m = pd.to_numeric(ev["pred_margin"], errors="coerce").to_numpy(np.float64)
    y = ev["resolved"].to_numpy(np.float64)
    imap = {k: n for n, k in enumerate(v.intents)}
    i = np.fromiter((imap.get(str(x), -1) for x in ev["intent"]), np.int64, len(ev))
    ok = np.isfinite(y) & np.isfinite(m) & (i >= 0)
    if not ok.any():
        return v
    ev, y, m, i = ev[ok], y[ok], m[ok], i[ok]
    t = epoch_seconds(ev["known_at"])
    t_new = max(v.t_s, float(t.max()))
    known = set(v.agent_ids)
    ids = v.agent_ids + tuple(dict.fromkeys(str(a) for a in ev["agent_id"] if str(a) not in known))
    forget = math.isfinite(half_life_s)
    decay = 2.0 ** (-(t_new - v.t_s) / half_life_s) if forget and math.isfinite(v.t_s) else 1.0
    w = np.exp2(-(t_new - t) / half_life_s) if forget else np.ones(len(t))
    code = {a: k for k, a in enumerate(ids)}
    a = np.fromiter((code[str(x)] for x in ev["agent_id"]), np.int64, len(ev))
    r = y - 1.0 / (1.0 + np.exp(-m))
    if centred:
        k = len(v.intents)
        r = r - (np.bincount(i, w * r, k) / np.maximum(np.bincount(i, w, k), 1e-300))[i]
    pad = np.zeros((len(ids) - len(v.agent_ids), len(v.intents)))
    out = {k: np.concatenate([getattr(v, k), pad]) * decay for k in ("n", "s", "q")}
    for k, val in (("n", w), ("s", w * r), ("q", w * r * r)):
        np.add.at(out[k], (a, i), val)
    return ResidualVersion(version=v.version + 1, t_s=t_new, agent_ids=ids, intents=v.intents, **out)


@dataclass(frozen=True, eq=False)
class ResidualPosterior:
    """Shrunk mean residual of every agent x intent (``mean``), its posterior variance
    (``var``), the agent's outcome weight ``agent_n`` (0: its cohort's estimate alone), the
    fitted ``strengths`` (``M`` per level; with bands, also ``"<level> band <b>"`` for each band
    fitted on its own) and ``sigma2``."""

    mean: np.ndarray
    var: np.ndarray
    agent_n: np.ndarray
    strengths: dict[str, float]
    sigma2: float


def level_strength(*, s: np.ndarray, n: np.ndarray, parent_mean: np.ndarray, sigma2: float) -> float:
    """``M = sigma2 / tau2`` of groups (totals ``s``, ``n``) around known parent means, ``tau2``
    by moments (module doc); groups with ``n = 0`` carry nothing."""
    ok = n > 0
    if not ok.any():
        return sigma2 / TAU2_MIN
    r = s[ok] / n[ok]
    ss = float(np.sum(n[ok] * (r - parent_mean[ok]) ** 2))
    tau2 = max((ss - ok.sum() * sigma2) / float(n[ok].sum()), TAU2_MIN)
    return sigma2 / tau2


def band_strengths(*, s: np.ndarray, n: np.ndarray, parent_mean: np.ndarray, sigma2: float,
                   band: np.ndarray | None, level: str, fitted: dict[str, float]) -> np.ndarray:
    """Each group's ``M``: :func:`level_strength` of all groups (``fitted[level]``), or with
    ``band`` (a code per group) of its band's groups alone where that band has at least
    :data:`MIN_BAND_GROUPS` groups with outcomes (``fitted["<level> band <b>"]``)."""
    pooled = level_strength(s=s, n=n, parent_mean=parent_mean, sigma2=sigma2)
    fitted[level] = pooled
    out = np.full(len(s), pooled)
    if band is None:
        return out
    for b in np.unique(band):
        sel = band == b
        if np.count_nonzero(sel & (n > 0)) >= MIN_BAND_GROUPS:
            out[sel] = fitted[f"{level} band {int(b)}"] = level_strength(
                s=s[sel], n=n[sel], parent_mean=parent_mean[sel], sigma2=sigma2)
    return out


def fit_residuals(*, n: np.ndarray, s: np.ndarray, q: np.ndarray, cohort: np.ndarray,
                  band: np.ndarray | None = None) -> ResidualPosterior:
    """The hierarchy of the module doc over agent x intent totals ``n``, ``s``, ``q``
    (n_agents, n_intents) with each agent's ``cohort`` code; ``band`` (a code per agent, or
    None: one strength per level) splits the agent and agent x intent strengths
    (:func:`band_strengths`)."""
    N = float(n.sum())
    sigma2 = float(q.sum()) / N if N > 0 else SIGMA2_FALLBACK
    sigma2 = max(sigma2, TAU2_MIN)
    n_a, s_a = n.sum(axis=1), s.sum(axis=1)
    codes, g = np.unique(cohort, return_inverse=True)
    n_c, s_c = np.bincount(g, n_a, len(codes)), np.bincount(g, s_a, len(codes))
    m_c = level_strength(s=s_c, n=n_c, parent_mean=np.zeros(len(codes)), sigma2=sigma2)
    mu_c = s_c / (n_c + m_c)
    fitted = {"cohort": m_c}
    m_a = band_strengths(s=s_a, n=n_a, parent_mean=mu_c[g], sigma2=sigma2, band=band, level="agent",
                         fitted=fitted)
    mu_a = (s_a + m_a * mu_c[g]) / (n_a + m_a)
    parent = np.repeat(mu_a[:, None], n.shape[1], axis=1)
    cell_band = None if band is None else np.repeat(np.asarray(band)[:, None], n.shape[1], axis=1).ravel()
    m_ai = band_strengths(s=s.ravel(), n=n.ravel(), parent_mean=parent.ravel(), sigma2=sigma2, band=cell_band,
                          level="agent_intent", fitted=fitted).reshape(n.shape)
    mean = (s + m_ai * parent) / (n + m_ai)
    return ResidualPosterior(mean=mean, var=sigma2 / (n + m_ai), agent_n=n_a, sigma2=sigma2, strengths=fitted)


class ResidualScorer(LearnScorer):
    """``base`` score + the shrunk mean residual of the pair (module doc); ``live`` is a
    :class:`ResidualEstimates` (``csat_proxy`` and ``n_neighbours`` are not used);
    ``band_days``: tenure bounds of the bands whose strengths are fitted apart (module doc; None:
    one strength per level)."""

    name = "learn-residual"
    _version_type = ResidualVersion

    def __init__(self, *, band_days: tuple[float, ...] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.band_days = None if band_days is None else tuple(float(d) for d in band_days)

    def _fit_version(self, v: ResidualVersion, roster: Roster) -> tuple[ResidualPosterior, dict]:
        codes = v.agent_codes(roster.ids)
        col = {k: j for j, k in enumerate(v.intents)}
        cols = np.array([col.get(k, -1) for k in roster.intents], np.int64)
        ok, known = codes >= 0, cols >= 0
        tot = {}
        for k in ("n", "s", "q"):
            x = np.zeros((len(roster.ids), len(roster.intents)))
            x[np.ix_(ok, known)] = getattr(v, k)[np.ix_(codes[ok], cols[known])]
            tot[k] = x
        post = fit_residuals(**tot, cohort=cohorts(tenure_days=roster.tenure_days, skill=roster.skill),
                             band=None if self.band_days is None else
                             tenure_band(roster.tenure_days, bounds_days=self.band_days))
        return post, {str(a): k for k, a in enumerate(roster.ids)}

    def posterior_draw(self, snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray,
                       rng: np.random.Generator, n_draws: int = 1) -> np.ndarray:
        """(n_draws, n_pairs) Thompson draws: one normal draw per agent x intent of the
        snapshot, shared by that agent's pairs on the intent, plus the base score."""
        post, rows = self.posterior(snapshot)
        intent = snapshot.contacts.intent[contact_idx]
        r = rows[agent_idx]
        k = post.mean.shape[1]
        keys, inv = np.unique(r * k + intent, return_inverse=True)
        kr, ki = keys // k, keys % k
        theta = post.mean[kr, ki] + np.sqrt(post.var[kr, ki]) * rng.standard_normal((n_draws, len(keys)))
        return theta[:, inv] + self._base(snapshot, contact_idx, agent_idx)
