"""Closed forms of the M/M/c queue (Erlang C): the reference the simulator is checked against
and a quick staffing aid."""
from __future__ import annotations

import math


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
