"""The workflows behind ``crossentropy train`` (check, split, fit, evaluate, explain) and ``crossentropy predict``
(a saved model applied to a table, columns matched by name)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.utils.multiclass import type_of_target

from ..core.jsonio import json_value
from ..core.textio import DEFAULT_ENCODING
from ..rules.errors import InputValueError
from .choices import DEFAULT_MODEL, MODELS, TRAIN_DEFAULTS
from .io.data import PREDICTED, Dataset, read_table
from .io.table import TEXT, TablePreprocessor, column_roles
from .metrics.evaluate import EvaluationReport, evaluate
from .metrics.explain import hardest_examples, text_influence
from .models.base import check_params
from .models.estimator import CrossEntropyClassifier, split_sizes


@dataclass
class TrainResult:
    model: object  # a fitted TablePreprocessor + classifier pipeline
    report: EvaluationReport
    hardest: list[dict]
    train_seconds: float
    n_train: int
    n_test: int
    explanation: dict = field(default_factory=dict)  # text models: {"top_ngrams": ...} (explain.text_influence)

    @property
    def classifier(self):
        return self.model[-1]


def build_classifier(model: str, *, loss=TRAIN_DEFAULTS["loss"], label_smoothing=TRAIN_DEFAULTS["label_smoothing"],
                     class_weight=TRAIN_DEFAULTS["class_weight"], optimizer=TRAIN_DEFAULTS["optimizer"],
                     learning_rate=None, epochs=None, batch_size=None, seed=TRAIN_DEFAULTS["seed"], callback=None):
    """The classifier for ``--model``: softmax regression, the default MLP, or the torch CNN."""
    if model not in MODELS:
        raise InputValueError(f"model must be one of {', '.join(MODELS)}, but got {model!r}.")
    if model == "cnn":
        try:
            from .models.cnn import CNNClassifier
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
        learning_rate=_given(learning_rate, "auto"),
        max_epochs=_given(epochs, 200),
        batch_size=_given(batch_size, "auto"), early_stopping=True, random_state=seed, callback=callback)
    return check_params(clf)  # scikit-learn's own check, now rather than after the data is split


def epoch_budget(model: str, epochs: int | None = None) -> int:
    """The most epochs that ``train`` runs ``model`` for: ``epochs``, or that model's default."""
    clf = build_classifier(model, epochs=epochs)
    return clf.epochs if model == "cnn" else clf.max_epochs


def _given(value, default):
    """``value`` unless it is None: 0 is passed on (and refused by the estimator), never replaced by the default."""
    return default if value is None else value


TEXT_MLP_LEARNING_RATE = 3e-3  # the mlp's default Adam rate on TF-IDF features (1e-3 stops short of the optimum)
TABLE_OPTIONS = ("text_columns", "categorical_columns", "drop_columns", "max_features")


def _split_options(options: dict) -> tuple[dict, dict]:
    """``options`` as (``TablePreprocessor`` options, ``build_classifier`` options)."""
    table = {k: v for k, v in options.items() if k in TABLE_OPTIONS and v is not None}
    return table, {k: v for k, v in options.items() if k not in TABLE_OPTIONS}


def check_trainable(data: Dataset, model: str = DEFAULT_MODEL, test_size: float = TRAIN_DEFAULTS["test_size"], *,
                    test: Dataset | None = None, **options) -> str:
    """Everything about ``data`` (and ``test``) and the ``options`` of ``build_classifier`` and
    ``TablePreprocessor`` that would make ``train`` fail, checked before any work (or run directory). Returns the
    preprocessing's one-line note of the column roles."""
    table_options, options = _split_options(options)
    build_classifier(model, **options)
    if model == "cnn" and not data.images:
        raise InputValueError(f"the cnn model needs image data (digits), but {data.name!r} is tabular; use "
                              f"`model='mlp'`.")
    if test is None and not 0 < test_size < 1:
        raise InputValueError(f"test_size must be a share strictly between 0 and 1, but got {test_size}.")
    if type_of_target(data.y) == "continuous":
        raise InputValueError(f"the target of {data.name} looks continuous: numbers that are not all integers, "
                              f"{len(np.unique(data.y))} distinct values in {len(data.y)} rows; a classifier needs "
                              f"class labels, so name the label column as the target, or bin the values.")
    classes, counts = np.unique(data.y, return_counts=True)
    if len(classes) < 2:
        raise InputValueError(f"{data.name} has a single class ({json_value(classes[0])!r}); a classifier needs at "
                              f"least two.")
    if test is None:
        if counts.min() < 2:
            raise InputValueError(f"class {json_value(classes[counts.argmin()])!r} of {data.name} has a single row, so "
                                  f"it cannot be both trained on and held out for testing; give each class at least "
                                  f"two rows, or drop that class.")
        n_test = split_sizes(data.y, test_size)[0]
    if test is None and (n_test < 1 or len(data.y) - n_test < 2):
        raise InputValueError(f"{data.name} has {len(data.y)} rows, too few to hold out {test_size:.0%} for testing "
                              f"and train on the rest; give more rows or another `test_size`.")
    # missing values, infinities, unknown column names: refused here, by column name
    table = TablePreprocessor(**table_options).fit(data.X)
    if test is not None:
        table.transform(test.X)
    return table.note_


def train(data: Dataset, *, model: str = DEFAULT_MODEL, test_size: float = TRAIN_DEFAULTS["test_size"],
          seed: int = TRAIN_DEFAULTS["seed"],
          test: Dataset | None = None, **options) -> TrainResult:
    """Fit ``TablePreprocessor(**table options) + model`` on a stratified ``1 - test_size`` share of ``data`` and
    evaluate it on the rest, or on all of ``data`` and evaluate it on ``test``. ``options`` are those of
    ``build_classifier`` and ``TABLE_OPTIONS`` (``text_columns``, ``categorical_columns``, ``drop_columns``,
    ``max_features``)."""
    check_trainable(data, model, test_size, seed=seed, test=test, **options)
    table_options, options = _split_options(options)
    if test is None:
        n_test, stratified = split_sizes(data.y, test_size)
        X_train, X_test, y_train, y_test, _, rows_test = train_test_split(
            data.X, data.y, np.arange(len(data.y)), test_size=n_test, stratify=data.y if stratified else None,
            random_state=seed)
    else:
        X_train, y_train, X_test, y_test, rows_test = data.X, data.y, test.X, test.y, np.arange(len(test.y))
    roles = {k: v for k, v in table_options.items() if k != "max_features"}
    if model == "mlp" and options.get("learning_rate") is None and options.get("optimizer", "adam") == "adam" \
            and TEXT in column_roles(data.X, **roles).values():
        options["learning_rate"] = TEXT_MLP_LEARNING_RATE
    pipeline = make_pipeline(TablePreprocessor(**table_options), build_classifier(model, seed=seed, **options))
    start = time.perf_counter()
    pipeline.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    proba = pipeline.predict_proba(X_test)
    labels = pipeline[-1].classes_
    hardest = hardest_examples(y_test, proba, k=5, labels=labels)
    explanation = text_influence(pipeline, X_test, y_test, hardest)
    for example in hardest:  # the row of the data set, not of the test split
        example["index"] = int(rows_test[example["index"]])
    return TrainResult(pipeline, evaluate(y_test, proba, labels=labels), hardest, seconds, len(y_train),
                       len(y_test), explanation)


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


def predict_file(model, path, name: str = "`data`", *, encoding: str = DEFAULT_ENCODING):
    """``predict_table`` for the CSV, TSV (decoded with ``encoding``) or Parquet table at ``path``."""
    return predict_table(model, read_table(path, name, encoding=encoding))
