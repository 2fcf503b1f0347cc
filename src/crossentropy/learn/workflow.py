"""The train-and-evaluate workflow behind ``crossentropy train``: split, fit, evaluate, explain."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..rules.errors import InputValueError
from .data import Dataset
from .estimator import CrossEntropyClassifier
from .evaluate import EvaluationReport, evaluate
from .explain import hardest_examples

MODELS = ("softmax", "mlp", "cnn")


@dataclass
class TrainResult:
    model: object  # a fitted StandardScaler + classifier pipeline
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
            raise InputValueError("the cnn model needs PyTorch: install the torch extra (pip install "
                                  "'crossentropy[torch]')"
                             ".") from None
        return CNNClassifier(epochs=epochs or 30, learning_rate=learning_rate or "auto", batch_size=batch_size or 64,
                             optimizer=optimizer, loss=loss, label_smoothing=label_smoothing,
                             class_weight=class_weight, random_state=seed, callback=callback)
    return CrossEntropyClassifier(
        hidden_layer_sizes=() if model == "softmax" else (100,), loss=loss, label_smoothing=label_smoothing,
        class_weight=class_weight, optimizer=optimizer,
        learning_rate=learning_rate or (1e-2 if model == "softmax" and optimizer in ("adam", "adamw") else "auto"),
        max_epochs=epochs or 200,
        batch_size=batch_size or "auto", early_stopping=True, random_state=seed, callback=callback)


def train(data: Dataset, *, model: str = "mlp", test_size: float = 0.25, seed: int = 0, **options) -> TrainResult:
    """Fit ``model`` on a stratified ``1 - test_size`` share of ``data`` and evaluate it on the rest."""
    if model == "cnn" and not data.images:
        raise InputValueError(f"the cnn model needs image data (digits), but {data.name!r} is tabular; use "
                              f"--model mlp.")
    classes, counts = np.unique(data.y, return_counts=True)
    if len(classes) < 2:
        raise InputValueError(f"{data.name} has a single class ({classes[0]!r}); a classifier needs at least two.")
    stratify = data.y if counts.min() >= 2 else None
    X_train, X_test, y_train, y_test, _, rows_test = train_test_split(
        data.X, data.y, np.arange(len(data.y)), test_size=test_size, stratify=stratify, random_state=seed)
    pipeline = make_pipeline(StandardScaler(), build_classifier(model, seed=seed, **options))
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
