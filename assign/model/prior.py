"""A cheap prior for :class:`~assign.model.XGBScorer`: retrieval ranks by what the model will say.

The router's retrieval values every eligible pair with ``Prior``: an agent x intent table plus
a style bonus and a sentiment-handling term (:class:`assign.scorer.Prior`). Ranking by bare
proficiency loses 0.07-0.1% of the objective under the XGBoost scorer (issue 14): the model
also rewards the agent's track record on the intent, tenure, low load, and so on.

:class:`PriorFit` is a least-squares fit of the model's own pair values on terms that the
table can hold: per agent and intent (proficiency, its square, the agent's smoothed rate on
the intent and its count, their product), per agent (overall rate and count, handle ratio,
CSAT, tenure, sentiment handling, mean load), one offset per intent, and the two pair terms
the Prior has (style match, sentiment handling x negative sentiment). Contact-only features
shift every agent of a contact alike, so they are left out as additive terms; but the model's
ranking of agents changes with the contact (the world's resolution logit has proficiency x
complexity, and sentiment handling only counts on upset customers), so by default two more
tables of the same terms are fitted jointly, scaled by the contact's complexity and its
negative sentiment (``contact_layers``; the Prior's low-rank contact part). Measured on
xgb-1000x1000 peaks (docs/speed.md): R² 0.86 -> 0.95, pruning gap at top_k 16 0.10% -> 0.011%.
Fitted on a seeded sample of eligible pairs of one snapshot (:func:`fit_prior`), so a fitted
scorer is deterministic; it is saved next to the model (``prior.json``) and loaded with it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from assign.errors import InputError
from assign.scorer import Prior

#: The agent x intent terms, in the order of :attr:`PriorFit.coef` (then one offset per intent).
TERMS = ("prof", "prof2", "ai_rate", "ai_rate_x_prof", "ai_log_n", "rate", "log_n", "handle_ratio", "csat",
         "log_tenure", "handling", "load")
FILE = "prior.json"


N_PAIR_TERMS = 5  # the first five TERMS vary with the intent; the rest are the agent's


@lru_cache(maxsize=4)
def _code_map(agent_ids: tuple[str, ...]) -> dict[str, int]:
    """Agent id -> row of the model's agent state (built once per model, not per tick)."""
    return {k: n for n, k in enumerate(agent_ids)}


def _terms(model, snapshot) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The TERMS for this snapshot: agent x intent arrays (n_agents, n_intents) for the first
    :data:`N_PAIR_TERMS`, per-agent arrays (n_agents,) for the rest; NaN where unknown."""
    a, spec, state = snapshot.agents, model.spec, model.state
    codes_of = _code_map(tuple(state.agent_ids))
    codes = np.fromiter((codes_of.get(x, -1) for x in a.ids), dtype=np.int64, count=len(a))
    imap = {k: n for n, k in enumerate(spec.intents)}
    intents = np.array([imap.get(k, -1) for k in snapshot.intents], dtype=np.int64)
    m = spec.smoothing
    rel = spec.relative_rates
    af = state.agent_features(codes, prior_rate=spec.prior_rate, prior_csat=spec.prior_csat, m=m, relative=rel)
    n_a, n_i = a.skill.shape
    ai_rate, ai_n = state.pair_features(np.repeat(codes, n_i), np.tile(intents, n_a), np.repeat(af["rate"], n_i), m=m,
                                        relative=rel)
    prof = a.skill.astype(np.float64)
    ai_rate, ai_n = ai_rate.reshape(n_a, n_i), ai_n.reshape(n_a, n_i)
    pair = [prof, prof * prof, ai_rate, ai_rate * prof, ai_n]
    agent = [af["rate"], af["log_n"], af["handle_ratio"], af["csat"], np.log1p(a.tenure_days),
             a.sentiment_handling, a.load.mean(axis=1)]
    return pair, [np.asarray(v, dtype=np.float64) for v in agent]


def _design(model, snapshot, ci: np.ndarray, ai: np.ndarray) -> np.ndarray:
    """The TERMS of pairs (contact rows ``ci``, agent rows ``ai``): (n_pairs, len(TERMS))."""
    pair, agent = _terms(model, snapshot)
    q = snapshot.contacts.intent[ci]
    return np.column_stack([t[ai, q] for t in pair] + [t[ai] for t in agent])


#: Contact attributes that may scale a second agent x intent table (the prior's low-rank part).
CONTACT_TERMS = ("complexity", "neg_sentiment", "urgency")


def _contact_values(snapshot, names: tuple[str, ...]) -> np.ndarray:
    """(n_contacts, len(names)): each contact's value of each contact term (NaN as 0)."""
    c = snapshot.contacts
    cols = {"complexity": c.complexity, "neg_sentiment": np.maximum(-c.sentiment, 0.0), "urgency": c.urgency}
    unknown = [n for n in names if n not in cols]
    if unknown:
        raise ValueError(f"unknown contact terms {unknown}; expected some of {CONTACT_TERMS}")
    out = np.zeros((snapshot.n_contacts, len(names)))
    for r, n in enumerate(names):
        out[:, r] = np.nan_to_num(np.asarray(cols[n], np.float64))
    return out


