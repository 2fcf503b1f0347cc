"""scikit-learn integration: a classifier trained with this library's losses, evaluation reports (tabular and
tagging), explanations."""

from .calibration import apply_temperature, calibrate, calibration_error
from .estimator import CrossEntropyClassifier
from .evaluate import EvaluationReport, evaluate, expected_calibration_error
from .explain import feature_importance, hardest_examples
from .tagging import TaggingReport, evaluate_tagging

__all__ = ["apply_temperature", "calibrate", "calibration_error", "CrossEntropyClassifier", "EvaluationReport",
           "evaluate", "evaluate_tagging", "expected_calibration_error", "feature_importance", "hardest_examples",
           "TaggingReport"]
