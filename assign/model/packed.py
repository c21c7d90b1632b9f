"""Every target's trees in one cache-friendly array set, traversed in numba: the fast exact path.

Why: the tick scores ~20k pairs with ~100 depth-5 trees over three targets; xgboost's
``inplace_predict`` is called once per target and walks pointer-linked nodes. Here:

- each tree is padded to a *perfect* binary tree of the forest's depth ``D`` (breadth-first:
  node ``k`` has children ``2k+1`` and ``2k+2``; a leaf above depth ``D`` becomes a subtree
  whose leaves all hold its value), so a row takes exactly ``D`` branch-free steps and no
  "is this a leaf?" test;
- the trees of all targets share one set of arrays (``feat`` int32, ``thresh`` float32,
  ``nan_left`` bool, ``leaf`` float32) with the target of each tree in ``tree_target``, one
  call predicting every target;
- rows go in blocks of :data:`BLOCK`: for each tree, level by level, every row of the block
  takes one step. The steps of different rows are independent (instruction-level parallelism
  and SIMD gathers instead of one dependent load chain per row), and one tree's nodes serve
  the whole block while they are in L1.

Exactness: a row goes left when ``x < threshold`` in float32, or when ``x`` is NaN and the node's
default is left (as xgboost). Leaf values are summed in float32 in tree order on top of the
per-target bias (as xgboost's CPU predictor), then widened; the bias is measured from xgboost
itself (margin of an all-missing row minus that row's leaf sum). No fastmath: it would assume
away the NaN that mark missing values. Tests check the predictions equal ``Booster.predict``
to 1e-6 on the benchmark's pairs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from numba import njit

from assign import parallel
from assign.errors import ModelError

#: Rows per block: the block's node indices and feature rows stay in L1 while a tree is walked.
BLOCK = 64
#: Deepest forest packed (a perfect tree of depth D has 2**D leaves); deeper ones stay on xgboost.
MAX_DEPTH = 10
#: Rows a thread must get before the forest splits its rows (a thread hand-off costs ~0.05 ms,
#: a row ~1 µs): smaller batches stay on the calling thread.
MIN_ROWS_PER_THREAD = 2048


@njit(cache=True, nogil=True)
def _has_nan(Xf, lo, hi):
    for q in range(lo, hi):
        if Xf[q] != Xf[q]:
            return True
    return False


@njit(cache=True, nogil=True)
def _predict_packed(Xf, n_features, feat, thresh, nan_left, leaf, tree_target, depth, bias, out):
    """``out[i, t]`` = bias[t] + sum of target t's leaves for row i (float32, tree order).
    ``Xf`` is the row-major matrix raveled; blocks without NaN skip the default-direction test."""
    n, n_trees, n_targets = out.shape[0], feat.shape[0], out.shape[1]
    first_leaf = (1 << depth) - 1
    idx = np.zeros(BLOCK, dtype=np.int64)
    base = np.zeros(BLOCK, dtype=np.int64)
    acc = np.zeros((n_targets, BLOCK), dtype=np.float32)
    for start in range(0, n, BLOCK):
        nb = min(BLOCK, n - start)
        nan = _has_nan(Xf, start * n_features, (start + nb) * n_features)
        for r in range(nb):
            base[r] = (start + r) * n_features
            for g in range(n_targets):
                acc[g, r] = bias[g]
        for t in range(n_trees):
            f, th, dl, lv, a = feat[t], thresh[t], nan_left[t], leaf[t], acc[tree_target[t]]
            for r in range(nb):
                idx[r] = 0
            for _ in range(depth):
                if nan:
                    for r in range(nb):
                        k = idx[r]
                        x = Xf[base[r] + f[k]]
                        idx[r] = 2 * k + 2 - ((x < th[k]) | ((x != x) & dl[k]))
                else:
                    for r in range(nb):
                        k = idx[r]
                        idx[r] = 2 * k + 2 - (Xf[base[r] + f[k]] < th[k])
            for r in range(nb):
                a[r] += lv[idx[r] - first_leaf]
        for r in range(nb):
            for g in range(n_targets):
                out[start + r, g] = acc[g, r]


@dataclass(frozen=True, eq=False)
class PackedForest:
    """The trees of several boosters (one per target) as perfect trees of depth ``depth``."""

    targets: tuple[str, ...]
    feat: np.ndarray         # int32 (n_trees, 2**depth - 1)
    thresh: np.ndarray       # float32, same shape
    nan_left: np.ndarray     # bool, same shape
    leaf: np.ndarray         # float32 (n_trees, 2**depth)
    tree_target: np.ndarray  # int32 (n_trees,)
    depth: int
    bias: np.ndarray         # float32 (n_targets,): margin of the empty sum, from xgboost
    logistic: tuple[bool, ...]
    n_features: int

    @property
    def n_trees(self) -> int:
        return int(self.feat.shape[0])

    def margins(self, X: np.ndarray, *, threads: int | None = None) -> np.ndarray:
        """Margins, (n_rows, n_targets) float64; ``X`` float32 (n_rows, n_features). ``threads``
        (None: :func:`assign.parallel.threads`, the router's setting): the rows cut into
        contiguous ranges of whole blocks, one kernel call per range (:mod:`assign.parallel`);
        every row's result is the same bits whatever the count."""
        if X.dtype != np.float32 or X.ndim != 2 or X.shape[1] != self.n_features:
            raise ModelError(f"packed forest expects float32 rows of {self.n_features} features, "
                             f"got {X.dtype} {X.shape}")
        out = np.empty((X.shape[0], len(self.targets)), dtype=np.float32)
        Xc, nf = np.ascontiguousarray(X), self.n_features
        n_threads = parallel.threads() if threads is None else threads
        parts = parallel.ranges(len(X), parts=n_threads, min_rows=MIN_ROWS_PER_THREAD, align=BLOCK)

        def rows(lo: int, hi: int) -> None:
            _predict_packed(Xc[lo:hi].reshape(-1), nf, self.feat, self.thresh, self.nan_left, self.leaf,
                            self.tree_target, self.depth, self.bias, out[lo:hi])

        parallel.run(rows, parts, threads=n_threads)
        return out.astype(np.float64)

    def predict(self, X: np.ndarray, *, threads: int | None = None) -> dict[str, np.ndarray]:
        """Per-target predictions on the output scale (probability for logistic objectives)."""
        return self.finish(self.margins(X, threads=threads))

    def finish(self, m: np.ndarray) -> dict[str, np.ndarray]:
        """Margins (n_rows, n_targets) to per-target predictions (sigmoid in float32, as xgboost)."""
        res = {}
        for g, name in enumerate(self.targets):
            col = m[:, g]
            if self.logistic[g]:
                col = (1.0 / (1.0 + np.exp(-col.astype(np.float32)))).astype(np.float64)
            res[name] = col
        return res


def _tree_depth(left: np.ndarray, right: np.ndarray) -> int:
    depth = np.zeros(len(left), dtype=np.int64)
    best = 0
    for k in range(len(left)):  # xgboost numbers a child after its parent
        if left[k] >= 0:
            depth[left[k]] = depth[right[k]] = depth[k] + 1
            best = max(best, int(depth[k]) + 1)
    return best


def _fill(tree: dict, depth: int, feat, thresh, nan_left, leaf) -> None:
    """Write one xgboost JSON tree into its perfect-tree rows (breadth-first positions)."""
    lc, rc = tree["left_children"], tree["right_children"]
    split, cond, dleft = tree["split_indices"], tree["split_conditions"], tree["default_left"]
    first_leaf = (1 << depth) - 1
    stack = [(0, 0, 0)]  # (xgboost node, position, level)
    while stack:
        node, pos, level = stack.pop()
        if lc[node] < 0:
            lo = pos  # the leftmost and rightmost leaf positions under pos at depth D
            for _ in range(depth - level):
                lo = 2 * lo + 1
            width = 1 << (depth - level)
            leaf[lo - first_leaf: lo - first_leaf + width] = cond[node]
            continue  # padded nodes keep feat 0, threshold inf: either way leads to this value
        feat[pos], thresh[pos], nan_left[pos] = split[node], cond[node], bool(dleft[node])
        stack.append((lc[node], 2 * pos + 1, level + 1))
        stack.append((rc[node], 2 * pos + 2, level + 1))


def pack_boosters(boosters: dict, *, n_features: int, learners: dict | None = None) -> PackedForest:
    """Pack ``boosters`` (target name -> xgboost Booster, gbtree, numeric splits) into one forest.
    ``learners``: target name -> the booster's parsed JSON ``learner`` object, when the caller
    has them (a model load parses each booster once). Raises :class:`ModelError` for what it
    cannot pack (callers keep xgboost then)."""
    names, trees_of, logistic, learners_in = tuple(boosters), {}, [], learners or {}
    learners = []
    for name, b in boosters.items():
        learner = learners_in[name] if name in learners_in else json.loads(b.save_raw("json"))["learner"]
        gb = learner["gradient_booster"]
        if gb.get("name", "gbtree") != "gbtree":
            raise ModelError(f"{name}: only gbtree boosters can be packed, got {gb.get('name')!r}")
        trees = gb["model"]["trees"]
        if any(t.get("categories_nodes") for t in trees):
            raise ModelError(f"{name}: categorical splits cannot be packed")
        if int(learner["learner_model_param"].get("num_target", "1")) != 1 or \
                int(learner["learner_model_param"].get("num_class", "0")) > 1:
            raise ModelError(f"{name}: only single-output boosters can be packed")
        trees_of[name] = trees
        learners.append(learner)
        logistic.append(learner["objective"]["name"] in ("binary:logistic", "reg:logistic"))
    all_trees = [(g, t) for g, n in enumerate(names) for t in trees_of[n]]
    depth = max([_tree_depth(np.asarray(t["left_children"]), np.asarray(t["right_children"]))
                 for _, t in all_trees] or [0])
    if depth > MAX_DEPTH:
        raise ModelError(f"trees of depth {depth} are deeper than the packed layout's {MAX_DEPTH}")
    n_trees, n_int = len(all_trees), (1 << depth) - 1
    feat = np.zeros((n_trees, max(n_int, 1)), np.int32)
    thresh = np.full((n_trees, max(n_int, 1)), np.inf, np.float32)
    nan_left = np.ones((n_trees, max(n_int, 1)), np.bool_)
    leaf = np.zeros((n_trees, 1 << depth), np.float32)
    for k, (_, t) in enumerate(all_trees):
        _fill(t, depth, feat[k], thresh[k], nan_left[k], leaf[k])
    pf = PackedForest(targets=names, feat=feat, thresh=thresh, nan_left=nan_left, leaf=leaf,
                      tree_target=np.array([g for g, _ in all_trees], np.int32), depth=depth,
                      bias=np.zeros(len(names), np.float32), logistic=tuple(logistic), n_features=int(n_features))
    return PackedForest(**{**pf.__dict__, "bias": _bias(pf, boosters, learners)})


def _probe_rows(pf: PackedForest, n_rows: int = 256) -> np.ndarray:
    """Rows that reach many leaves: each feature drawn from the forest's own thresholds (just
    below or at them), sometimes missing. Fixed seed: packing is deterministic."""
    rng = np.random.default_rng(0)
    X = np.full((n_rows, pf.n_features), np.nan, dtype=np.float32)
    for f in range(pf.n_features):
        th = pf.thresh[(pf.feat == f) & np.isfinite(pf.thresh)]
        if len(th):
            x = rng.choice(th, n_rows)
            X[:, f] = np.where(rng.random(n_rows) < 0.5, x, np.nextafter(x, np.float32(-np.inf)))
    X[rng.random(X.shape) < 0.1] = np.nan
    return X


def _bias(pf: PackedForest, boosters: dict, learners: list[dict]) -> np.ndarray:
    """Each target's base margin, float32. xgboost adds the trees to it in float32, so it must
    be exact: try the stored ``base_score`` (logit for logistic objectives, in float64 and in
    float32) and the measured margin of the probe rows' leaves; keep the first that reproduces
    xgboost's margins on every probe row, else the one closest to them."""
    probe = _probe_rows(pf)
    zero = pf.margins(probe)  # leaf sums on the bias 0
    out = np.zeros(len(pf.targets), np.float32)
    for g, (name, learner) in enumerate(zip(pf.targets, learners)):
        ref = np.asarray(boosters[name].inplace_predict(probe, predict_type="margin"), np.float32)
        base = float(str(learner["learner_model_param"]["base_score"]).strip("[]").split(",")[0])
        cands = [np.float32(base)]
        if pf.logistic[g] and 0.0 < base < 1.0:
            cands = [np.float32(np.log(base / (1.0 - base))),
                     np.float32(-np.log(np.float32(1.0) / np.float32(base) - np.float32(1.0)))]
        cands.append(np.float32(np.median(ref.astype(np.float64) - zero[:, g])))
        errs = []
        for c in cands:
            trial = PackedForest(**{**pf.__dict__, "bias": np.where(np.arange(len(out)) == g, c, 0).astype(np.float32)})
            errs.append(float(np.max(np.abs(trial.margins(probe)[:, g].astype(np.float32) - ref))))
        out[g] = cands[int(np.argmin(errs))]
    return out
