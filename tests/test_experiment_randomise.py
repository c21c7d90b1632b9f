"""Hash randomisation: deterministic, uniform, weighted, independent across salts; switchbacks."""
from __future__ import annotations

import doctest
import hashlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from assign.errors import InputError
from assign.experiment import randomise
from assign.experiment.randomise import (
    AssignmentLog,
    Switchback,
    arm_of,
    arms_of,
    hash_uniform,
)


def test_doctests():
    assert doctest.testmod(randomise).failed == 0


def test_hash_is_sha256_of_salt_and_id():
    h = hashlib.sha256(b"exp-9:c42").digest()
    assert hash_uniform("exp-9", "c42") == (int.from_bytes(h[:8], "big") >> 11) / 2**53
    assert 0 <= hash_uniform("exp-9", "c42") < 1


def test_uniform_and_weighted_split():
    ids = [f"c{i}" for i in range(20000)]
    u = np.array([hash_uniform("s", i) for i in ids])
    assert stats.kstest(u, "uniform").pvalue > 0.001
    arms = arms_of(ids, salt="s", arms=("a", "b", "c"), weights=(0.2, 0.3, 0.5))
    counts = [int((arms == a).sum()) for a in "abc"]
    assert stats.chisquare(counts, [4000, 6000, 10000]).pvalue > 0.001
    # vectorised and scalar agree; the same salt gives the same arms, another salt re-randomises
    assert all(arm_of(i, salt="s", arms=("a", "b", "c"), weights=(0.2, 0.3, 0.5)) == a for i, a in zip(ids[:300], arms))
    other = arms_of(ids, salt="s2", arms=("a", "b", "c"), weights=(0.2, 0.3, 0.5))
    table = pd.crosstab(arms, other).to_numpy()
    assert stats.chi2_contingency(table).pvalue > 0.001


@pytest.mark.parametrize("kwargs,message", [
    (dict(arms=("only",)), "arms: need at least 2"),
    (dict(arms=("a", "a")), "arms: duplicate names"),
    (dict(weights=(1.0,)), "weights: 1 given for 2 arms"),
    (dict(weights=(1.0, -1.0)), "weights: each must be a finite number > 0"),
    (dict(weights=(1.0, float("nan"))), "weights: each must be a finite number > 0"),
])
def test_invalid_randomisation(kwargs, message):
    with pytest.raises(InputError) as err:
        arm_of("c1", salt="s", **kwargs)
    assert message in str(err.value)


@pytest.mark.parametrize("kwargs,message", [
    (dict(window_s=0), "window_s: must be > 0"),
    (dict(window_s=600, burn_in_s=600), "burn_in_s: must be in [0, window_s)"),
    (dict(window_s=600, burn_in_s=-1), "burn_in_s: must be in [0, window_s)"),
])
def test_invalid_switchback(kwargs, message):
    with pytest.raises(InputError) as err:
        Switchback(salt="s", **kwargs)
    assert message in str(err.value)


def test_switchback_windows_and_burn_in_after_switches_only():
    sb = Switchback(salt="sw", window_s=1800, burn_in_s=300)
    seconds = np.arange(0, 3 * 86400, 60.0)
    sites = np.where(np.arange(seconds.size) % 2 == 0, "north", "south")
    lab = sb.label(seconds, sites)
    for s, site, (_, row) in zip(seconds[:500], sites[:500], lab.head(500).iterrows()):
        at = pd.Timestamp(s, unit="s", tz="UTC")
        assert row["arm"] == sb.arm_at(at, site)
        assert row["window"] == sb.window_id(at, site)
        assert row["burn_in"] == sb.in_burn_in(at, site)
    k = (seconds // 1800).astype(int)
    for site in ("north", "south"):
        m = sites == site
        arms_by_window = pd.Series(lab["arm"].to_numpy()[m]).groupby(k[m]).first()
        switched = arms_by_window != arms_by_window.shift()
        burn_by_window = pd.Series(lab["burn_in"].to_numpy()[m]).groupby(k[m]).sum()
        first = arms_by_window.index[0]
        # every window that follows a switch has its first 5 minutes flagged, the others none
        assert ((burn_by_window[1:] > 0) == switched[1:]).all()
        # events every minute alternate sites: north sees minutes 0, 2, 4 of the burn-in, south 1, 3
        assert (burn_by_window[switched & (arms_by_window.index > first)] == (3 if site == "north" else 2)).all()
    # the two sites are randomised independently
    assert (lab["arm"].to_numpy()[sites == "north"] != lab["arm"].to_numpy()[sites == "south"]).any()


def test_assignment_log_records_unit_and_arm(tmp_path):
    log = AssignmentLog()
    log.record(experiment="e1", unit="contact", unit_id=7, arm=arm_of(7, salt="e1"), contact_id=7)
    log.record(experiment="e1", unit="switchback", unit_id="all|3", arm="treatment", contact_id="c9", burn_in=True)
    with pytest.raises(InputError, match="unit: must be one of"):
        log.record(experiment="e1", unit="team", unit_id=1, arm="control")
    df = log.to_frame()
    assert list(df.columns) == ["experiment", "unit", "unit_id", "arm", "at", "contact_id", "burn_in"]
    assert df["unit"].tolist() == ["contact", "switchback"] and len(log) == 2
    log.write(tmp_path / "a.csv")
    assert pd.read_csv(tmp_path / "a.csv")["arm"].iloc[1] == "treatment"
