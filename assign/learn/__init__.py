"""Learning while routing: decisions and outcomes as data, live agent estimates, cold start
by empirical-Bayes shrinkage, budgeted Thompson exploration (``docs/learn.md``)."""
from assign.learn.effects import EffectEstimates
from assign.learn.explore import Explore
from assign.learn.floor import FloorController, WorkFloor
from assign.learn.live import LiveEstimates, LiveVersion
from assign.learn.logs import LogSink, MemorySink, ParquetSink, join_logs, outcome_table, read_partitioned
from assign.learn.modelscorer import ModelScorer
from assign.learn.population import PopulationModel
from assign.learn.ramp import Ramp
from assign.learn.scorer import LearnScorer, Roster
from assign.learn.shrink import Posterior, fit_posterior, prior_strength
from assign.learn.warm import history_outcomes

__all__ = ["EffectEstimates", "Explore", "FloorController", "LearnScorer", "LiveEstimates", "LiveVersion",
           "LogSink", "MemorySink", "ModelScorer", "ParquetSink", "PopulationModel", "Posterior", "Ramp", "Roster",
           "WorkFloor", "fit_posterior", "history_outcomes", "join_logs", "outcome_table", "prior_strength",
           "read_partitioned"]
