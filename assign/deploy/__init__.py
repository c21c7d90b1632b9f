"""Deployment: the model registry, retraining with promotion, the hot swap, rollout modes.

``open_registry(where)`` opens a registry (a directory by default, an MLflow tracking URI
when MLflow is installed); ``retrain`` trains a challenger and promotes it by a
:class:`PromotionRule`; ``HotSwap`` loads, warms up, validates and swaps a version into a
running :class:`~assign.router.Router`; ``RolloutPolicy`` runs shadow / split / full
rollouts in the simulator with guardrail rollback; ``monitor`` checks recent traffic for
feature, prediction and calibration drift against the champion's training data. See
docs/deploy.md and docs/monitor.md.
"""
from assign.deploy.levels import LevelOffsets, OffsetScorer
from assign.deploy.monitor import MonitorConfig, MonitorReport, monitor
from assign.deploy.registry import DirRegistry, Registry, open_registry
from assign.deploy.retrain import PromotionRule, RetrainDecision, retrain
from assign.deploy.rollout import Guardrail, RolloutPolicy
from assign.deploy.swap import HotSwap, SwapPause, SwapResult, measure_swap_pause

__all__ = [
           "DirRegistry",
           "Guardrail",
           "HotSwap",
           "LevelOffsets",
           "MonitorConfig",
           "MonitorReport",
           "OffsetScorer",
           "PromotionRule",
           "Registry",
           "RetrainDecision",
           "RolloutPolicy",
           "SwapPause",
           "SwapResult",
           "measure_swap_pause",
           "monitor",
           "open_registry",
           "retrain",
]
