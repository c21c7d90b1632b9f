"""Randomisation inference for switchback experiments, and a test for carryover.

A switchback randomises (site, window) cells by hashing (``randomise.Switchback``); the queue
carries one window's decisions into the next, so rows are neither independent nor cleanly
clustered. Randomisation inference (Bojinov, Simchi-Levi and Zhao 2022) needs neither: under
the sharp null (the change affects no contact), the outcomes are fixed and only the window
assignment is random, so the test statistic's distribution is that of the same statistic
over assignments re-drawn from the design itself: the same hashing with salts
``f"{salt}|ri{r}"``. Each re-draw recomputes which windows switched, and so which rows fall
in a burn-in, exactly as the analysis of the real assignment does. The p-value
``(1 + #{|T_r| >= |T_obs|}) / (1 + R)`` is exact (size <= alpha for any data).

The statistic is the difference of arm means over the rows outside burn-ins. The interval
inverts the test under a constant additive effect tau on the rows of treatment windows:
every re-drawn statistic is then linear in tau, ``a_r - tau b_r``, and the observed one is
``T_obs - tau``, so the whole p-value curve comes from one pass.

Carryover: does the previous window's arm predict this window's outcome? The weighted
regression of window means (all rows, burn-in included) on the current and the previous
arm, its coefficient on the previous arm, tested against the same re-draws.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from assign.errors import InputError
from assign.experiment.randomise import Switchback, arms_of


@dataclass(frozen=True)
class Cells:
    """Per (site, window) cell: its site, window index, and sums and counts of the outcome
    over all its rows and over the rows after the burn-in."""

    site: np.ndarray
    window: np.ndarray
    n_all: np.ndarray
    s_all: np.ndarray
    n_post: np.ndarray
    s_post: np.ndarray


def cells_of(y, seconds, design: Switchback, sites=None) -> Cells:
    """Aggregate rows (outcome ``y``, ``seconds`` since the design's origin) into cells."""
    y = np.asarray(y, dtype=np.float64)
    seconds = np.asarray(seconds, dtype=np.float64)
    if y.shape != seconds.shape or not np.all(np.isfinite(seconds)):
        raise InputError(["switchback: outcome and time must have the same length and finite times"],
                         what="experiment data")
    site = np.full(y.shape, "all", dtype=object) if sites is None else np.asarray(sites).astype(str)
    k = np.floor(seconds / design.window_s).astype(np.int64)
    post = (seconds - k * design.window_s) >= design.burn_in_s
    keys, codes = np.unique(np.char.add(np.char.add(site.astype(str), "|"), k.astype(str)),
                            return_inverse=True)
    codes = codes.ravel()
    n = len(keys)
    parts = [s.rsplit("|", 1) for s in keys]
    return Cells(site=np.array([p[0] for p in parts], dtype=object),
                 window=np.array([int(p[1]) for p in parts], dtype=np.int64),
                 n_all=np.bincount(codes, minlength=n).astype(np.float64),
                 s_all=np.bincount(codes, y, minlength=n),
                 n_post=np.bincount(codes, post.astype(np.float64), minlength=n),
                 s_post=np.bincount(codes, np.where(post, y, 0.0), minlength=n))


def draw_salts(salt: str, draws: int) -> list[str]:
    """The salts of the re-drawn assignments; index 0 is the real one."""
    return [salt, *(f"{salt}|ri{r}" for r in range(1, draws + 1))]


def assignments(cells: Cells, design: Switchback, salts) -> tuple[np.ndarray, np.ndarray]:
    """(arm names of each cell, whether the cell's arm differs from its previous window's),
    one row per salt: the design's own hashing with each salt."""
    ids = [f"{s}|{w}" for s, w in zip(cells.site, cells.window)]
    prev = [f"{s}|{w - 1}" for s, w in zip(cells.site, cells.window)]
    arms = np.empty((len(salts), len(ids)), dtype=object)
    switched = np.empty((len(salts), len(ids)), dtype=bool)
    for r, salt in enumerate(salts):
        a = arms_of(ids + prev, salt=salt, arms=design.arms, weights=design.weights)
        arms[r] = a[: len(ids)]
        switched[r] = a[: len(ids)] != a[len(ids):]
    return arms, switched


@dataclass(frozen=True)
class RITest:
    """Observed difference, its randomisation p-value, the randomisation standard deviation of
    the statistic under the null, the inverted interval (None unless asked) and the draws used."""

    diff: float
    p_value: float
    se: float
    ci_low: float | None
    ci_high: float | None
    draws: int
    mean_treatment: float
    mean_control: float
    n_treatment: float
    n_control: float


def _sums(cells: Cells, arms, switched, arm: str, extra=None):
    n_inc = np.where(switched, cells.n_post, cells.n_all)
    s_inc = np.where(switched, cells.s_post, cells.s_all)
    m = arms == arm
    N = (m * n_inc).sum(axis=1)
    S = (m * s_inc).sum(axis=1)
    E = None if extra is None else (m * n_inc * extra).sum(axis=1)
    return N, S, E


def ri_test(cells: Cells, arms, switched, *, treatment: str, control: str, alpha: float = 0.05,
            interval: bool = True) -> RITest:
    """The randomisation test from :func:`assignments` (row 0 = the real assignment)."""
    # rows of treatment windows, per cell: all rows when the real arm is treatment
    treat_rows_all = cells.n_all * (arms[0] == treatment)
    treat_rows_post = cells.n_post * (arms[0] == treatment)
    n_t, s_t, _ = _sums(cells, arms, switched, treatment)
    n_c, s_c, _ = _sums(cells, arms, switched, control)
    e_t = (arms == treatment) * np.where(switched, treat_rows_post, treat_rows_all)
    e_c = (arms == control) * np.where(switched, treat_rows_post, treat_rows_all)
    ok = (n_t > 0) & (n_c > 0)
    if not ok[0]:
        raise InputError([f"switchback: arm '{treatment}' or '{control}' has no rows outside burn-in"],
                         what="experiment analysis")
    a = np.divide(s_t, n_t, out=np.zeros_like(s_t), where=ok) - np.divide(s_c, n_c, out=np.zeros_like(s_c), where=ok)
    b = (np.divide(e_t.sum(axis=1), n_t, out=np.zeros_like(s_t), where=ok)
         - np.divide(e_c.sum(axis=1), n_c, out=np.zeros_like(s_c), where=ok))
    a_r, b_r = a[1:][ok[1:]], b[1:][ok[1:]]
    t_obs = float(a[0])
    tol = 1e-12 * max(1.0, abs(t_obs))
    p = float((1 + np.sum(np.abs(a_r) >= abs(t_obs) - tol)) / (1 + a_r.size))
    se = float(a_r.std(ddof=1)) if a_r.size > 1 else float("nan")
    lo = hi = None
    if interval and a_r.size and se > 0:
        taus = t_obs + np.linspace(-12 * se, 12 * se, 2401)
        extreme = np.abs(a_r[None, :] - taus[:, None] * b_r[None, :]) >= np.abs(t_obs - taus)[:, None] - tol
        pv = (1 + extreme.sum(axis=1)) / (1 + a_r.size)
        inside = taus[pv > alpha]
        if inside.size:
            lo, hi = float(inside.min()), float(inside.max())
    return RITest(t_obs, p, se, lo, hi, int(a_r.size), float(s_t[0] / n_t[0]), float(s_c[0] / n_c[0]),
                  float(n_t[0]), float(n_c[0]))


def carryover_test(cells: Cells, arms, *, treatment: str, control: str) -> tuple[float, float, int]:
    """(coefficient of the previous window's arm, its randomisation p-value, cells used):
    weighted (by rows) regression of window means on the current and previous arm, over cells
    whose previous window of the same site is in the data; all rows, burn-in included."""
    index = {(s, w): i for i, (s, w) in enumerate(zip(cells.site, cells.window))}
    cur_i, prev_i = [], []
    for i, (s, w) in enumerate(zip(cells.site, cells.window)):
        j = index.get((s, w - 1))
        if j is not None and cells.n_all[i] > 0:  # an empty window has no mean
            cur_i.append(i)
            prev_i.append(j)
    cur_i, prev_i = np.array(cur_i, dtype=np.int64), np.array(prev_i, dtype=np.int64)
    if cur_i.size < 4:
        return float("nan"), float("nan"), int(cur_i.size)
    w = cells.n_all[cur_i]
    m = cells.s_all[cur_i] / w
    c = (arms[:, cur_i] == treatment).astype(np.float64)
    pv = (arms[:, prev_i] == treatment).astype(np.float64)
    use = ((arms[:, cur_i] == treatment) | (arms[:, cur_i] == control)) & \
          ((arms[:, prev_i] == treatment) | (arms[:, prev_i] == control))
    ww = w[None, :] * use
    one = np.ones_like(c)
    cols = (one, c, pv)
    xtx = np.stack([np.stack([(ww * p * q).sum(axis=1) for q in cols], axis=-1) for p in cols], axis=-2)
    xty = np.stack([(ww * p * m[None, :]).sum(axis=1) for p in cols], axis=-1)
    det = np.linalg.det(xtx)
    good = np.abs(det) > 1e-9 * np.abs(xtx).max(axis=(1, 2)) ** 3
    if not good[0]:
        return float("nan"), float("nan"), int(cur_i.size)
    coef = np.full(len(arms), np.nan)
    coef[good] = np.linalg.solve(xtx[good], xty[good][..., None])[:, 2, 0]
    obs = float(coef[0])
    ref = coef[1:][good[1:] & np.isfinite(coef[1:])]
    if not math.isfinite(obs) or not ref.size:
        return float("nan"), float("nan"), int(cur_i.size)
    p = float((1 + np.sum(np.abs(ref) >= abs(obs) - 1e-12 * max(1.0, abs(obs)))) / (1 + ref.size))
    return obs, p, int(cur_i.size)
