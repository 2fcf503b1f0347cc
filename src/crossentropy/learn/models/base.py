"""The base shared by this library's classifiers (the NumPy ``CrossEntropyClassifier`` and the torch
``CNNClassifier``): classes, class weights, the ``learning_rate="auto"`` table, best-weight tracking, and
``predict`` / ``predict_proba`` from ``predict_log_proba``. Subclasses implement ``fit`` and ``predict_log_proba``.
"""

from __future__ import annotations

import math
import re

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import InvalidParameterError

from ...core.weights import class_weights
from ...rules.errors import InputValueError

QUOTED_PARAMETER = re.compile(r"^The '(\w+)' parameter")


def check_params(estimator, where: str = ""):
    """``estimator`` after scikit-learn's check of its parameters against its ``_parameter_constraints`` (what
    ``fit`` checks first), a failure raised as the library's ``InputValueError``, whose message names the parameter
    (``where`` says whence the parameters came)."""
    try:
        estimator._validate_params()
    except InvalidParameterError as exc:  # scikit-learn quotes the parameter ('label_smoothing'): name it as ours
        message = QUOTED_PARAMETER.sub(r"The `\1` parameter", str(exc), count=1)
        raise InputValueError(f"{where}{message}") from None
    return estimator


class BestWeights:
    """The lowest monitored loss seen and a snapshot of the weights that gave it (for best-weight restore)."""

    def __init__(self):
        self.loss, self.weights = math.inf, None

    def update(self, loss: float, snapshot) -> None:
        """Record ``loss``; when it is the best so far, keep ``snapshot()`` (a copy of the weights)."""
        if loss < self.loss:
            self.loss, self.weights = loss, snapshot()


class ClassifierBase(ClassifierMixin, BaseEstimator):
    """Shared behaviour of the classifiers. ``AUTO_LEARNING_RATES`` maps each optimizer to the learning rate that
    ``learning_rate="auto"`` uses."""

    AUTO_LEARNING_RATES: dict[str, float] = {}

    def _learning_rate(self) -> float:
        if self.learning_rate == "auto":
            return self.AUTO_LEARNING_RATES[self.optimizer]
        return self.learning_rate

    def _set_classes(self, y: np.ndarray) -> np.ndarray:
        """Set ``classes_`` (the sorted distinct labels) and return ``y`` as indices into it."""
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise InputValueError(f"{type(self).__name__} needs samples of at least 2 classes in the data, but the "
                                  f"data contains only one class: {self.classes_[0]!r}.")
        return y_idx.reshape(-1)

    def _class_weight_vector(self, y_idx: np.ndarray) -> np.ndarray | None:
        """One weight per class from ``class_weight``: None, a dict {label: weight} (others 1), or "balanced" /
        "effective_number" computed from the training labels ``y_idx``."""
        k = len(self.classes_)
        cw = self.class_weight
        if cw is None:
            return None
        if isinstance(cw, dict):
            weights = np.ones(k)
            for label, value in cw.items():
                if label not in self.classes_:
                    raise InputValueError(f"class_weight has a weight for label {label!r}, which is not among the "
                                          f"classes {self.classes_.tolist()}.")
                weights[np.searchsorted(self.classes_, label)] = value
            return weights
        return class_weights(y_idx, n_classes=k, method=cw)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row."""
        log_proba = self.predict_log_proba(X)  # checks that the model is fitted, before classes_ is read
        return self.classes_[np.argmax(log_proba, axis=1)]
