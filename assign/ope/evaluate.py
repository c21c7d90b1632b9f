"""Evaluate a target policy on a decision log: re-run it on every logged window, line its
pairs up with the logged ones, and run the estimators with support checks.

The one rule that refuses an estimate lives here: when more than ``max_deficiency`` of the
target's pairs had a logging propensity below ``floor``, no estimator gives a number (DM
included: where the logger never tried such pairs, nothing in the log can check the reward
model's extrapolation), and the result says why.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assign.ope.estimators import (
    ESTIMATORS,
    PairData,
    SwitchDoublyRobust,
    check_ope_inputs,
    effective_sample_size,
    support_deficiency,
)
from assign.ope.logs import OPELog
from assign.ope.targets import WindowPolicy
from assign.validate import Problems

SCOPE_NOTE = ("Estimates the target's pair-level outcome (resolution per contact served) on the logged windows. "
              "Queue-level effects (wait, abandonment, service level, and the load a choice leaves for later "
              "windows) depend on the whole system: they belong to the simulator or an experiment.")


@dataclass(frozen=True, eq=False)
class Pairs:
    """Pairs located in the log: window number, row in ``window_contacts``, row in
    ``window_agents``, and how many earlier pairs of the same window the agent took."""

    window: np.ndarray
    contact_row: np.ndarray
    agent_row: np.ndarray
    extra_load: np.ndarray


@dataclass(frozen=True)
class Estimate:
    value: float | None
    ci_low: float | None
    ci_high: float | None
    refused: str | None = None


@dataclass(frozen=True, eq=False)
class OPEResult:
    """What ``assign ope`` reports for one target policy."""

    policy: str
    n_windows: int
    n_target_pairs: int
    n_matched: int
    ess: float
    support_deficiency: float
    floor: float
    max_deficiency: float
    estimates: dict[str, Estimate]
    switch_tau: float | None
    reward_model: str
    scope: str = SCOPE_NOTE
    data: PairData | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "n_windows": self.n_windows, "n_target_pairs": self.n_target_pairs,
                "n_matched": self.n_matched, "effective_sample_size": self.ess,
                "support_deficiency": self.support_deficiency, "propensity_floor": self.floor,
                "max_deficiency": self.max_deficiency, "switch_tau": self.switch_tau,
                "reward_model": self.reward_model, "scope": self.scope,
                "estimates": {k: vars(v) for k, v in self.estimates.items()}}


def _cumcount(window: np.ndarray, agent_row: np.ndarray) -> np.ndarray:
    df = pd.DataFrame({"w": window, "a": agent_row})
    return df.groupby(["w", "a"], sort=False).cumcount().to_numpy(np.int64)


def logged_pairs(log: OPELog) -> tuple[Pairs, np.ndarray, np.ndarray]:
    """The logged decisions as :class:`Pairs`, their rewards (``resolved``) and propensities."""
    t = log.tables
    wc = t["window_contacts"][["window_id", "contact_id"]].reset_index(names="contact_row")
    wa = t["window_agents"][["window_id", "agent_id"]].reset_index(names="agent_row")
    wk = pd.DataFrame({"window_id": log.index["window_id"], "window": np.arange(log.n_windows)})
    d = t["decisions"].merge(t["outcomes"], on="decision_id", how="left", validate="one_to_one")
    d = d.merge(wc, on=["window_id", "contact_id"], how="left").merge(wa, on=["window_id", "agent_id"], how="left")
    d = d.merge(wk, on="window_id", how="left")
    p = Problems()
    if d["agent_row"].isna().any():
        p.add("decisions.agent_id", f"{int(d['agent_row'].isna().sum())} decisions name an agent not in their "
                                    "window's snapshot")
    res = pd.to_numeric(d["resolved"], errors="coerce").to_numpy(float)
    p.raise_if_any(what="OPE log")
    w = d["window"].to_numpy(np.int64)
    a = d["agent_row"].to_numpy(np.int64)
    pairs = Pairs(window=w, contact_row=d["contact_row"].to_numpy(np.int64), agent_row=a,
                  extra_load=_cumcount(w, a))
    return pairs, res, d["propensity"].to_numpy(float)


def target_pairs(log: OPELog, policy: WindowPolicy, *, progress: Callable[[int], None] | None = None) -> Pairs:
    """Re-run ``policy`` on every logged window's snapshot."""
    ix = log.index
    ws, cs, as_ = [], [], []
    for k in range(log.n_windows):
        ci, ai = policy.choose(log.snapshot(k))
        ws.append(np.full(len(ci), k, np.int64))
        cs.append(ix["c_off"][k] + np.asarray(ci, np.int64))
        as_.append(ix["a_off"][k] + np.asarray(ai, np.int64))
        if progress and k % 500 == 499:
            progress(500)
    w = np.concatenate(ws) if ws else np.zeros(0, np.int64)
    a = np.concatenate(as_) if as_ else np.zeros(0, np.int64)
    return Pairs(window=w, contact_row=np.concatenate(cs) if cs else np.zeros(0, np.int64), agent_row=a,
                 extra_load=_cumcount(w, a))


