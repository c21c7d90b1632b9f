"""The drifting centre's earlier cohorts (``DriftSchedule.past_hire_weeks``): a centre that hires
weekly during the run hired the same way before it, so its pre-period history holds hires' first
weeks; without them, every draw is the one before the option existed."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from assign.errors import InputError
from assign.world.centre import generate_history, working_on
from assign.world.drift import DriftSchedule, drifting_world

HPW, WEEKS_BEFORE, PRE_DAYS, N_AGENTS = 2, 2, 16, 12


def _digest(frame, cols) -> str:
    """Of the columns' text, floats to 6 decimals (the last bits of a float may differ between CPUs)."""
    return hashlib.sha256(frame[cols].round(6).to_csv(index=False).encode()).hexdigest()[:16]


def test_without_earlier_cohorts_the_world_and_its_history_are_those_before_the_option():
    """Digests taken on the code before ``past_hire_weeks`` existed (commit 3a65f47)."""
    dw = drifting_world(seed=5, n_agents=10, n_intents=4,
                        schedule=DriftSchedule(weeks=3, hires_per_week=2, leavers_per_week=2))
    assert dw.gone is None
    h = generate_history(dw.pre_period(days=9), days=9, seed=5)
    assert len(h) == 20781
    assert _digest(h, ["contact_id", "agent_id", "agent_tenure_days", "resolved", "handle_s"]) == "796d78977172d0c5"
    assert _digest(dw.base.agents, ["agent_id", "tenure_days", "hire_day", "leave_day"]) == "db37b8396ee35830"


def test_schedule_rejects_a_negative_number_of_earlier_weeks():
    with pytest.raises(InputError, match="past_hire_weeks"):
        DriftSchedule(past_hire_weeks=-1)


@pytest.fixture(scope="module")
def cohort_world():
    s = DriftSchedule(weeks=3, hires_per_week=HPW, leavers_per_week=HPW, past_hire_weeks=WEEKS_BEFORE)
    return drifting_world(seed=8, n_agents=N_AGENTS, n_intents=4, schedule=s)


def test_each_earlier_week_brought_a_cohort_and_took_as_many_tenured_agents(cohort_world):
    ag = cohort_world.base.agents
    assert len(ag[ag["hire_day"] == 0]) == N_AGENTS  # the day-0 roster keeps its size
    past = ag["past_hire"].to_numpy(bool)
    assert sorted(ag.loc[past, "tenure_days"]) == [7.0] * HPW + [14.0] * HPW
    assert not (past & (ag["hire_day"].to_numpy() > 0)).any()
    gone = cohort_world.gone
    assert sorted(gone["leave_day"]) == [-14.0] * HPW + [-7.0] * HPW
    assert (gone["tenure_days"] > 0).all()  # tenured when they left
    assert not set(gone["agent_id"]) & set(ag["agent_id"])


def test_the_pre_period_roster_keeps_its_size_and_follows_hire_and_leave_days(cohort_world):
    pw = cohort_world.pre_period(days=PRE_DAYS)
    counts = {d: int(working_on(pw.agents, day=d).sum()) for d in range(PRE_DAYS)}
    assert set(counts.values()) == {N_AGENTS}, counts
    hist = generate_history(pw, days=PRE_DAYS, seed=3)
    day = ((hist["arrival_at"] - pw.start).dt.total_seconds() // 86_400).astype(int)
    served = hist["agent_id"].notna()
    by_id = pw.agents.set_index("agent_id")
    hire, leave = by_id["hire_day"], by_id["leave_day"]
    ids = hist.loc[served, "agent_id"]
    d = day[served]
    assert (d.to_numpy() >= hire[ids].to_numpy()).all()  # nobody serves before joining
    assert (d.to_numpy() < leave[ids].to_numpy()).all()  # nor from the day it left
    cohort = ids.isin(by_id.index[by_id["past_hire"].fillna(False).astype(bool) & (hire > 0)])
    assert cohort.any()
    first = hist.loc[served][cohort.to_numpy()].groupby("agent_id")["agent_tenure_days"].min()
    assert ((first >= 0) & (first < 1.0)).all()  # a cohort's logged tenure counts from its first day
    gone_ids = set(cohort_world.gone["agent_id"])
    assert gone_ids & set(ids), "the agents who left before day 0 are in the history of the weeks they worked"
    assert np.isfinite(leave[list(gone_ids & set(ids))]).all()


def test_the_benchmark_rejects_a_bad_number_of_earlier_weeks_as_bad_input(tmp_path, capsys):
    from benchmarks.living_centre import main

    with pytest.raises(SystemExit) as e:
        main(["--quick", "--past-hire-weeks", "-2", "--json", str(tmp_path / "out.json")])
    assert e.value.code == 2
    assert "past_hire_weeks must be a whole number >= 0, got -2" in capsys.readouterr().err
