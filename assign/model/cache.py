"""Scores cached across ticks: score only the pairs whose inputs changed since the last tick.

Consecutive windows share most contacts and agents, and a pair's value depends only on what
the scorer reads of the contact and of the agent. :class:`CachedScorer` wraps a scorer and
keys each contact and each agent by the exact bytes of every field the scorer reads
(:data:`CONTACT_KEY`, :data:`AGENT_KEY`; the contact's arrival time ``at - waited_s`` stands
for the waiting time, which grows every tick while the features only see the arrival), plus
the snapshot's vocabularies. Equal bytes get the same version number, changed bytes a new
one, so a pair (contact version, agent version) names its inputs exactly: a stale score can
never be returned. What the key leaves out (``waited_s`` itself, ``capacity``, ``idle_s``,
``extra``, ids) must not change the scorer's features; tests check this field by field.

The cache keeps the last call's pairs and older pairs whose contact and agent are unchanged
(retrieval's candidate set shifts from tick to tick), up to ``max_pairs`` more; a lock
serialises calls, so one instance is safe, though not concurrent, across threads.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

from assign.candidates import Prior
from assign.schema import Snapshot
from assign.scorer import Scorer
from assign.sim.view import RunInfo

#: Contact fields the scorers read (besides the arrival time ``at - waited_s``).
CONTACT_KEY = ("channel", "intent", "language", "complexity", "urgency", "sentiment", "style", "customer_id",
               "customer_tier")
#: Agent fields the scorers read (agent state is looked up by id).
AGENT_KEY = ("ids", "speaks", "skill", "tenure_days", "sentiment_handling", "style", "load")


def _row_keys(tag: str, block: Any, names: tuple[str, ...], extra: list[np.ndarray]) -> list[tuple]:
    """One hashable key per row: the bytes of the numeric fields, the objects of the rest."""
    numeric, objects = [], []
    for a in [np.asarray(getattr(block, n)) for n in names] + extra:
        (objects if a.dtype == object or a.dtype.kind in "US" else numeric).append(a)
    n = len(numeric[0]) if numeric else len(objects[0])
    raw = np.concatenate([np.ascontiguousarray(a).reshape(n, -1).view(np.uint8).reshape(n, -1) for a in numeric],
                         axis=1) if numeric else np.zeros((n, 0), np.uint8)
    raw = np.ascontiguousarray(raw)
    rows = raw.view(f"V{raw.shape[1]}").ravel().tolist() if raw.shape[1] else [b""] * n  # each row's bytes
    return list(zip(repeat(tag, n), rows, *(a.tolist() for a in objects)))


@dataclass(eq=False)
class CachedScorer(Scorer):
    """``inner`` with its pair scores reused across ticks while their inputs are unchanged."""

    inner: Scorer
    max_pairs: int = 1_000_000  # older live pairs kept beyond the last call's (16 bytes each)
    hits: int = 0
    misses: int = 0
    _versions: dict = field(default_factory=dict)   # row key -> version number
    _vocab: tuple = ()
    _next: int = 0
    _keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # sorted pair keys
    _vals: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.inner.name

    def warm_up(self) -> None:
        self.inner.warm_up()

    def prior(self, snapshot: Snapshot) -> Prior | None:
        return self.inner.prior(snapshot)

    def bind(self, run: RunInfo) -> None:
        self.inner.bind(run)

    def _version(self, keys: list[tuple], seen: dict) -> np.ndarray:
        """Each key's version: its last tick's, else a new one (equal keys share it)."""
        old = self._versions
        vs = [old.get(k) for k in keys]
        for i, v in enumerate(vs):
            if v is None:
                v = seen.get(keys[i])
                if v is None:
                    v = seen[keys[i]] = self._next
                    self._next += 1
                vs[i] = v
        seen.update(zip(keys, vs))
        return np.array(vs, dtype=np.int64)

    def score_pairs(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        ci, ai = np.asarray(contact_idx, np.int64), np.asarray(agent_idx, np.int64)
        c = snapshot.contacts
        arrival = snapshot.at.timestamp() - c.waited_s.astype(np.float64)
        with self._lock:
            vocab = (snapshot.intents, snapshot.languages, snapshot.styles)
            if vocab != self._vocab or self._next > 2 ** 31 - 2 * snapshot.n_contacts - 2 * snapshot.n_agents:
                # other vocabularies: codes mean other things; or versions would pass 32 bits
                self._next = 0
                self._versions, self._keys, self._vals, self._vocab = {}, self._keys[:0], self._vals[:0], vocab
            seen: dict = {}
            cv = self._version(_row_keys("contact", c, CONTACT_KEY, [arrival]), seen)
            av = self._version(_row_keys("agent", snapshot.agents, AGENT_KEY, []), seen)
            self._versions = seen  # only the current rows' versions can be met again
            key = (cv[ci] << np.int64(32)) | av[ai]
            pos = np.minimum(np.searchsorted(self._keys, key), max(len(self._keys) - 1, 0))
            hit = (self._keys[pos] == key) if len(self._keys) else np.zeros(len(key), bool)
            out = np.empty(len(key))
            out[hit] = self._vals[pos[hit]]
            miss = ~hit
            if miss.any():
                out[miss] = np.asarray(self.inner.score_pairs(snapshot, contact_idx=ci[miss], agent_idx=ai[miss]),
                                       dtype=np.float64)
            self.hits += int(hit.sum())
            self.misses += int(miss.sum())
            self._keep(key, out, cv, av)
        return out

    def _keep(self, key: np.ndarray, val: np.ndarray, cv: np.ndarray, av: np.ndarray) -> None:
        """Cache this call's pairs plus the older ones whose contact and agent are still
        current (same versions), newest first, at most ``max_pairs``."""
        old_c, old_a = self._keys >> np.int64(32), self._keys & np.int64(0xFFFFFFFF)
        live = np.isin(old_c, cv) & np.isin(old_a, av)
        keys = np.concatenate([key, self._keys[live]])
        vals = np.concatenate([val, self._vals[live]])
        keys, first = np.unique(keys[:self.max_pairs + len(key)], return_index=True)
        self._keys, self._vals = keys, vals[first]
