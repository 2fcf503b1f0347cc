"""The workflows behind ``crossentropy train`` (check, split, fit, evaluate, explain) and ``crossentropy predict``
(a saved model applied to a table, columns matched by name)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.multiclass import type_of_target

from ..core.textio import DEFAULT_ENCODING
from ..rules.errors import InputValueError
from .data import PREDICTED, Dataset, read_table
from .estimator import CrossEntropyClassifier, split_sizes
from .evaluate import EvaluationReport, evaluate
from .explain import hardest_examples
from .table import TablePreprocessor

MODELS = ("softmax", "mlp", "cnn")
DEFAULT_MODEL = "mlp"


@dataclass
class TrainResult:
    model: object  # a fitted TablePreprocessor + classifier pipeline
    report: EvaluationReport
    hardest: list[dict]
    train_seconds: float
    n_train: int
    n_test: int

    @property
    def classifier(self):
        return self.model[-1]


def build_classifier(model: str, *, loss="cross_entropy", label_smoothing=0.0, class_weight=None, optimizer="adam",
                     learning_rate=None, epochs=None, batch_size=None, seed=0, callback=None):
    """The classifier for ``--model``: softmax regression, the default MLP, or the torch CNN."""
    if model not in MODELS:
        raise InputValueError(f"model must be one of {', '.join(MODELS)}, but got {model!r}.")
    if model == "cnn":
        try:
            from .cnn import CNNClassifier
        except ImportError:
            raise InputValueError("the cnn model needs PyTorch: install the torch extra "
                                  "(pip install 'crossentropy[torch]').") from None
        return CNNClassifier(epochs=_given(epochs, 30), learning_rate=_given(learning_rate, "auto"),
                             batch_size=_given(batch_size, 64), optimizer=optimizer, loss=loss,
                             label_smoothing=label_smoothing, class_weight=class_weight, random_state=seed,
                             callback=callback)
    clf = CrossEntropyClassifier(
        hidden_layer_sizes=() if model == "softmax" else (100,), loss=loss, label_smoothing=label_smoothing,
        class_weight=class_weight, optimizer=optimizer,
        learning_rate=_given(learning_rate, 1e-2 if model == "softmax" and optimizer in ("adam", "adamw") else "auto"),
        max_epochs=_given(epochs, 200),
        batch_size=_given(batch_size, "auto"), early_stopping=True, random_state=seed, callback=callback)
    try:
        clf._validate_params()  # scikit-learn's own check, now rather than after the data is split
    except InvalidParameterError as exc:
        raise InputValueError(str(exc)) from None
    return clf


def _given(value, default):
    """``value`` unless it is None: 0 is passed on (and refused by the estimator), never replaced by the default."""
    return default if value is None else value


def check_trainable(data: Dataset, model: str = DEFAULT_MODEL, test_size: float = 0.25, **options) -> None:
    """Everything about ``data`` and the ``options`` of ``build_classifier`` that would make ``train`` fail,
    checked before any work (or run directory)."""
    build_classifier(model, **options)
    if model == "cnn" and not data.images:
        raise InputValueError(f"the cnn model needs image data (digits), but {data.name!r} is tabular; use "
                              f"--model mlp.")
    if not 0 < test_size < 1:
        raise InputValueError(f"test_size must be a share strictly between 0 and 1, but got {test_size}.")
    if type_of_target(data.y) == "continuous":
        raise InputValueError(f"the target of {data.name} looks continuous: numbers that are not all integers, "
                              f"{len(np.unique(data.y))} distinct values in {len(data.y)} rows; a classifier needs "
                              f"class labels, so name the label column as the target, or bin the values.")
    classes, counts = np.unique(data.y, return_counts=True)
    if len(classes) < 2:
        raise InputValueError(f"{data.name} has a single class ({classes[0]!r}); a classifier needs at least two.")
    if counts.min() < 2:
        raise InputValueError(f"class {classes[counts.argmin()]!r} of {data.name} has a single row, so it cannot be "
                              f"both trained on and held out for testing; give each class at least two rows, or "
                              f"drop that class.")
    n_test = split_sizes(data.y, test_size)[0]
    if n_test < 1 or len(data.y) - n_test < 2:
        raise InputValueError(f"{data.name} has {len(data.y)} rows, too few to hold out {test_size:.0%} for testing "
                              f"and train on the rest; give more rows or another --test-size.")
    TablePreprocessor().fit(data.X)  # text columns, missing values, infinities: refused here, by column name


def train(data: Dataset, *, model: str = DEFAULT_MODEL, test_size: float = 0.25, seed: int = 0, **options
          ) -> TrainResult:
    """Fit ``TablePreprocessor() + model`` on a stratified ``1 - test_size`` share of ``data`` and evaluate it on
    the rest."""
    check_trainable(data, model, test_size, seed=seed, **options)
    n_test, stratified = split_sizes(data.y, test_size)
    X_train, X_test, y_train, y_test, _, rows_test = train_test_split(
        data.X, data.y, np.arange(len(data.y)), test_size=n_test, stratify=data.y if stratified else None,
        random_state=seed)
    pipeline = make_pipeline(TablePreprocessor(), build_classifier(model, seed=seed, **options))
    start = time.perf_counter()
    pipeline.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    proba = pipeline.predict_proba(X_test)
    labels = pipeline[-1].classes_
    hardest = hardest_examples(y_test, proba, k=5, labels=labels)
    for example in hardest:  # the row of the data set, not of the test split
        example["index"] = int(rows_test[example["index"]])
    return TrainResult(pipeline, evaluate(y_test, proba, labels=labels), hardest, seconds, len(y_train),
                       len(y_test))


def predict_table(model, frame):
    """Predictions of a fitted ``model`` (a pipeline whose first step takes a table) for the rows of ``frame``: a
    DataFrame with a ``predicted`` column and one probability column per class, named by the class label. Columns
    are matched by name; extra columns are ignored."""
    import pandas as pd

    proba = model.predict_proba(frame)
    classes = model[-1].classes_ if hasattr(model, "steps") else model.classes_
    names = [str(c) for c in classes]
    if PREDICTED in names or len(set(names)) != len(names):
        raise InputValueError(f"the model's class labels {names} cannot all name their own output column; rename "
                              f"the classes.")
    out = pd.DataFrame(proba, columns=names, index=frame.index)
    out.insert(0, PREDICTED, classes[proba.argmax(axis=1)])
    return out


def predict_file(model, path, name: str = "--data", *, encoding: str = DEFAULT_ENCODING):
    """``predict_table`` for the CSV, TSV (decoded with ``encoding``) or Parquet table at ``path``."""
    return predict_table(model, read_table(path, name, encoding=encoding))
