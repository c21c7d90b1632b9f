"""assign: route customer contacts to the agents most likely to resolve them well, fast."""
from assign.config import RouterConfig
from assign.errors import AssignError, InputError, ModelError, SnapshotError, SolverError
from assign.schema import Snapshot, parse_snapshot
from assign.scorer import Scorer, SkillScorer

__all__ = [
    "AssignError", "InputError", "ModelError", "RouterConfig", "Scorer", "SkillScorer",
    "Snapshot", "SnapshotError", "SolverError", "parse_snapshot",
]
