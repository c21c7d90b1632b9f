"""Seeded synthetic snapshots for the demo, tests and benchmarks.

Agents share a quality component (good agents are good at most intents, as in real centres)
plus per-intent noise on a sparse skill profile, which is what makes candidate pruning hard;
contacts draw intents from a skewed mix, most speak the majority language. Chat capacity goes
up to 3. Built straight into arrays, so large snapshots cost milliseconds.
"""
from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from assign.schema import CHANNELS, Agents, Contacts, Snapshot

LANGUAGES = ("en", "es", "fr", "de")
STYLES = ("analytical", "driver", "amiable", "expressive")


def synthetic_snapshot(*, n_contacts: int, n_agents: int, seed: int, n_intents: int = 24,
                       skill_density: float = 0.4, load_share: float = 0.3,
                       snapshot_id: str | None = None) -> Snapshot:
    """A realistic queue snapshot of ``n_contacts`` waiting and ``n_agents`` agents."""
    rng = np.random.default_rng(seed)
    intents = tuple(f"intent_{k:02d}" for k in range(n_intents))
    lang_p = np.array([0.7, 0.15, 0.1, 0.05])
    intent_p = rng.dirichlet(np.full(n_intents, 0.8))

    quality = rng.beta(4, 3, n_agents)
    has = rng.random((n_agents, n_intents)) < skill_density
    has[np.arange(n_agents), rng.integers(0, n_intents, n_agents)] = True
    skill = np.where(has, np.clip(quality[:, None] * 0.7 + rng.random((n_agents, n_intents)) * 0.3, 0.01, 1.0), 0.0)
    speaks = np.zeros((n_agents, len(LANGUAGES)), dtype=bool)
    speaks[:, 0] = rng.random(n_agents) < 0.92
    speaks[:, 1:] = rng.random((n_agents, len(LANGUAGES) - 1)) < np.array([0.3, 0.2, 0.1])
    speaks[~speaks.any(axis=1), 0] = True
    capacity = np.zeros((n_agents, len(CHANNELS)), dtype=np.int32)
    capacity[:, 0] = 1
    capacity[:, 1] = rng.integers(1, 4, n_agents)
    capacity[:, 2] = rng.integers(0, 3, n_agents)
    load = np.minimum(capacity, rng.binomial(capacity, load_share)).astype(np.int32)
    agents = Agents(
        ids=[f"a{j:05d}" for j in range(n_agents)], speaks=speaks, skill=skill,
        tenure_days=rng.gamma(2.0, 200.0, n_agents), sentiment_handling=rng.beta(3, 2, n_agents),
        style=rng.integers(-1, len(STYLES), n_agents), capacity=capacity, load=load,
        idle_s=rng.exponential(60.0, n_agents) * (load.sum(axis=1) == 0))
    contacts = Contacts(
        ids=[f"c{i:06d}" for i in range(n_contacts)],
        channel=rng.choice(len(CHANNELS), n_contacts, p=[0.5, 0.35, 0.15]),
        intent=rng.choice(n_intents, n_contacts, p=intent_p),
        language=rng.choice(len(LANGUAGES), n_contacts, p=lang_p),
        complexity=rng.beta(2, 3, n_contacts), urgency=rng.beta(2, 4, n_contacts),
        sentiment=np.clip(rng.normal(0.0, 0.45, n_contacts), -1, 1),
        waited_s=rng.exponential(25.0, n_contacts), style=rng.integers(-1, len(STYLES), n_contacts),
        customer_id=[f"cust{x:07d}" for x in rng.integers(0, 10 * max(n_contacts, 1), n_contacts)],
        customer_tier=rng.choice(np.array(["standard", "gold"], dtype=object), n_contacts, p=[0.85, 0.15]))
    return Snapshot(snapshot_id=snapshot_id or f"synthetic-{n_contacts}x{n_agents}-s{seed}",
                    at=datetime(2026, 1, 5, 10, 0, tzinfo=UTC), intents=intents,
                    languages=LANGUAGES, styles=STYLES, contacts=contacts, agents=agents)
