"""Independent references for the solvers (exhaustive enumeration and scipy's MILP, HiGHS), and a
base scorer whose scores are a known table (for scorers that add to a base)."""
from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from assign.scorer import Scorer
from assign.solve import Problem


def brute_force(p: Problem) -> tuple[int, float]:
    """Best (served, value) over every assignment, enumerated."""
    options = [[None] + [k for k in range(p.n_arcs) if p.contact[k] == i] for i in range(p.n_contacts)]
    best = (0, 0.0)
    for combo in itertools.product(*options):
        arcs = [k for k in combo if k is not None]
        used = np.bincount(p.resource[arcs], minlength=p.n_resources) if arcs else np.zeros(1)
        if arcs and (used > p.capacity).any():
            continue
        cand = (len(arcs), float(p.value[arcs].sum()) if arcs else 0.0)
        if cand[0] > best[0] or (cand[0] == best[0] and cand[1] > best[1] + 1e-12):
            best = cand
    return best


def milp_reference(p: Problem) -> tuple[int, float]:
    """Independent optimum: HiGHS MILP, served count first (big weight), value second."""
    if p.n_arcs == 0:
        return 0, 0.0
    big = p.n_contacts * float(np.ptp(p.value)) + 1.0
    a_c = coo_matrix((np.ones(p.n_arcs), (p.contact, np.arange(p.n_arcs))), shape=(p.n_contacts, p.n_arcs))
    a_r = coo_matrix((np.ones(p.n_arcs), (p.resource, np.arange(p.n_arcs))), shape=(p.n_resources, p.n_arcs))
    res = milp(c=-(big + p.value - p.value.min()), integrality=np.ones(p.n_arcs),
               bounds=Bounds(0, 1),
               constraints=[LinearConstraint(a_c, 0, 1), LinearConstraint(a_r, 0, p.capacity)])
    assert res.status == 0
    x = np.rint(res.x).astype(bool)
    return int(x.sum()), float(p.value[x].sum())


class TableScorer(Scorer):
    """A base scorer with a fixed (agent, intent) table of scores."""

    name = "table"

    def __init__(self, table: np.ndarray) -> None:
        self.table = table

    def score_pairs(self, snapshot, *, contact_idx, agent_idx):
        return self.table[agent_idx, snapshot.contacts.intent[contact_idx]]
