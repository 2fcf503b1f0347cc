"""scikit-learn integration: a classifier trained with this library's losses, evaluation reports (tabular and
tagging), explanations.

The public names below load on first use (PEP 562), so that importing a light submodule such as
``crossentropy.learn.choices`` does not load scikit-learn.
"""

from importlib import import_module

_PUBLIC = {
    "TablePreprocessor": ".io.table", "TfidfText": ".io.text",
    "apply_temperature": ".metrics.calibration", "calibrate": ".metrics.calibration",
    "calibration_error": ".metrics.calibration", "EvaluationReport": ".metrics.evaluate",
    "evaluate": ".metrics.evaluate",
    "expected_calibration_error": ".metrics.evaluate", "feature_importance": ".metrics.explain",
    "hardest_examples": ".metrics.explain", "TaggingReport": ".metrics.tagging", "evaluate_tagging": ".metrics.tagging",
    "CrossEntropyClassifier": ".models.estimator", "load_model": ".models.persist", "save_model": ".models.persist",
    "make_text_classification": ".samples.text", "predict_file": ".workflow", "predict_table": ".workflow",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_PUBLIC})
