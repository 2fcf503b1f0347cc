"""scikit-learn integration: a classifier trained with this library's losses, evaluation reports (tabular and
tagging), explanations."""

from .estimator import CrossEntropyClassifier
from .evaluate import EvaluationReport, evaluate, expected_calibration_error
from .explain import feature_importance, hardest_examples
from .tagging import TaggingReport, evaluate_tagging

__all__ = ["CrossEntropyClassifier", "EvaluationReport", "evaluate", "expected_calibration_error",
           "feature_importance", "hardest_examples", "TaggingReport", "evaluate_tagging"]
