"""Decision logs and on-policy truths from the simulator (the validation's two halves).

``log_replication`` runs the exploring router on one seed and returns its decision log;
``on_policy_value`` runs a target rule itself on the same seed (same contacts, same outcome
draws) and returns its true value: the mean true resolution probability of the contacts it
served (the world's ``p_resolved``, not the Bernoulli draws: the same estimand without the
coin-flip noise, which the estimators average over anyway); ``window_value`` is the true
value of the target's choices on the logged windows (what the estimators estimate, before
queue dynamics).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from assign.ope.evaluate import Pairs
from assign.ope.logging_policy import ExploringRouter, build_log
from assign.ope.logs import OPELog
from assign.ope.targets import SnapshotPolicy, WindowPolicy
from assign.schema import Contacts


def log_replication(*, source: Any, seed: int, config: Any, temperature: float = 0.1, n_draws: int = 2000,
                    scorer: Any = None, window_offset: int = 0) -> OPELog:
    """One simulated day (or ``config.days``) under the exploring router, as a decision log."""
    from assign.scorer import SkillScorer
    from assign.sim.engine import simulate

    pol = ExploringRouter(temperature=temperature, n_draws=n_draws, scorer=scorer or SkillScorer())
    run = simulate(source=source, policy=pol, seed=seed, config=config)
    return build_log(run=run, policy=pol, source=source, log_id=f"seed{seed}", window_offset=window_offset,
                     decision_prefix=f"s{seed}-")


def on_policy_value(*, source: Any, rule: WindowPolicy, seed: int, config: Any) -> float:
    """Mean true resolution probability per contact served when ``rule`` routes the centre."""
    from assign.sim.engine import SERVED, simulate

    run = simulate(source=source, policy=SnapshotPolicy(rule), seed=seed, config=config)
    served = run.status == SERVED
    return float(np.mean(run.truth_p_resolved[served]))


def window_value(*, source: Any, log: OPELog, pairs: Pairs) -> float:
    """True mean resolution probability of ``pairs`` on the logged windows (world truth)."""
    ix = log.index
    c = ix["contacts"]
    block = Contacts(**c)
    t_s = log.tables["windows"]["t_s"].to_numpy(float)[pairs.window]
    load = ix["wa_load"][pairs.agent_row].sum(axis=1) + pairs.extra_load
    tr = source.world.truth(contacts=block, contact_idx=pairs.contact_row, agent_idx=ix["wa_agent"][pairs.agent_row],
                            agent_load=load.astype(float), t_s=t_s)
    return float(tr.p_resolved.mean()) if len(tr.p_resolved) else float("nan")
