"""Online level recalibration: per intent, how far observed resolution sits from the champion's
prediction lately, added to the champion's score until a retrain catches up.

A champion is fitted to a window of days and promoted only when it beats the one before by
a margin, so after a sudden change (one intent's resolution falls within hours) the model
keeps predicting the old level for days (docs/living-centre.md, "After the shock").
:class:`LevelOffsets` follows each intent's level from matured outcomes as they arrive: with
``r_k = resolved_k - p_k`` (``p_k`` the champion's predicted resolution of the pair when it was
routed) and weights decayed by the time each outcome became known,

    offset_i(T) = sum_k w_k r_k / (sum_k w_k + prior_n),   w_k = 2 ** (-(T - known_k) / half_life_s)

over the outcomes ``k`` of intent ``i`` known by ``T`` (the time of the last :meth:`observe`):
an exponentially decayed mean residual, shrunk toward 0 by ``prior_n`` pseudo-outcomes.
:class:`OffsetScorer` adds ``offset[intent]`` to a base scorer's score, on the probability
scale (the loop's value is the expected resolution itself, so the score moves as the level did).

With ``scale="logit"`` (slope28, docs/living-centre.md) the same offset moves the score on the
logit scale instead: with ``m_i`` the decayed mean of the champion's predictions over the same
outcomes, ``delta_i = logit(m_i + offset_i) - logit(m_i)`` and the routed score is
``sigmoid(logit(p) + delta_i)``. Both scales give the intent the same mean level; the logit one
also stretches (or shrinks) the gaps between agents as the truth's do when an intent's logit
moves: an intent pushed toward 0.5 makes a given logit gap between agents worth more, so the
batch solver gives that intent more of its best agents, which a constant offset cannot do.
"""
from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np

from assign.errors import InputError
from assign.learn.logit import margin_of, sigmoid
from assign.schema import Snapshot
from assign.scorer import Prior, Scorer


