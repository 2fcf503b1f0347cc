"""scikit-learn integration: a classifier trained with this library's losses, evaluation reports, explanations."""

from .estimator import CrossEntropyClassifier
from .evaluate import EvaluationReport, evaluate, expected_calibration_error
from .explain import feature_importance, hardest_examples

__all__ = ["CrossEntropyClassifier", "EvaluationReport", "evaluate", "expected_calibration_error",
           "feature_importance", "hardest_examples"]
