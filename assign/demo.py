"""The README's first command: one synthetic tick, solved and explained in plain text."""
from __future__ import annotations

from collections import Counter

import numpy as np

from assign.router import Router
from assign.schema import CHANNELS
from assign.solve.greedy import solve_in_order
from assign.workload import synthetic_snapshot


def demo_snapshot(*, n_contacts: int, n_agents: int, seed: int):
    """The demo's synthetic queue snapshot (what ``assign demo --save FILE`` writes)."""
    return synthetic_snapshot(n_contacts=n_contacts, n_agents=n_agents, seed=seed)


def run_demo(*, n_contacts: int, n_agents: int, seed: int, rows: int, saved_as: str | None = None) -> str:
    """Build a snapshot, route it, and compare with one-contact-at-a-time routing.
    ``saved_as``: where the snapshot was saved, for the closing hint."""
    snap = demo_snapshot(n_contacts=n_contacts, n_agents=n_agents, seed=seed)
    router = Router()
    result = router.tick(snap, explain=True)
    c, a = snap.contacts, snap.agents
    free = a.free.sum(axis=0)
    lines = [
        f"Queue snapshot {snap.snapshot_id}: {snap.n_contacts} contacts waiting, {snap.n_agents} agents "
        f"(free slots: " + ", ".join(f"{ch} {n}" for ch, n in zip(CHANNELS, free)) + ")",
        f"Batch assignment by {result.solver} (rule-based skill scorer) in {result.timings_ms['total']:.1f} ms:",
        f"  served {len(result.assignments)} of {snap.n_contacts}; "
        + (f"{len(result.unassigned)} stay queued ("
           + ", ".join(f"{r} {n}" for r, n in sorted(Counter(u.reason for u in result.unassigned).items()))
           + ")" if result.unassigned else "none left queued"),
    ]
    baseline = _one_at_a_time(router, snap)
    if baseline is not None:
        n_b, v_b = baseline
        lift = (result.objective - v_b) / abs(v_b) * 100 if v_b else float("nan")
        lines.append(f"  total value {result.objective:.2f} vs {v_b:.2f} routing one contact at a time, longest "
                     f"wait first ({lift:+.1f}%); served {len(result.assignments)} vs {n_b}")
    if result.assignments:
        prof = a.skill[result.agent_index, c.intent[result.contact_index]]
        lines.append(f"  mean proficiency of the chosen agent on the contact's intent: {prof.mean():.2f}")
    lines.append("")
    lines.append(f"  {'contact':<9} {'channel':<7} {'intent':<10} {'lang':<4} {'waited':>6}  ->  "
                 f"{'agent':<7} {'skill':>5} {'value':>6}  runner-up")
    pos = {cid: i for i, cid in enumerate(c.ids)}
    apos = {aid: j for j, aid in enumerate(a.ids)}
    for asg in sorted(result.assignments, key=lambda x: x.contact_id)[:rows]:
        i, j = pos[asg.contact_id], apos[asg.agent_id]
        alts = (result.explanations or {}).get(asg.contact_id, ())
        runner = f"{alts[0].agent_id} ({alts[0].why_not})" if alts else "-"
        lines.append(f"  {asg.contact_id:<9} {CHANNELS[c.channel[i]]:<7} {snap.intents[c.intent[i]]:<10} "
                     f"{snap.languages[c.language[i]]:<4} {c.waited_s[i]:>5.0f}s  ->  {asg.agent_id:<7} "
                     f"{a.skill[j, c.intent[i]]:>5.2f} {asg.value:>6.3f}  {runner}")
    if len(result.assignments) > rows:
        lines.append(f"  ... and {len(result.assignments) - rows} more")
    lines.append("")
    lines.append(f"Every assignment with its runner-ups: assign solve {saved_as} --explain" if saved_as else
                 "Every assignment with its runner-ups: assign demo --save snapshot.json, then "
                 "assign solve snapshot.json --explain")
    return "\n".join(lines)


def _one_at_a_time(router: Router, snap) -> tuple[int, float] | None:
    """Served count and total value when contacts are routed one by one, longest wait first,
    on the same candidate pairs and values as the batch (the per-arrival baseline)."""
    tp = router.problem(snap)
    if tp.problem.n_arcs == 0:
        return None
    waited = snap.contacts.waited_s[tp.c_order]
    sol = solve_in_order(tp.problem, contact_order=np.argsort(-waited, kind="stable"))
    return len(sol.arcs), tp.problem.objective(sol.arcs)
