"""Write examples/experiment_log.csv: a seeded, synthetic contact-level A/B log for the docs.

One row per contact: arm (hashed by contact id), agent, switchback-style window, outcomes
(answered, abandoned, resolved, handle_s, wait_s, within_sla) and a pre-period covariate
(pre_handle_s: the customer's mean handle time before the test). The treatment lifts the
resolution probability by 3 points and shortens handle time by 4%. Two malformed rows are
included on purpose so the readout shows its quarantine.

    python examples/make_experiment_log.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from assign.experiment.randomise import arms_of


def make(*, n: int = 4000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = [f"c{i:05d}" for i in range(n)]
    arm = arms_of(ids, salt="example-routing-v2")
    t = arm == "treatment"
    agent = rng.integers(0, 40, n)
    agent_effect = rng.normal(0, 0.06, 40)[agent]
    customer_level = rng.lognormal(np.log(300), 0.35, n)  # what this customer's contacts usually take
    pre = customer_level * rng.lognormal(0, 0.2, n)
    wait = rng.exponential(25 + 10 * rng.random(n), n)
    abandoned = rng.random(n) < 0.06 + 0.002 * wait / 10
    answered = ~abandoned
    p_res = np.clip(0.70 + 0.03 * t + agent_effect, 0.01, 0.99)
    resolved = answered & (rng.random(n) < p_res)
    handle = np.where(answered, customer_level * (1 - 0.04 * t) * rng.lognormal(0, 0.25, n), np.nan)
    df = pd.DataFrame(
        {
            "contact_id": ids,
            "arm": arm,
            "agent_id": [f"a{a:02d}" for a in agent],
            "arrival_at": pd.Timestamp("2026-11-02", tz="UTC")
            + pd.to_timedelta(np.sort(rng.uniform(0, 5 * 86400, n)), unit="s"),
            "answered": answered,
            "abandoned": abandoned,
            "resolved": resolved,
            "handle_s": np.round(handle, 1),
            "wait_s": np.round(wait, 1),
            "within_sla": answered & (wait <= 20),
            "pre_handle_s": np.round(pre, 1),
        }
    )
    df = df.astype({"handle_s": "object", "arm": "object"})
    df.loc[17, "arm"] = None  # a row whose arm was not logged
    df.loc[int(np.flatnonzero(answered[42:])[0]) + 42, "handle_s"] = "about 5 min"  # a malformed value
    return df


if __name__ == "__main__":
    out = Path(__file__).with_name("experiment_log.csv")
    make().to_csv(out, index=False)
    print(f"wrote {out}")
