"""Off-policy evaluation of assignment policies from decision logs (see docs/ope.md)."""
from assign.ope.estimators import (
                                   ESTIMATORS,
                                   BaseOffPolicyEstimator,
                                   DirectMethod,
                                   DoublyRobust,
                                   InverseProbabilityWeighting,
                                   PairData,
                                   SelfNormalizedInverseProbabilityWeighting,
                                   SwitchDoublyRobust,
                                   check_ope_inputs,
                                   effective_sample_size,
                                   support_deficiency,
)
from assign.ope.evaluate import (
                                   SCOPE_NOTE,
                                   OPEResult,
                                   evaluate,
                                   fit_reward_model,
                                   pair_data,
)
from assign.ope.logs import OPELog, read_log
from assign.ope.targets import TARGET_NAMES, SnapshotPolicy, WindowPolicy, make_target

__all__ = [
                                   "ESTIMATORS",
                                   "SCOPE_NOTE",
                                   "TARGET_NAMES",
                                   "BaseOffPolicyEstimator",
                                   "DirectMethod",
                                   "DoublyRobust",
                                   "InverseProbabilityWeighting",
                                   "OPELog",
                                   "OPEResult",
                                   "PairData",
                                   "SelfNormalizedInverseProbabilityWeighting",
                                   "SnapshotPolicy",
                                   "SwitchDoublyRobust",
                                   "WindowPolicy",
                                   "check_ope_inputs",
                                   "effective_sample_size",
                                   "evaluate",
                                   "fit_reward_model",
                                   "make_target",
                                   "pair_data",
                                   "read_log",
                                   "support_deficiency",
]
