"""Deployment: the model registry, retraining with promotion, the hot swap, rollout modes.

``open_registry(where)`` opens a registry (a directory by default, an MLflow tracking URI
when MLflow is installed); ``retrain`` trains a challenger and promotes it by a
:class:`PromotionRule`; ``HotSwap`` loads, warms up, validates and swaps a version into a
running :class:`~assign.router.Router`; ``RolloutPolicy`` runs shadow / split / full
rollouts in the simulator with guardrail rollback. See docs/deploy.md.
"""
from assign.deploy.registry import DirRegistry, Registry, open_registry
from assign.deploy.retrain import PromotionRule, RetrainDecision, retrain
from assign.deploy.rollout import Guardrail, RolloutPolicy
from assign.deploy.swap import HotSwap, SwapPause, SwapResult, measure_swap_pause

__all__ = [
           "DirRegistry",
           "Guardrail",
           "HotSwap",
           "PromotionRule",
           "Registry",
           "RetrainDecision",
           "RolloutPolicy",
           "SwapPause",
           "SwapResult",
           "measure_swap_pause",
           "open_registry",
           "retrain",
]
