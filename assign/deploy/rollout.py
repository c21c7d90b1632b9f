"""Rollout modes in the simulator, with automatic guardrail rollback.

:class:`RolloutPolicy` wraps two policies, ``champion`` and ``challenger``:

- ``shadow``: the champion decides; the challenger decides the same window on a copy of the
  free capacity, is never applied, and both are logged (:attr:`RolloutPolicy.shadow`: per
  decision, how many pairs each chose and how many agree). The challenger must not keep
  state from what it is shown (a ``RouterPolicy`` does not).
- ``split``: contacts (``unit="contact"``) or switchback windows (``unit="switchback"``) are
  randomised between ``champion`` and ``challenger`` with the experiment module's hashing
  (:func:`assign.experiment.arm_of`, :class:`assign.experiment.Switchback`), so the run's
  ``arm`` column is what ``assign experiment analyze`` reads; routing is
  :class:`~assign.sim.policies.SplitPolicy`'s (one queue, no arm jumps it).
- ``full``: the challenger routes everything.

Guardrails (:class:`Guardrail`): abandonment rate and service level (share answered within
``service_level_s``) of the contacts each arm routed, counted as contacts end: answered (by
this policy) or abandoned (unanswered when their patience ran out, the engine's own rule;
that is when a production queue would see the hang-up), in windows of ``check_every_s``.
After each whole window the challenger is compared with the champion within the same
windows (split: both arms face the same load) or with the guardrail's ``baseline`` (full).
Once the challenger has ``min_contacts`` contacts over ``min_windows`` windows, a worsening
beyond ``margin`` by more than Student's t critical value (``alpha`` one-sided, windows - 1
degrees of freedom) times its standard error over windows rolls back: every contact from
then on is routed by the champion; the rollback, with its figures, goes to the registry's
audit log (when a registry is given; a champion alias on the challenger moves back) and to
:attr:`RolloutPolicy.events`. After a rollback the arm labels still say how contacts were
randomised; analyse the contacts that arrived before ``rolled_back_at_s``.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from assign.errors import InputError
from assign.sim.policies import ContactRow, Policy, SplitPolicy
from assign.sim.view import RunInfo, View

MODES = ("shadow", "split", "full")
UNITS = ("contact", "switchback")
ARMS = ("champion", "challenger")


@dataclass(frozen=True, kw_only=True)
class Guardrail:
    """A metric that must not worsen: ``abandonment`` (rate, lower is better) or
    ``service_level`` (share answered within the rollout's ``service_level_s``, higher is better)."""

    name: str
    margin: float
    baseline: float | None = None  # the champion's rate, for ``full`` rollouts
    min_contacts: int = 200
    min_windows: int = 6
    alpha: float = 0.01  # one-sided, per look; small because a running check looks again every window

    def __post_init__(self) -> None:
        problems = []
        if self.name not in ("abandonment", "service_level"):
            problems.append(f"name: {self.name!r} is not abandonment or service_level")
        if not (isinstance(self.alpha, float) and 0 < self.alpha < 0.5):
            problems.append(f"alpha: must be in (0, 0.5), got {self.alpha!r}")
        for k in ("margin",):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                problems.append(f"{k}: must be a finite number >= 0, got {v!r}")
        if self.baseline is not None and not 0 <= self.baseline <= 1:
            problems.append(f"baseline: must be a rate in [0, 1], got {self.baseline!r}")
        if self.min_contacts < 1:
            problems.append(f"min_contacts: must be >= 1, got {self.min_contacts!r}")
        if self.min_windows < 2:
            problems.append(f"min_windows: must be >= 2, got {self.min_windows!r}")
        if problems:
            raise InputError(problems, what=f"guardrail {self.name}")

    def rate(self, ended: int, abandoned: int, fast: int) -> float:
        bad = abandoned if self.name == "abandonment" else ended - fast
        return bad / ended if ended else math.nan  # both as "bad" shares: higher is worse

    def breach(self, windows: np.ndarray) -> dict[str, Any] | None:
        """Figures of a breach, or None. ``windows``: (n_windows, 2 arms, 3) counts of
        contacts ended, abandoned and answered fast, arm 0 the champion. Split: the worsening
        is the challenger-weighted mean over windows of (challenger - champion) "bad" share
        within each window, so both arms face the same load; without a champion arm, the
        challenger's share minus the ``baseline``'s. Its standard error is over windows
        (contacts of one window are not independent: a busy hour makes every arm abandon)."""
        ch, cp = windows[:, 1, :], windows[:, 0, :]
        if self.baseline is not None:
            p0 = np.full(len(windows), 1.0 - self.baseline if self.name == "service_level" else self.baseline)
            use = ch[:, 0] > 0
        else:
            use = (ch[:, 0] > 0) & (cp[:, 0] > 0)
            p0 = np.array([self.rate(*c) if c[0] else np.nan for c in cp])
        if ch[use, 0].sum() < self.min_contacts or use.sum() < self.min_windows:
            return None
        p1 = np.array([self.rate(*c) for c in ch[use]])
        d, w = p1 - p0[use], ch[use, 0].astype(float)
        from scipy.stats import t as student_t

        n_win = int(use.sum())
        est = float((w * d).sum() / w.sum())
        se_win = float(np.sqrt((w ** 2 * (d - est) ** 2).sum() * n_win / (n_win - 1)) / w.sum())
        q1 = min(max(est + float((w * p0[use]).sum() / w.sum()), 0.0), 1.0)
        se = max(se_win, math.sqrt(q1 * (1 - q1) / w.sum()))  # never below the binomial error
        crit = float(student_t.ppf(1 - self.alpha, n_win - 1))
        if est - crit * se <= self.margin:
            return None
        sign = -1.0 if self.name == "service_level" else 1.0  # report the metric itself, not its "bad" share
        base = float((w * p0[use]).sum() / w.sum())
        return dict(guardrail=self.name, challenger=_metric(self, base + est), champion=_metric(self, base),
                    change=sign * est, se=se, margin=self.margin, critical=crit, contacts=int(w.sum()),
                    windows=int(use.sum()))


def _metric(g: Guardrail, bad_share: float) -> float:
    return 1.0 - bad_share if g.name == "service_level" else bad_share


class RolloutPolicy(SplitPolicy):
    """``champion`` and ``challenger`` rolled out in ``mode`` (see the module doc)."""

    def __init__(self, *, champion: Policy, challenger: Policy, mode: str, share: float = 0.5,
                 unit: str = "contact", salt: str = "rollout", window_s: float = 3600.0,
                 guardrails: tuple[Guardrail, ...] = (), check_every_s: float = 3600.0, service_level_s: float = 20.0,
                 registry: Any = None,
                 versions: tuple[str, str] = ("champion", "challenger"), name: str = "rollout") -> None:
        problems = []
        if mode not in MODES:
            problems.append(f"mode: {mode!r} is not one of {', '.join(MODES)}")
        if unit not in UNITS:
            problems.append(f"unit: {unit!r} is not one of {', '.join(UNITS)}")
        if not 0 < share < 1:
            problems.append(f"share: must be in (0, 1), got {share!r}")
        if problems:
            raise InputError(problems, what="rollout")
        super().__init__(arms={"champion": champion, "challenger": challenger}, arm_of=self._arm_of, name=name)
        self.mode, self.share, self.unit, self.salt, self.window_s = mode, float(share), unit, salt, float(window_s)
        self.guardrails, self.check_every_s = tuple(guardrails), float(check_every_s)
        self.service_level_s = float(service_level_s)
        self.registry, self.versions = registry, versions
        self.events: list[dict[str, Any]] = []
        self.shadow: list[dict[str, Any]] = []
        self.rolled_back_at_s: float | None = None

    def _arm_of(self, row: ContactRow, t_s: float) -> str:
        from assign.experiment import arm_of

        if self.mode == "full":
            return "challenger"
        if self.mode == "shadow":
            return "champion"
        key = row.contact_id if self.unit == "contact" else f"all|{math.floor(t_s / self.window_s)}"
        return arm_of(key, salt=self.salt, arms=ARMS, weights=(1.0 - self.share, self.share))

    def start(self, run: RunInfo) -> None:
        super().start(run)
        n = len(run.stream)
        self._arrival = np.asarray(run.stream.arrival_s, float)
        self._t0 = pd.Timestamp(run.source.start)
        self._t0 = self._t0.tz_localize("UTC") if self._t0.tzinfo is None else self._t0
        self._order = np.argsort(self._arrival, kind="stable")
        self._deadline = self._arrival + np.asarray(run.stream.patience_s, float)
        self._answered_mask = np.zeros(n, bool)
        self._pending: list[tuple[float, int]] = []  # (deadline, contact) of arrived contacts, a heap
        self._next_arrival = 0
        n_win = int(np.ceil((self._deadline.max() if n else 0.0) / self.check_every_s)) + 2
        self._counts = np.zeros((n_win, len(ARMS), 3), np.int64)  # per window, arm: ended, abandoned, fast
        self._next_check = self.check_every_s
        self.events, self.shadow, self.rolled_back_at_s = [], [], None

    def assign(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        self._track(view)
        if self.rolled_back_at_s is not None:
            ci, ai = self.arms["champion"].assign(view)
        elif self.mode == "shadow":  # the challenger first, on a copy of the capacity; never applied
            sc, sa = self.arms["challenger"].assign(view.narrowed(waiting=view.waiting, free=view.free.copy()))
            ci, ai = super().assign(view)
            self._log_shadow(view, np.asarray(sc, np.int64), np.asarray(sa, np.int64), ci, ai)
        else:
            ci, ai = super().assign(view)
        ci, ai = np.asarray(ci, np.int64), np.asarray(ai, np.int64)
        self._answered(view, ci)
        if self.guardrails and view.t >= self._next_check and self.rolled_back_at_s is None:
            self._next_check = view.t + self.check_every_s
            self._check(view.t)
        return ci, ai

    def _track(self, view: View) -> None:
        """Contacts that arrived by now join the pending heap; those whose patience ran out
        unanswered have abandoned."""
        upto = int(np.searchsorted(self._arrival[self._order], view.t, side="right"))
        for c in self._order[self._next_arrival:upto].tolist():
            heapq.heappush(self._pending, (float(self._deadline[c]), c))
        self._next_arrival = max(self._next_arrival, upto)
        while self._pending and self._pending[0][0] <= view.t:
            _, c = heapq.heappop(self._pending)
            if not self._answered_mask[c]:
                self._end(c, abandoned=True, wait_s=self._deadline[c] - self._arrival[c])

    def _answered(self, view: View, ci: np.ndarray) -> None:
        for c in ci.tolist():
            self._answered_mask[c] = True
            self._end(c, abandoned=False, wait_s=view.t - self._arrival[c])

    def _end(self, c: int, *, abandoned: bool, wait_s: float) -> None:
        arm = int(self._codes[c]) if self.rolled_back_at_s is None else 0
        k = self._counts[int((self._arrival[c] + wait_s) // self.check_every_s), arm]
        k[0] += 1
        k[1] += int(abandoned)
        k[2] += int((not abandoned) and wait_s <= self.service_level_s)

    def _check(self, t: float) -> None:
        done = self._counts[: int(t // self.check_every_s)]  # whole windows only
        for g in self.guardrails:
            b = g.breach(done)
            if b is not None:
                self._rollback(t, b)
                return

    def _rollback(self, t: float, figures: dict[str, Any]) -> None:
        self.rolled_back_at_s = t
        at = self._t0 + pd.Timedelta(seconds=t)
        reason = (f"rollback: {figures['guardrail']} {figures['challenger']:.4f} vs {figures['champion']:.4f} "
                  f"(margin {figures['margin']:g})")
        event = dict(event="rollback", at=at.isoformat(), t_s=t, mode=self.mode, champion=self.versions[0],
                     challenger=self.versions[1], reason=reason, figures=figures)
        self.events.append(event)
        if self.registry is not None:
            self.registry.log("rollback", at=at, t_s=t, mode=self.mode, champion=self.versions[0],
                              challenger=self.versions[1], reason=reason, figures=figures)
            if self.registry.resolve("champion") == self.versions[1] and self.versions[0] in {
                    v["version"] for v in self.registry.versions()}:
                self.registry.set_alias("champion", self.versions[0], reason=reason, at=at, figures=figures)

    def _log_shadow(self, view: View, sc: np.ndarray, sa: np.ndarray, ci, ai) -> None:
        cc, ca = np.asarray(ci, np.int64), np.asarray(ai, np.int64)
        agree = len(set(zip(sc.tolist(), sa.tolist())) & set(zip(cc.tolist(), ca.tolist())))
        self.shadow.append(dict(t_s=view.t, waiting=len(view.waiting), challenger_pairs=len(sc),
                                champion_pairs=len(cc), agree=agree))

    def counts(self) -> dict[str, dict[str, float]]:
        """Per arm: contacts ended, abandonment rate, service level (share answered within the threshold)."""
        tot = self._counts.sum(axis=0)
        return {a: dict(ended=int(k[0]), abandonment=k[1] / k[0] if k[0] else math.nan,
                        service_level=k[2] / k[0] if k[0] else math.nan) for a, k in zip(ARMS, tot)}

