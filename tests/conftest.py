"""Shared fixtures: small valid snapshot documents that tests then break on purpose."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def snapshot_doc() -> dict:
    """The README's example snapshot (examples/snapshot.json), as a fresh dict."""
    return copy.deepcopy(json.loads((EXAMPLES / "snapshot.json").read_text()))
