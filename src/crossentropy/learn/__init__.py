"""scikit-learn integration: a classifier trained with this library's losses, evaluation reports (tabular and
tagging), explanations."""

from .io.table import TablePreprocessor
from .io.text import TfidfText
from .metrics.calibration import apply_temperature, calibrate, calibration_error
from .metrics.evaluate import EvaluationReport, evaluate, expected_calibration_error
from .metrics.explain import feature_importance, hardest_examples
from .metrics.tagging import TaggingReport, evaluate_tagging
from .models.estimator import CrossEntropyClassifier
from .models.persist import load_model, save_model
from .samples.text import make_text_classification
from .workflow import predict_file, predict_table

__all__ = ["apply_temperature", "calibrate", "calibration_error", "CrossEntropyClassifier", "EvaluationReport",
           "TablePreprocessor", "evaluate", "evaluate_tagging", "expected_calibration_error", "feature_importance",
           "hardest_examples", "load_model", "make_text_classification", "predict_file", "predict_table", "save_model",
           "TaggingReport", "TfidfText"]
