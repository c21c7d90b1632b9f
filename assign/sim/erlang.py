"""Closed forms of the M/M/c queue (Erlang C) and of the M/M/n+M queue with exponential
patience (Erlang A): the references the simulator is checked against, and the first guess of
``assign staff``."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def erlang_c(*, agents: int, offered_erlangs: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with ``offered_erlangs`` = λ/µ < c.

    Computed through the Erlang B recursion (stable for hundreds of agents).
    """
    c, a = int(agents), float(offered_erlangs)
    if c < 1 or a <= 0:
        raise ValueError(f"need agents >= 1 and offered_erlangs > 0, got {agents}, {offered_erlangs}")
    if a >= c:
        raise ValueError(f"unstable queue: offered load {a} >= {c} agents")
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho + rho * b)


def mmc_mean_wait_s(*, agents: int, arrival_rate_per_s: float, mean_service_s: float) -> float:
    """Mean waiting time of all arrivals: ``C(c, a) / (c µ - λ)``."""
    a = arrival_rate_per_s * mean_service_s
    pw = erlang_c(agents=agents, offered_erlangs=a)
    return pw / (agents / mean_service_s - arrival_rate_per_s)


def mmc_service_level(*, agents: int, arrival_rate_per_s: float, mean_service_s: float, threshold_s: float) -> float:
    """P(wait <= threshold) = 1 - C(c, a) exp(-(c µ - λ) t)."""
    a = arrival_rate_per_s * mean_service_s
    pw = erlang_c(agents=agents, offered_erlangs=a)
    return 1.0 - pw * math.exp(-(agents / mean_service_s - arrival_rate_per_s) * threshold_s)


# --------------------------------------------------------------------------- Erlang A

@dataclass(frozen=True)
class ErlangA:
    """Steady-state measures of the M/M/n+M queue (Erlang A: exponential patience).

    ``p_wait``: an arrival finds every agent busy; ``p_abandon``: it hangs up before service;
    ``service_level``: it is answered within the threshold (over all arrivals);
    ``asa_s``: mean wait of the answered; ``mean_wait_s``: mean wait of all arrivals.
    """

    p_wait: float
    p_abandon: float
    service_level: float
    asa_s: float
    mean_wait_s: float


def erlang_a(*, agents: int, arrival_rate_per_s: float, mean_service_s: float, mean_patience_s: float,
             threshold_s: float = 20.0, tol: float = 1e-13) -> ErlangA:
    """Erlang A (M/M/n+M) closed forms on the birth-death chain of the number in system.

    States k <= n: pi_k ~ a^k / k!; k = n + m: pi_n * prod_{j=1..m} lambda / (n mu + j theta),
    truncated where the tail is below ``tol``. By PASTA an arrival finding m callers queued
    ahead moves forward at rate n mu + i theta (i ahead) and abandons at rate theta, so
    P(served | m ahead) = prod_{i=0..m} r_i / (r_i + theta) with r_i = n mu + i theta, its
    answer time is a chain of exponential stages (service level from the chain's transient
    law, scipy ``expm_multiply``), and the abandonment probability is theta E[Q] / lambda.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import expm_multiply

    n, lam, mu, theta = (
        int(agents),
        float(arrival_rate_per_s),
        1.0 / float(mean_service_s),
        1.0 / float(mean_patience_s),
    )
    if n < 1 or not (lam > 0 and mu > 0 and theta > 0 and threshold_s >= 0):
        raise ValueError(
            f"need agents >= 1 and positive rates, got n={agents}, lambda={arrival_rate_per_s}, "
            f"service {mean_service_s}, patience {mean_patience_s}"
        )
    a = lam / mu
    # log pi_k for k <= n (unnormalised), then the queue part until the tail is negligible.
    logp = [0.0]
    for k in range(1, n + 1):
        logp.append(logp[-1] + math.log(a) - math.log(k))
    q = [logp[-1]]
    m = 0
    while True:
        m += 1
        q.append(q[-1] + math.log(lam) - math.log(n * mu + m * theta))
        if (q[-1] - max(q) < math.log(tol) and n * mu + m * theta > lam) or m > 200_000:
            break
    logs = np.array(logp[:-1] + q)
    pi = np.exp(logs - logs.max())
    pi /= pi.sum()
    below, queue = pi[:n], pi[n:]  # queue[m]: n busy and m waiting
    ms = np.arange(len(queue))
    p_abandon = theta * float((ms * queue).sum()) / lam
    r = n * mu + ms * theta  # forward rate with m ahead
    p_served = np.cumprod(r / (r + theta))  # from m ahead, served before abandoning
    g = np.zeros(len(queue))  # E[wait * 1{served}] from m ahead
    prev = 0.0
    for i in range(len(queue)):
        g[i] = prev = p_served[i] / (r[i] + theta) + r[i] / (r[i] + theta) * prev
    # Transient chain of the tagged caller: states m ahead (0..M), then served; abandonment
    # is the missing mass. Column "served" of expm(Q t) = P(served by t | m ahead).
    size = len(queue) + 1
    rows = np.concatenate([ms, ms])
    cols = np.concatenate([ms, np.where(ms > 0, ms - 1, size - 1)])  # m -> m-1; 0 -> served (last)
    gen = coo_matrix((np.concatenate([-(r + theta), r]), (rows, cols)), shape=(size, size)).tocsc()
    e = np.zeros(size)
    e[-1] = 1.0
    within = expm_multiply(gen * threshold_s, e)[:-1] if threshold_s > 0 else np.zeros(len(queue))
    sl = float(below.sum() + (queue * within).sum())
    served = 1.0 - p_abandon
    asa = float((queue * g).sum()) / served if served > 0 else float("inf")
    return ErlangA(
        p_wait=float(queue.sum()),
        p_abandon=p_abandon,
        service_level=sl,
        asa_s=asa,
        mean_wait_s=float((ms * queue).sum()) / lam,
    )
