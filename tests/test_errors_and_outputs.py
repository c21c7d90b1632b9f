"""Errors that travel between processes whole; directory outputs swapped in whole (a failure leaves the old output)."""
from __future__ import annotations

import pytest

from assign.errors import InputError
from assign.io import atomic_dir


def test_a_failed_write_leaves_the_old_directory_whole(tmp_path):
    out = tmp_path / "scenario"
    with atomic_dir(out, marker="scenario.json") as d:
        (d / "scenario.json").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out, marker="scenario.json") as d:
        (d / "scenario.json").write_text("new, half written")
        raise RuntimeError("late failure")
    assert (out / "scenario.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scenario"]  # no temporary left behind
    with atomic_dir(out, marker="scenario.json") as d:
        (d / "scenario.json").write_text("new")
    assert (out / "scenario.json").read_text() == "new"


def test_a_directory_of_other_files_is_never_replaced(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(InputError, match="exists and is not an earlier output"), \
            atomic_dir(tmp_path / "mine", marker="scenario.json"):
        pass
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    with pytest.raises(InputError, match="does not exist"), atomic_dir(tmp_path / "no" / "x", marker="m"):
        pass


@pytest.mark.parametrize("cls", ["InputError", "SnapshotError"])
def test_input_errors_survive_pickling_with_every_problem(cls):
    import pickle

    from assign import errors

    err = getattr(errors, cls)(["a.b: bad", "c: worse"], what="thing")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and back.problems == err.problems and str(back) == str(err)