def pair_propensity(log: OPELog, pairs: Pairs) -> np.ndarray:
    """The logged propensity of each pair (0 where the ``pairs`` table does not list it)."""
    t = log.tables
    wc = t["window_contacts"][["window_id", "contact_id"]].reset_index(names="contact_row")
    wa = t["window_agents"][["window_id", "agent_id"]].reset_index(names="agent_row")
    pt = t["pairs"].merge(wc, on=["window_id", "contact_id"]).merge(wa, on=["window_id", "agent_id"])
    n_a = max(len(wa), 1)
    key = pt["contact_row"].to_numpy(np.int64) * n_a + pt["agent_row"].to_numpy(np.int64)
    order = np.argsort(key)
    key, val = key[order], pt["propensity"].to_numpy(float)[order]
    q = pairs.contact_row * n_a + pairs.agent_row
    pos = np.minimum(np.searchsorted(key, q), max(len(key) - 1, 0))
    return np.where((len(key) > 0) & (key[pos] == q), val[pos] if len(key) else 0.0, 0.0)


def fit_reward_model(log: OPELog, model: Any) -> Any:
    """Fit ``model`` on the logged pairs and their ``resolved`` outcomes (once per log)."""
    logged, reward, _ = logged_pairs(log)
    ok = np.isfinite(reward)
    return model.fit(log, contact_row=logged.contact_row[ok], agent_row=logged.agent_row[ok],
                     extra_load=logged.extra_load[ok], window=logged.window[ok], reward=reward[ok])


def pair_data(log: OPELog, policy: WindowPolicy, *, reward_model: Any, progress=None) -> PairData:
    """Everything the estimators need for ``policy`` on ``log``; ``reward_model`` is fitted
    (:func:`fit_reward_model`) and predicts the target's pairs."""
    logged, reward, _ = logged_pairs(log)
    tp = target_pairs(log, policy, progress=progress)
    agent_of = np.full(len(log.tables["window_contacts"]), -1, np.int64)
    agent_of[logged.contact_row] = logged.agent_row
    reward_of = np.full(len(agent_of), np.nan)
    reward_of[logged.contact_row] = reward
    matched = agent_of[tp.contact_row] == tp.agent_row
    q_hat = reward_model.predict(log, contact_row=tp.contact_row, agent_row=tp.agent_row,
                                 extra_load=tp.extra_load, window=tp.window)
    return check_ope_inputs(window=tp.window, n_windows=log.n_windows, matched=matched,
                            reward=reward_of[tp.contact_row], pscore=pair_propensity(log, tp), q_hat=q_hat)


def evaluate(data: PairData, *, policy: str, estimators: Sequence[str] = tuple(ESTIMATORS), floor: float = 1e-3,
             max_deficiency: float = 0.05, alpha: float = 0.05, n_bootstrap: int = 1000, random_state: int = 0,
             reward_model: str = "") -> OPEResult:
    """Every requested estimator with its interval, or its refusal (see module doc)."""
    p = Problems()
    for k, name in enumerate(estimators):
        p.choice(f"estimators[{k}]", name, ESTIMATORS)
    p.number("floor", floor, lo=0, hi=1)
    p.number("max_deficiency", max_deficiency, lo=0, hi=1)
    p.number("alpha", alpha, lo=0, hi=1, lo_open=True)
    p.number("n_bootstrap", n_bootstrap, lo=10, integer=True)
    p.raise_if_any(what="OPE settings")
    deficiency = support_deficiency(data, floor=floor)
    tau = SwitchDoublyRobust().tune(data) if data.q_hat is not None else None
    out: dict[str, Estimate] = {}
    for name in estimators:
        if deficiency > max_deficiency:
            out[name] = Estimate(None, None, None, refused=(
                f"missing support: {deficiency:.1%} of the target's pairs had logging propensity < {floor:g} "
                f"(limit {max_deficiency:.0%})"))
            continue
        est = ESTIMATORS[name](tau=tau) if name == "switch-dr" else ESTIMATORS[name]()
        iv = est.estimate_interval(data, alpha=alpha, n_bootstrap=n_bootstrap, random_state=random_state)
        out[name] = Estimate(est.estimate_policy_value(data), iv.low, iv.high)
    return OPEResult(policy=policy, n_windows=data.n_windows, n_target_pairs=data.n_pairs,
                     n_matched=int(data.matched.sum()), ess=effective_sample_size(data),
                     support_deficiency=deficiency, floor=floor, max_deficiency=max_deficiency, estimates=out,
                     switch_tau=tau, reward_model=reward_model, data=data)
