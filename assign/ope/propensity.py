"""Pair propensities of a perturbed matching: how often each candidate arc is chosen.

The exploring logging policy (``assign.ope.logging_policy``) solves the router's problem
exactly after adding ``temperature * Gumbel(0, 1)`` noise to every arc value. One contact's
chance of one agent then depends on the whole window (capacity is shared), so it has no
closed form in general; it is estimated by re-solving many independent draws.

Two facts keep that cheap and exact where it can be:

- the solver's answer decomposes over the connected components of the candidate graph
  (contacts - agent channels), and arcs' noises are independent, so each component is
  estimated on its own;
- a component with one contact is a Gumbel-max draw: its propensities are exactly
  ``softmax(value / temperature)`` (Luce's choice axiom), no draws needed.

For a larger component, every draw's optimum is found among the component's feasible
assignments of maximum size (the solver serves as many contacts as it can, then maximises
value): they are enumerated once when there are at most ``max_matchings`` of them, and each
draw is then a matrix product and an argmax; past that, the component is re-solved with the
router's flow solver once per draw. ``tests/test_ope_propensity.py`` checks both paths
against the empirical frequencies of the solver's own choices.
"""
from __future__ import annotations

import numpy as np

from assign.solve import SOLVERS, Problem

#: Components with more maximum-size assignments than this are re-solved draw by draw.
MAX_MATCHINGS = 4096


def perturb(problem: Problem, *, temperature: float, rng: np.random.Generator) -> Problem:
    """The problem with ``temperature * Gumbel(0, 1)`` added to every arc value."""
    noise = rng.gumbel(size=problem.n_arcs) * temperature
    return Problem(n_contacts=problem.n_contacts, contact=problem.contact, resource=problem.resource,
                   value=problem.value + noise, capacity=problem.capacity)


def components(problem: Problem) -> np.ndarray:
    """Component label of every arc (contacts and resources joined by arcs), by union-find:
    windows are small, and this runs once per window."""
    parent = list(range(problem.n_contacts + problem.n_resources))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    n_c = problem.n_contacts
    for c, r in zip(problem.contact.tolist(), problem.resource.tolist()):
        a, b = find(c), find(n_c + r)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([find(c) for c in problem.contact.tolist()], dtype=np.int64)


def arc_propensities(problem: Problem, *, temperature: float, n_draws: int,
                     rng: np.random.Generator) -> np.ndarray:
    """P(arc chosen) for every arc of ``problem`` under the perturbed exact solve."""
    p = np.zeros(problem.n_arcs)
    if problem.n_arcs == 0:
        return p
    if temperature <= 0:  # deterministic: the solver's own answer
        p[SOLVERS["flow"](problem).arcs] = 1.0
        return p
    if len(np.unique(problem.contact)) == 1:  # one contact: one component
        return _component(problem, np.arange(problem.n_arcs), temperature=temperature, n_draws=n_draws, rng=rng)
    label = components(problem)
    for comp in np.unique(label):
        arcs = np.flatnonzero(label == comp)
        p[arcs] = _component(problem, arcs, temperature=temperature, n_draws=n_draws, rng=rng)
    return p


def _component(problem: Problem, arcs: np.ndarray, *, temperature: float, n_draws: int,
               rng: np.random.Generator) -> np.ndarray:
    contact, resource, value = problem.contact[arcs], problem.resource[arcs], problem.value[arcs]
    cap = problem.capacity[resource]
    if len(np.unique(contact)) == 1 and (cap > 0).all():
        z = value / temperature
        e = np.exp(z - z.max())
        return e / e.sum()
    sets = _max_assignments(contact, resource, problem.capacity, limit=MAX_MATCHINGS)
    if sets is not None:
        inc = np.zeros((len(sets), len(arcs)))
        for k, s in enumerate(sets):
            inc[k, s] = 1.0
        counts = np.zeros(len(arcs))
        for lo in range(0, n_draws, 512):  # bounded memory
            m = min(512, n_draws - lo)
            v = value[None, :] + temperature * rng.gumbel(size=(m, len(arcs)))
            best = np.argmax(v @ inc.T, axis=1)
            counts += inc[best].sum(axis=0)
        return counts / n_draws
    return _resolve_draws(problem, arcs, temperature=temperature, n_draws=n_draws, rng=rng)


def _resolve_draws(problem: Problem, arcs: np.ndarray, *, temperature: float, n_draws: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Re-solve the component ``n_draws`` times with the flow solver."""
    c_old, c_new = np.unique(problem.contact[arcs], return_inverse=True)
    r_old, r_new = np.unique(problem.resource[arcs], return_inverse=True)
    sub = Problem(n_contacts=len(c_old), contact=c_new, resource=r_new, value=problem.value[arcs],
                  capacity=problem.capacity[r_old])
    return draw_frequencies(lambda g: SOLVERS["flow"](perturb(sub, temperature=temperature, rng=g)).arcs,
                            n_arcs=len(arcs), n_draws=n_draws, rng=rng)


def draw_frequencies(choose, *, n_arcs: int, n_draws: int, rng: np.random.Generator,
                     logged: np.ndarray | None = None) -> np.ndarray:
    """P(arc chosen) estimated by re-solving draws: ``choose(rng)`` makes one independent
    draw of a randomised policy and returns the arcs it picks. ``logged`` (the arcs of the
    draw that was actually used) counts as one more draw of the same law, so a logged arc
    never gets propensity 0. Any randomised exact-solve policy (Gumbel perturbation here,
    Thompson draws in ``assign.learn.explore``) is estimated by this one loop."""
    counts = np.zeros(n_arcs)
    for _ in range(n_draws):
        counts[np.asarray(choose(rng), np.int64)] += 1
    if logged is None:
        return counts / max(n_draws, 1)
    counts[np.asarray(logged, np.int64)] += 1
    return counts / (n_draws + 1)


def _max_assignments(contact: np.ndarray, resource: np.ndarray, capacity: np.ndarray, *,
                     limit: int) -> list[list[int]] | None:
    """Every feasible set of arcs (one per contact at most, within capacity) of maximum size,
    as lists of local arc indices; None when there are more than ``limit`` of them."""
    order = np.unique(contact)
    by_contact = [np.flatnonzero(contact == c) for c in order]
    left = {int(r): int(capacity[r]) for r in np.unique(resource)}
    best: list[list[int]] = []
    size = [0]
    n = len(by_contact)
    chosen: list[int] = []
    budget = [limit * 64]  # nodes visited: bound the search itself too

    def walk(k: int) -> bool:
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if len(chosen) + (n - k) < size[0]:
            return True  # cannot reach the best size any more
        if k == n:
            if len(chosen) > size[0]:
                size[0] = len(chosen)
                best.clear()
            best.append(list(chosen))
            return len(best) <= limit
        for a in by_contact[k]:
            r = int(resource[a])
            if left[r] > 0:
                left[r] -= 1
                chosen.append(int(a))
                ok = walk(k + 1)
                chosen.pop()
                left[r] += 1
                if not ok:
                    return False
        return walk(k + 1)

    return best if walk(0) else None
