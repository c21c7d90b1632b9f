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


def _known(model, snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per contact: intent known, language known; per agent: agent known."""
    spec, c, a = model.spec, snapshot.contacts, snapshot.agents
    known_intents, known_langs, known_agents = set(spec.intents), set(spec.languages), set(model.state.agent_ids)
    intents = np.array([x in known_intents for x in snapshot.intents], dtype=bool)
    langs = np.array([x in known_langs for x in snapshot.languages], dtype=bool)
    agents = np.array([x in known_agents for x in a.ids], dtype=bool)
    return intents[c.intent], langs[c.language.astype(np.int64)], agents


def out_of_domain(model, snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> dict[str, np.ndarray]:
    """Per pair: unknown intent, unknown language, unknown agent (boolean arrays)."""
    intent, lang, agent = _known(model, snapshot)
    ci, ai = np.asarray(contact_idx, dtype=np.int64), np.asarray(agent_idx, dtype=np.int64)
    return {"intent": ~intent[ci], "language": ~lang[ci], "agent": ~agent[ai]}


def domain_report(model, snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> dict[str, int]:
    """Counts of out-of-domain pairs among the given ones, by reason and in all."""
    m = out_of_domain(model, snapshot, contact_idx=contact_idx, agent_idx=agent_idx)
    any_ = m["intent"] | m["language"] | m["agent"]
    return {"pairs": len(any_), "out_of_domain": int(any_.sum()),
            "unknown_intent": int(m["intent"].sum()), "unknown_language": int(m["language"].sum()),
            "unknown_agent": int(m["agent"].sum())}


def grid_report(model, snapshot) -> dict[str, int]:
    """:func:`domain_report` over every contact x agent pair of the snapshot, counted from the
    per-contact and per-agent flags (no grid is built, so it stays cheap on large ticks)."""
    intent, lang, agent = _known(model, snapshot)
    n_c, n_a = len(intent), len(agent)
    known_c, known_a = int((intent & lang).sum()), int(agent.sum())
    return {"pairs": n_c * n_a, "out_of_domain": n_c * n_a - known_c * known_a,
            "unknown_intent": int((~intent).sum()) * n_a, "unknown_language": int((~lang).sum()) * n_a,
            "unknown_agent": int((~agent).sum()) * n_c}


def with_domain(result, *, model, snapshot):
    """``result`` with ``domain`` set: out-of-domain counts over the snapshot's contact x agent
    grid, and how many of the assigned pairs are among them."""
    from dataclasses import replace

    assigned = domain_report(model, snapshot, contact_idx=result.contact_index, agent_idx=result.agent_index)
    return replace(result, domain={**grid_report(model, snapshot),
                                   "assigned_out_of_domain": assigned["out_of_domain"]})


def history_in_domain(model, history: pd.DataFrame) -> np.ndarray:
    """Per history row: the model knows its intent, language and agent (what :func:`_known`
    decides for a tick's pairs), so a prediction for it is evidence."""
    intent = history["intent"].astype(str).isin(set(model.spec.intents)).to_numpy()
    language = history["language"].astype(str).isin(set(model.spec.languages)).to_numpy()
    return intent & language & history["agent_id"].astype(str).isin(set(model.state.agent_ids)).to_numpy()


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