class LevelOffsets:
    """Per-intent decayed mean residuals (module doc). ``values`` (and ``logits``, their logit
    shifts on the logit scale) are replaced, never changed in place, at each :meth:`observe`: a
    tick that read one keeps a consistent array."""

    def __init__(self, *, intents: tuple[str, ...], half_life_s: float, prior_n: float = 20.0,
                 scale: str = "probability") -> None:
        problems = []
        if scale not in SCALES:
            problems.append(f"scale: must be one of {', '.join(SCALES)}, got {scale!r}")
        if not len(intents):
            problems.append("intents: empty")
        if not np.isfinite(half_life_s) or half_life_s <= 0:
            problems.append(f"half_life_s: must be > 0, got {half_life_s!r}")
        if not np.isfinite(prior_n) or prior_n < 0:
            problems.append(f"prior_n: must be >= 0, got {prior_n!r}")
        if problems:
            raise InputError(problems, what="level offsets")
        self.intents, self.half_life_s, self.prior_n = tuple(intents), float(half_life_s), float(prior_n)
        self.scale = scale
        self._t: float | None = None
        self.reset()

    def reset(self) -> None:
        """Forget every outcome folded so far: all offsets back to 0 (the time of the last fold is kept)."""
        self._s = np.zeros(len(self.intents))
        self._n = np.zeros(len(self.intents))
        self._p = np.zeros(len(self.intents))  # decayed sum of the champion's predictions (logit scale)
        self.values = np.zeros(len(self.intents))
        self.logits = np.zeros(len(self.intents))

    def _publish(self) -> None:
        """``values`` and ``logits`` from the totals, each replaced, never changed in place."""
        self.values = self._s / (self._n + self.prior_n) if self.prior_n > 0 else _ratio(self._s, self._n)
        if self.scale == "logit":
            mean_p = _ratio(self._p, self._n)
            self.logits = np.where(self._n > 0, _logit(mean_p + self.values) - _logit(mean_p), 0.0)

    def rebase(self, shift: np.ndarray) -> np.ndarray:
        """Move every offset by ``shift`` (per intent, probability scale) as if each residual
        folded so far, and the ``prior_n`` pseudo-outcomes, had been ``shift`` larger: what the
        offsets would read had they been measured against another base scorer whose level sits
        ``shift`` lower. The loop calls it at a swap (``shift`` = old champion's level minus the
        new one's), so the routed level (base + offset) is unchanged by the swap. With
        ``prior_n`` 0, an intent with no outcome folded keeps its 0 offset. Returns the offsets."""
        shift = np.asarray(shift, float)
        problems = []
        if shift.shape != (len(self.intents),):
            problems.append(f"shift: need shape ({len(self.intents)},), got {shift.shape}")
        elif not np.isfinite(shift).all():
            problems.append("shift: not finite")
        if problems:
            raise InputError(problems, what="level offsets: rebase")
        self._s = self._s + shift * (self._n + self.prior_n)
        self._p = self._p - shift * self._n
        self._publish()
        return self.values

    @property
    def weight(self) -> np.ndarray:
        """Per intent, the decayed number of outcomes behind the offset (as of the last fold)."""
        return self._n.copy()

    def observe(self, *, at_s: float, known_s: np.ndarray, intent: np.ndarray, residual: np.ndarray,
                predicted: np.ndarray | None = None) -> np.ndarray:
        """Fold outcomes in (known at ``known_s`` <= ``at_s``; ``intent``: codes into ``intents``;
        ``residual``: resolved minus the champion's prediction ``predicted``, which the logit
        scale needs) and return the offsets as of ``at_s``."""
        known_s, intent, residual = (np.asarray(x) for x in (known_s, intent, residual))
        problems = []
        if self.scale == "logit":
            if predicted is None:
                problems.append("predicted: needed on the logit scale")
            else:
                predicted = np.asarray(predicted, float)
                if predicted.shape != residual.shape:
                    problems.append(f"predicted: shape {predicted.shape}, residual {residual.shape}")
                elif not ((predicted >= 0) & (predicted <= 1)).all():
                    problems.append("predicted: outside [0, 1]")
        if not (len(known_s) == len(intent) == len(residual)):
            problems.append(f"known_s, intent, residual: lengths differ ({len(known_s)}, {len(intent)}, "
                            f"{len(residual)})")
        elif len(known_s):
            if (known_s > at_s).any():
                problems.append(f"known_s: {int((known_s > at_s).sum())} outcomes known after at_s {at_s}")
            if ((intent < 0) | (intent >= len(self.intents))).any():
                problems.append(f"intent: codes outside 0..{len(self.intents) - 1}")
            if not np.isfinite(residual).all():
                problems.append("residual: not finite")
        if self._t is not None and at_s < self._t:
            problems.append(f"at_s: {at_s} is before the last fold at {self._t}")
        if problems:
            raise InputError(problems, what="level offsets: observe")
        if self._t is not None:
            d = 2.0 ** (-(at_s - self._t) / self.half_life_s)
            self._s, self._n, self._p = self._s * d, self._n * d, self._p * d
        if len(known_s):
            w = 2.0 ** (-(at_s - known_s.astype(float)) / self.half_life_s)
            k = len(self.intents)
            self._s = self._s + np.bincount(intent, weights=w * residual, minlength=k)
            self._n = self._n + np.bincount(intent, weights=w, minlength=k)
            if self.scale == "logit":
                self._p = self._p + np.bincount(intent, weights=w * predicted, minlength=k)
        self._t = float(at_s)
        self._publish()
        return self.values

    def route(self, base: np.ndarray, offset: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """Routed scores from the base scores and, per score, its intent's ``values`` and
        ``logits`` entries (the scale decides which one moves it)."""
        if self.scale == "logit":
            return sigmoid(_logit(base) + shift)
        return base + offset


#: The scales a level offset moves a score on (module doc).
SCALES = ("probability", "logit")
_EPS = 1e-4


def _logit(p: np.ndarray) -> np.ndarray:
    return margin_of(p, eps=_EPS)


def _ratio(s: np.ndarray, n: np.ndarray) -> np.ndarray:
    out = np.zeros_like(s)
    np.divide(s, n, out=out, where=n > 0)
    return out


class OffsetScorer(Scorer):
    """``base``'s score moved by the level offset of the contact's intent, on the offsets' scale
    (:meth:`LevelOffsets.route`; intents matched by name, one the offsets do not know is not
    moved). The retrieval prior moves the same way."""

    def __init__(self, *, base: Scorer, levels: LevelOffsets) -> None:
        self.base, self.levels = base, levels
        self.name = f"{getattr(base, 'name', 'scorer')}+level"
        self._lock = threading.Lock()
        self._cols: tuple[tuple[str, ...], np.ndarray] | None = None

    def _offsets(self, snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        """The offsets and their logit shifts in the snapshot's intent vocabulary."""
        intents = tuple(snapshot.intents)
        with self._lock:
            cols = self._cols
        if cols is None or cols[0] != intents:
            index = {k: n for n, k in enumerate(self.levels.intents)}
            cols = (intents, np.array([index.get(k, -1) for k in intents], np.int64))
            with self._lock:
                self._cols = cols
        lv = self.levels
        v, z = lv.values, lv.logits  # the scale reads one of them
        known, col = cols[1] >= 0, np.maximum(cols[1], 0)
        return np.where(known, v[col], 0.0), np.where(known, z[col], 0.0)

    def score_pairs(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        base = np.asarray(self.base.score_pairs(snapshot, contact_idx=contact_idx, agent_idx=agent_idx), float)
        v, z = self._offsets(snapshot)
        intent = snapshot.contacts.intent[contact_idx]
        return self.levels.route(base, v[intent], z[intent])

    def prior(self, snapshot: Snapshot) -> Prior | None:
        bp = self.base.prior(snapshot)
        if bp is None:
            return None
        v, z = self._offsets(snapshot)
        return replace(bp, agent_intent=self.levels.route(np.asarray(bp.agent_intent, float), v[None, :], z[None, :]))

    def warm_up(self) -> None:
        self.base.warm_up()

    def bind(self, run) -> None:
        self.base.bind(run)