def _table(model, snapshot, *, coef, fill, intent_offset: dict, default_offset: float,
           intent_slope: dict, terms: tuple | None = None) -> np.ndarray:
    """One agent x intent table (n_agents, n_intents): ``coef`` over :data:`TERMS` (NaN terms
    take ``fill``), plus an offset and a proficiency slope per intent. ``terms``: the
    snapshot's :func:`_terms` when already computed (one computation for every table)."""
    pair, agent = terms if terms is not None else _terms(model, snapshot)
    per_agent = np.zeros(snapshot.n_agents)
    for k, v in enumerate(agent, start=N_PAIR_TERMS):
        per_agent += coef[k] * np.where(np.isnan(v), fill[k], v)
    off = np.array([intent_offset.get(k, default_offset) for k in snapshot.intents])
    out = per_agent[:, None] + off[None, :]
    for k, v in enumerate(pair):
        out += coef[k] * np.where(np.isnan(v), fill[k], v)
    if intent_slope:
        mean = float(np.mean(list(intent_slope.values())))
        slope = np.array([intent_slope.get(k, mean) for k in snapshot.intents])
        out += slope[None, :] * pair[0]
    return out


@dataclass(frozen=True, kw_only=True)
class PriorFit:
    """Coefficients of the prior: ``coef`` over :data:`TERMS` (NaN terms take ``fill``), one
    offset per model intent (``intent_offset``, unknown intents take ``default_offset``),
    ``style_bonus`` and ``sentiment_coef`` as in :class:`~assign.scorer.Prior`.
    ``contact_layers``: one more table per contact term (a dict with ``term``, ``coef``,
    ``intent_offset``, ``default_offset``, ``intent_slope``), scaled by the contact's value of
    that term: the ranking of agents that changes with the contact (skill counts more on hard
    contacts)."""

    coef: tuple[float, ...]
    fill: tuple[float, ...]
    intent_offset: dict[str, float]
    default_offset: float
    style_bonus: float
    sentiment_coef: float
    r2: float          # on the fitting sample, for the record
    n_pairs: int
    intent_slope: dict[str, float] = field(default_factory=dict)  # per-intent proficiency coefficient
    contact_layers: tuple[dict, ...] = ()

    def table(self, model, snapshot, *, terms: tuple | None = None) -> np.ndarray:
        """The agent x intent table (n_agents, n_intents) of ``snapshot``."""
        return _table(model, snapshot, coef=self.coef, fill=self.fill, intent_offset=self.intent_offset,
                      default_offset=self.default_offset, intent_slope=self.intent_slope, terms=terms)

    def prior(self, model, snapshot) -> Prior:
        """The router's :class:`~assign.scorer.Prior` for this snapshot (rows in its agent order)."""
        weight = tables = None
        terms = _terms(model, snapshot)  # once per tick, shared by every table
        if self.contact_layers:
            weight = _contact_values(snapshot, tuple(d["term"] for d in self.contact_layers))
            tables = np.stack([_table(model, snapshot, coef=d["coef"], fill=self.fill,
                                      intent_offset=d["intent_offset"], default_offset=d["default_offset"],
                                      intent_slope=d["intent_slope"], terms=terms) for d in self.contact_layers])
        return Prior(agent_intent=self.table(model, snapshot, terms=terms), style_bonus=self.style_bonus,
                     sentiment_coef=self.sentiment_coef, contact_weight=weight, contact_tables=tables)

    def save(self, model_dir: str | Path) -> Path:
        p = Path(model_dir) / FILE
        p.write_text(json.dumps({"terms": TERMS, **self.__dict__}, indent=1))
        return p

    @classmethod
    def load(cls, model_dir: str | Path) -> PriorFit | None:
        """The saved prior of a model dir, None when it has none or it was fitted on other terms."""
        p = Path(model_dir) / FILE
        if not p.exists():
            return None
        d = json.loads(p.read_text())
        if tuple(d.pop("terms")) != TERMS:
            return None
        layers = tuple({**x, "coef": tuple(x["coef"])} for x in d.get("contact_layers", ()))
        return cls(**{**d, "coef": tuple(d["coef"]), "fill": tuple(d["fill"]), "contact_layers": layers})


