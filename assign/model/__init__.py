"""Match-quality models: training (one XGBoost model per target), the tick scorer, and
``LoadWorker`` (loading model directories in a separate process, for a running router)."""
from assign.model.offload import LoadWorker
from assign.model.scorer import ModelDir, ValueWeights, XGBScorer, evaluate, predict_history
from assign.model.train import DEFAULT_TARGETS, TARGETS, TrainParams, TrainResult, train

__all__ = ["DEFAULT_TARGETS", "TARGETS", "LoadWorker", "ModelDir", "TrainParams", "TrainResult", "ValueWeights",
           "XGBScorer", "evaluate", "predict_history", "train"]
