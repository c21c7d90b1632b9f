"""Features of contact-agent pairs: one code path for training rows and tick rows."""
from assign.features.build import TickFeaturizer, fit_spec, history_features
from assign.features.spec import FEATURES, FeatureSpec

__all__ = ["FEATURES", "FeatureSpec", "TickFeaturizer", "fit_spec", "history_features"]
