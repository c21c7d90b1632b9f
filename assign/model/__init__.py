"""Match-quality models: training (one XGBoost model per target) and the tick scorer."""
from assign.model.scorer import ModelDir, ValueWeights, XGBScorer, evaluate, predict_history
from assign.model.train import DEFAULT_TARGETS, TARGETS, TrainParams, TrainResult, train

__all__ = ["DEFAULT_TARGETS", "TARGETS", "ModelDir", "TrainParams", "TrainResult", "ValueWeights", "XGBScorer",
           "evaluate", "predict_history", "train"]