def _sample(snapshot, *, n_pairs: int, rng: np.random.Generator, focus: float) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n_pairs`` distinct eligible pairs (skill > 0, language spoken): a share ``focus``
    among each sampled contact's 32 most proficient agents (where retrieval decides), the rest
    uniformly."""
    c, a = snapshot.contacts, snapshot.agents
    ci = rng.integers(0, snapshot.n_contacts, 8 * n_pairs)
    ai = rng.integers(0, snapshot.n_agents, 8 * n_pairs)
    ok = (a.skill[ai, c.intent[ci]] > 0) & a.speaks[ai, c.language[ci]]
    uniform = rng.permutation(np.unique(ci[ok] * snapshot.n_agents + ai[ok]))[:round((1 - focus) * n_pairs)]
    keys = [uniform]
    if focus > 0:
        rows = rng.choice(snapshot.n_contacts, min(snapshot.n_contacts, max(1, int(focus * n_pairs) // 32)),
                          replace=False)
        elig = (a.skill[:, c.intent[rows]].T > 0) & a.speaks[:, c.language[rows]].T
        prof = np.where(elig, a.skill[:, c.intent[rows]].T, -1.0)
        top = np.argsort(-prof, axis=1, kind="stable")[:, :32]
        good = np.take_along_axis(elig, top, axis=1)
        keys.append((np.repeat(rows, 32) * snapshot.n_agents + top.ravel())[good.ravel()])
    key = np.unique(np.concatenate(keys))
    return key // snapshot.n_agents, key % snapshot.n_agents


def fit_prior(scorer, snapshot, *, n_pairs: int = 16384, seed: int = 0, ridge: float = 1e-6,
              per_intent_slope: bool = True, focus: float = 0.0,
              contact_terms: tuple[str, ...] = ("complexity", "neg_sentiment")) -> PriorFit:
    """Fit the prior to ``scorer``'s values on a seeded sample of ``snapshot``'s eligible pairs.
    ``per_intent_slope``: proficiency gets one coefficient per intent (the model's value of a
    skill point differs by intent) instead of one for all. ``focus``: the share of the sample
    drawn among contacts' most proficient agents (measured neutral for the pruning gap).
    ``contact_terms`` (of :data:`CONTACT_TERMS`): each adds a table scaled by that contact
    value, fitted jointly (the terms, intent offsets and slopes times the contact value)."""
    model = scorer.model
    ci, ai = _sample(snapshot, n_pairs=n_pairs, rng=np.random.default_rng(seed), focus=focus)
    nt, ni, nr = len(TERMS), len(model.spec.intents), len(contact_terms)
    if len(ci) < 4 * (nt + ni + 2) * (1 + nr):
        raise InputError([(f"snapshot {snapshot.snapshot_id!r}: only {len(ci)} eligible pairs to fit the "
                          "prior on; fit it on a larger snapshot")], what="prior fit")
    y = scorer.score_pairs(snapshot, contact_idx=ci, agent_idx=ai)
    c, a = snapshot.contacts, snapshot.agents
    g = _design(model, snapshot, ci, ai)
    known = ~np.isnan(g)
    fill = np.where(known, g, 0.0).sum(axis=0) / np.maximum(known.sum(axis=0), 1)
    g = np.where(np.isnan(g), fill, g)
    imap = {k: n for n, k in enumerate(model.spec.intents)}
    q = np.array([imap.get(snapshot.intents[k], -1) for k in c.intent[ci]])
    onehot = np.zeros((len(ci), ni))
    onehot[q >= 0, q[q >= 0]] = 1.0
    style = ((c.style[ci] >= 0) & (c.style[ci] == a.style[ai])).astype(np.float64)
    neg = np.maximum(-c.sentiment[ci], 0.0) * a.sentiment_handling[ai]
    mu, sd = g.mean(axis=0), g.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (g - mu) / sd
    if per_intent_slope:
        z[:, 0] = 0.0  # proficiency enters through the per-intent slopes only
    slopes = onehot * g[:, :1] if per_intent_slope else np.zeros((len(ci), 0))
    layer = np.column_stack([z, onehot, slopes])  # what each contact term scales
    x = _contact_values(snapshot, tuple(contact_terms))[ci]
    D = np.column_stack([z, onehot, style, neg, np.ones(len(ci)), slopes] + [x[:, [r]] * layer for r in range(nr)])
    beta = np.linalg.solve(D.T @ D + ridge * len(ci) * np.eye(D.shape[1]), D.T @ y)
    resid = y - D @ beta
    seen = onehot.sum(axis=0) > 0
    base = np.concatenate([beta[:nt + ni], beta[nt + ni + 3:nt + ni + 3 + slopes.shape[1]]])
    coef, offsets, slope = _unpack(base, const=float(beta[nt + ni + 2]), mu=mu, sd=sd, intents=model.spec.intents,
                                   seen=seen, per_intent_slope=per_intent_slope)
    layers, at = [], nt + ni + 3 + slopes.shape[1]
    for name in contact_terms:
        cf, off, sl = _unpack(beta[at:at + layer.shape[1]], const=0.0, mu=mu, sd=sd, intents=model.spec.intents,
                              seen=seen, per_intent_slope=per_intent_slope)
        layers.append({"term": name, "coef": cf, "intent_offset": off, "intent_slope": sl,
                       "default_offset": float(np.mean(list(off.values()))) if off else 0.0})
        at += layer.shape[1]
    return PriorFit(coef=coef, fill=tuple(map(float, fill)), intent_offset=offsets, intent_slope=slope,
                    default_offset=float(np.mean(list(offsets.values()))) if offsets else float(beta[nt + ni + 2]),
                    style_bonus=float(beta[nt + ni]), sentiment_coef=float(beta[nt + ni + 1]),
                    r2=float(1.0 - resid.var() / y.var()) if y.var() > 0 else 1.0, n_pairs=len(ci),
                    contact_layers=tuple(layers))


def _unpack(b: np.ndarray, *, const: float, mu, sd, intents, seen, per_intent_slope: bool):
    """One table's coefficients from its block of the solution (standardised terms, intent
    one-hots, per-intent slopes): (coef over TERMS, intent offsets, intent slopes)."""
    nt, ni = len(TERMS), len(intents)
    coef = b[:nt] / sd
    const = const - float(coef @ mu)
    offsets = {k: float(b[nt + n] + const) for n, k in enumerate(intents) if seen[n]}
    slope = ({k: float(b[nt + ni + n]) for n, k in enumerate(intents) if seen[n]} if per_intent_slope else {})
    return tuple(map(float, coef)), offsets, slope
