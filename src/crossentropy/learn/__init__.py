"""scikit-learn integration: a classifier trained with this library's losses, evaluation reports, explanations."""

from .estimator import CrossEntropyClassifier
from .evaluate import EvaluationReport, evaluate, expected_calibration_error
from .explain import feature_importance, hardest_examples
from .persist import load_model, save_model
from .table import TablePreprocessor
from .workflow import predict_file, predict_table

__all__ = ["CrossEntropyClassifier", "EvaluationReport", "TablePreprocessor", "evaluate",
           "expected_calibration_error", "feature_importance", "hardest_examples", "load_model", "predict_file",
           "predict_table", "save_model"]
