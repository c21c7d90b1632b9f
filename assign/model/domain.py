"""What a model knows: the intents, languages and agents it was trained on.

A pair whose contact's intent or language, or whose agent, the model never saw is *out of
domain*: its features hold codes the trees never split on, so a prediction for it is not
evidence. The scorer counts such pairs and scores them by the fallback documented in
:meth:`assign.model.scorer.XGBScorer.score_pairs` (the mean score of the tick's in-domain
pairs, or one shared constant when none is in domain), so the solve ranks them on aging,
fairness and eligibility only; ``assign solve`` reports the counts.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: Below this share of the history's rows with an intent (or an agent) the model knows, evaluate
#: and predict warn that the model is applied outside its domain.
MIN_OVERLAP = 0.5


def out_of_domain(model, snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> dict[str, np.ndarray]:
    """Per pair: unknown intent, unknown language, unknown agent (boolean arrays)."""
    spec = model.spec
    c, a = snapshot.contacts, snapshot.agents
    intents = np.array([x in set(spec.intents) for x in snapshot.intents], dtype=bool)
    langs = np.array([x in set(spec.languages) for x in snapshot.languages], dtype=bool)
    known_agents = set(model.state.agent_ids)
    agents = np.array([x in known_agents for x in a.ids], dtype=bool)
    ci, ai = np.asarray(contact_idx, dtype=np.int64), np.asarray(agent_idx, dtype=np.int64)
    return {"intent": ~intents[c.intent[ci]], "language": ~langs[c.language[ci].astype(np.int64)],
            "agent": ~agents[ai]}


def domain_report(model, snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> dict[str, int]:
    """Counts of out-of-domain pairs among the given ones, by reason and in all."""
    m = out_of_domain(model, snapshot, contact_idx=contact_idx, agent_idx=agent_idx)
    any_ = m["intent"] | m["language"] | m["agent"]
    return {"pairs": len(any_), "out_of_domain": int(any_.sum()),
            "unknown_intent": int(m["intent"].sum()), "unknown_language": int(m["language"].sum()),
            "unknown_agent": int(m["agent"].sum())}


def history_overlap(model, history: pd.DataFrame) -> list[str]:
    """Warnings when the history's intents or agents barely overlap the model's."""
    out = []
    spec_intents, agents = set(model.spec.intents), set(model.state.agent_ids)
    intent = history["intent"].dropna().astype(str)
    if len(intent):
        share = float(intent.isin(spec_intents).mean())
        if share < MIN_OVERLAP:
            out.append(f"only {share:.0%} of the history's rows have an intent the model was trained on "
                       f"({len(set(intent) - spec_intents)} unknown intents): scores there are not evidence")
    agent = history["agent_id"].dropna().astype(str) if "agent_id" in history else pd.Series([], dtype=str)
    if len(agent):
        share = float(agent.isin(agents).mean())
        if share < MIN_OVERLAP:
            out.append(f"only {share:.0%} of the history's served rows have an agent the model has seen "
                       f"({len(set(agent) - agents)} unknown agents)")
    return out
