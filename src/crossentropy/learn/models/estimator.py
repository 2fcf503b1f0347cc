"""CrossEntropyClassifier: a scikit-learn estimator, a NumPy MLP trained with this library's losses and their
analytic gradients (no torch).

``hidden_layer_sizes=()`` is softmax regression (logistic regression for two classes). Two classes use one sigmoid
output with binary cross-entropy; more use softmax cross-entropy. Hidden layers are ReLU, backpropagated by hand.

``X`` may be a SciPy sparse matrix (CSR, or CSC and the others, converted to CSR): the first layer multiplies it
sparse times dense, and its weight gradient is ``X.T @ grad``, sparse times dense too, so it is never densified
(memory O(nnz + n_features * width)), as behind ``TfidfVectorizer``.

Training is deterministic given ``random_state``. When a batch holds the whole data set (the default for up to
200 samples), training is full-batch gradient descent on the weighted mean loss, so integer ``sample_weight``
equals repeating samples. Without ``early_stopping``, training stops when the training loss has not improved by
``tol`` for ``n_iter_no_change`` epochs, as scikit-learn's MLPClassifier; with it, on the validation cross-entropy,
and the best weights are restored.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import _check_partial_fit_first_call, check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ...core.classification import (
    binary_cross_entropy_with_logits,
    sigmoid_focal_loss,
    softmax_cross_entropy,
    softmax_focal_loss,
)
from ...core.stable import log_sigmoid, log_softmax
from ...core.weights import METHODS
from ...rules.errors import InputValueError
from ..choices import LOSSES
from .base import BestWeights, ClassifierBase
from .optim import OPTIMIZERS, SCHEDULES, make_optimizer, scheduled_lr


def split_sizes(y, test_size: float) -> tuple[int, bool]:
    """The number of held-out rows for a ``test_size`` share of the labels ``y``, and whether the split can be
    stratified: when every class has two rows and both sides can hold every class, the held-out side holds
    ``max(ceil(test_size * n), K)`` rows for ``K`` classes (scikit-learn refuses fewer), else ``ceil(test_size * n)``
    rows, unstratified.

    >>> split_sizes(np.array([0, 0, 1, 1]), 0.25)  # 1 row would leave a class out of the held-out side
    (2, True)
    >>> split_sizes(np.array([0, 1, 1]), 0.25)
    (1, False)
    """
    classes, counts = np.unique(y, return_counts=True)
    n, k = len(y), len(classes)
    n_test = int(np.ceil(test_size * n))
    if counts.min() >= 2 and n - max(n_test, k) >= k:
        return max(n_test, k), True
    return n_test, False


class CrossEntropyClassifier(ClassifierBase):
    """A multi-layer perceptron classifier trained with cross-entropy (or focal loss).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Sizes of the ReLU hidden layers; ``()`` gives softmax / logistic regression.
    loss : {"cross_entropy", "focal"}, default="cross_entropy"
    gamma : float, default=2.0
        Focusing parameter of the focal loss.
    label_smoothing : float in [0, 1), default=0.0
    class_weight : None, "balanced", "effective_number" or dict, default=None
        Per-class weights, from the training labels for the two named methods. They enter the loss and its
        "mean" denominator (docs/semantics.md), and multiply ``sample_weight`` in ``fit``.
    optimizer : {"sgd", "momentum", "adam", "adamw", "rmsprop"}, default="adam"
    learning_rate : float or "auto", default="auto"
        "auto" picks the optimizer's rate from ``AUTO_LEARNING_RATES``: 0.1 for "sgd", 0.01 for "momentum",
        1e-3 for "adam", "adamw" and "rmsprop"; a linear model (``hidden_layer_sizes=()``) takes larger steps
        (``LINEAR_AUTO_LEARNING_RATES``): 0.5 for "sgd", 0.02 for the others. With these, every optimizer
        reaches >= 0.94 test accuracy on iris, wine, breast_cancer and digits, linear or not.
    lr_schedule : {"constant", "cosine", "step"}, default="constant"
    weight_decay : float, default=1e-4
        L2 penalty on the weights (decoupled for "adamw").
    batch_size : int or "auto", default="auto"
        ``min(200, n_samples)``.
    max_epochs : int, default=200
        When ``fit`` runs all of them without meeting its stopping rule, it warns with ``ConvergenceWarning``.
    tol : float, default=1e-4
    n_iter_no_change : int, default=10
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified), stop on its cross-entropy and restore
        the best weights.
    validation_fraction : float, default=0.1
    random_state : int, RandomState or None, default=None
    verbose : bool, default=False
    callback : callable or None, default=None
        Called after each epoch of ``fit`` as ``callback(epoch, train_loss, validation_loss)`` (the validation loss
        is None without ``early_stopping``); for progress displays.

    Attributes
    ----------
    classes_, n_features_in_, coefs_, intercepts_, loss_curve_, validation_loss_curve_, best_loss_, n_iter_

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = CrossEntropyClassifier(hidden_layer_sizes=(), learning_rate=0.05, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like"],
        "loss": [StrOptions(set(LOSSES))],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "class_weight": [None, dict, StrOptions(set(METHODS))],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "lr_schedule": [StrOptions(set(SCHEDULES))],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callback": [None, callable],
    }

    AUTO_LEARNING_RATES = {"sgd": 0.1, "momentum": 0.01, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}
    LINEAR_AUTO_LEARNING_RATES = {"sgd": 0.5, "momentum": 0.02, "adam": 0.02, "adamw": 0.02, "rmsprop": 0.02}

    def __init__(self, hidden_layer_sizes=(100,), *, loss="cross_entropy", gamma=2.0, label_smoothing=0.0,
                 class_weight=None, optimizer="adam", learning_rate="auto", lr_schedule="constant", weight_decay=1e-4,
                 batch_size="auto", max_epochs=200, tol=1e-4, n_iter_no_change=10, early_stopping=False,
                 validation_fraction=0.1, random_state=None, verbose=False, callback=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.loss = loss
        self.gamma = gamma
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose
        self.callback = callback

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.input_tags.sparse = True
        return tags

    # ----------------------------------------------------------------------------------------- the network
    def _init_network(self, n_features: int, n_outputs: int, rng) -> None:
        sizes = [n_features, *self._hidden(), n_outputs]
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            bound = np.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform, as scikit-learn's MLP
            self.coefs_.append(rng.uniform(-bound, bound, (fan_in, fan_out)))
            self.intercepts_.append(rng.uniform(-bound, bound, fan_out))

    def _hidden(self) -> list[int]:
        sizes = list(self.hidden_layer_sizes)
        if any(isinstance(s, bool) or not isinstance(s, Integral) or s < 1 for s in sizes):
            raise InputValueError(f"hidden_layer_sizes must be a tuple of positive ints (or () for a linear "
                                  f"model), but "
                             f"got {self.hidden_layer_sizes!r}.")
        return [int(s) for s in sizes]

    def _forward(self, X: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits and the activations of each layer's input."""
        activations = [X]
        h = X
        for W, b in zip(self.coefs_[:-1], self.intercepts_[:-1], strict=True):
            h = h @ W
            h += b
            np.maximum(h, 0.0, out=h)
            activations.append(h)
        return h @ self.coefs_[-1] + self.intercepts_[-1], activations

    def _loss_and_grad(self, logits: np.ndarray, y: np.ndarray, sw: np.ndarray):
        """Weighted mean loss and its gradient with respect to the logits (the core's analytic gradients)."""
        opts = {"sample_weight": sw, "label_smoothing": self.label_smoothing, "return_grad": True}
        if logits.shape[1] == 1:  # binary: one sigmoid output
            target = y.astype(np.float64)[:, None]
            sw2 = sw[:, None]
            if self.loss == "focal":
                return sigmoid_focal_loss(logits, target, gamma=self.gamma, **{**opts, "sample_weight": sw2})
            return binary_cross_entropy_with_logits(logits, target, **{**opts, "sample_weight": sw2})
        if self.loss == "focal":
            return softmax_focal_loss(logits, y, gamma=self.gamma, alpha=self._class_weight, **opts)
        return softmax_cross_entropy(logits, y, class_weight=self._class_weight, **opts)

    def _backward(self, grad: np.ndarray, activations: list[np.ndarray]) -> list[np.ndarray]:
        """Gradients of the loss for ``coefs_ + intercepts_`` from its gradient with respect to the logits."""
        coef_grads, intercept_grads = [], []
        for layer in range(len(self.coefs_) - 1, -1, -1):
            a = activations[layer]
            coef_grads.append(a.T @ grad)
            intercept_grads.append(grad.sum(axis=0))
            if layer:
                grad = grad @ self.coefs_[layer].T
                grad *= a > 0
        return coef_grads[::-1] + intercept_grads[::-1]

    # ----------------------------------------------------------------------------------------- training
    def _encode(self, y: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.classes_, y)

    def _resolve_class_weight(self, y_idx: np.ndarray, sw: np.ndarray) -> None:
        """Class weights for the softmax loss (``_class_weight``) and their per-sample form for binary."""
        weights = self._class_weight_vector(y_idx[sw > 0])
        two = len(self.classes_) == 2
        self._class_weight = None if weights is None or two else weights
        self._sample_class_weight = None if weights is None or not two else weights

    def _weights_for(self, y_idx: np.ndarray, sw: np.ndarray) -> np.ndarray:
        return sw if self._sample_class_weight is None else sw * self._sample_class_weight[y_idx]

    def _epoch(self, X, y_idx, sw, rng, batch_size) -> float:
        n = X.shape[0]
        order = rng.permutation(n) if batch_size < n else np.arange(n)
        total_loss, total_weight = 0.0, 0.0
        params = self.coefs_ + self.intercepts_
        decay = [True] * len(self.coefs_) + [False] * len(self.intercepts_)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            w = self._weights_for(y_idx[idx], sw[idx])
            logits, activations = self._forward(X[idx])
            loss, grad = self._loss_and_grad(logits, y_idx[idx], w)
            batch_weight = float(w.sum())
            if batch_weight == 0:
                continue
            self._optimizer.step(params, self._backward(grad, activations), decay)
            total_loss += float(loss) * batch_weight
            total_weight += batch_weight
        return total_loss / total_weight if total_weight else 0.0

    def _validation_loss(self, X, y_idx, sw) -> float:
        logits, _ = self._forward(X)
        loss, _ = self._loss_and_grad(logits, y_idx, self._weights_for(y_idx, sw))
        return float(loss)

    def _start(self, n_features: int, y_idx: np.ndarray, sw: np.ndarray):
        """Fresh weights, optimizer and curves for ``fit`` or a first ``partial_fit``; returns the random state,
        which later ``partial_fit`` calls continue with."""
        rng = self._rng = check_random_state(self.random_state)
        self._resolve_class_weight(y_idx, sw)
        self._init_network(n_features, 1 if len(self.classes_) == 2 else len(self.classes_), rng)
        self._optimizer = make_optimizer(self.optimizer, self._learning_rate(), self.weight_decay)
        self.loss_curve_, self.validation_loss_curve_, self.best_loss_ = [], [], np.inf
        return rng

    def _learning_rate(self) -> float:
        if self.learning_rate == "auto" and not self._hidden():
            return self.LINEAR_AUTO_LEARNING_RATES[self.optimizer]
        return super()._learning_rate()

    def _batch_size(self, n: int) -> int:
        return min(200, n) if self.batch_size == "auto" else min(self.batch_size, n)

    def _validate_fit_data(self, X, y, sample_weight, reset: bool):
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64, accept_sparse="csr")
        check_classification_targets(y)
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        return X, y, sw

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train from scratch on ``X`` (n_samples, n_features) and labels ``y``."""
        X, y, sw = self._validate_fit_data(X, y, sample_weight, reset=True)
        y_idx = self._set_classes(y)
        rng = self._start(X.shape[1], y_idx, sw)
        if self.early_stopping:
            n_val, stratified = split_sizes(y_idx, self.validation_fraction)
            split = train_test_split(X, y_idx, sw, test_size=n_val, random_state=rng,
                                     stratify=y_idx if stratified else None)
            X, X_val, y_idx, y_val, sw, sw_val = split
        batch_size = self._batch_size(X.shape[0])
        best, stall, converged = BestWeights(), 0, False
        for epoch in range(self.max_epochs):
            self._optimizer.lr = scheduled_lr(self.lr_schedule, self._learning_rate(), epoch, self.max_epochs)
            train_loss = self._epoch(X, y_idx, sw, rng, batch_size)
            self.loss_curve_.append(train_loss)
            monitored = train_loss
            if self.early_stopping:
                monitored = self._validation_loss(X_val, y_val, sw_val)
                self.validation_loss_curve_.append(monitored)
            if self.verbose:
                extra = f", validation loss {monitored:.6f}" if self.early_stopping else ""
                print(f"epoch {epoch + 1}: loss {train_loss:.6f}{extra}")
            if self.callback is not None:
                self.callback(epoch + 1, train_loss, monitored if self.early_stopping else None)
            stall = 0 if monitored < best.loss - self.tol else stall + 1
            best.update(monitored, lambda: [p.copy() for p in self.coefs_ + self.intercepts_]
                        if self.early_stopping else None)
            if stall >= self.n_iter_no_change:
                converged = True
                break
        self.n_iter_, self.best_loss_ = epoch + 1, best.loss
        if best.weights is not None:
            n_layers = len(self.coefs_)
            self.coefs_, self.intercepts_ = best.weights[:n_layers], best.weights[n_layers:]
        if not converged:
            warnings.warn(f"{type(self).__name__}: training ended at `max_epochs={self.max_epochs}` before the "
                          f"{'validation' if self.early_stopping else 'training'} loss stopped improving (by tol="
                          f"{self.tol} for n_iter_no_change={self.n_iter_no_change} epochs); raise `max_epochs`.",
                          ConvergenceWarning, stacklevel=2)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``X``, ``y``, continuing from the current weights. The first call needs ``classes``."""
        first = _check_partial_fit_first_call(self, classes)
        X, y, sw = self._validate_fit_data(X, y, sample_weight, reset=first)
        if first:
            if len(self.classes_) < 2:
                raise InputValueError(f"classes must hold at least 2 classes, but got {self.classes_.tolist()}.")
            self._start(X.shape[1], self._encode(y), sw)
            self.n_iter_ = 0
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise InputValueError(f"y has labels {unknown.tolist()} that are not in classes {self.classes_.tolist()} "
                             f"given to the first partial_fit call.")
        batch_size = self._batch_size(X.shape[0])
        loss = self._epoch(X, self._encode(y), sw, self._rng, batch_size)
        self.loss_curve_.append(loss)
        self.best_loss_ = min(self.best_loss_, loss)
        self.n_iter_ += 1
        return self

    # ----------------------------------------------------------------------------------------- prediction
    def predict_log_proba(self, X) -> np.ndarray:
        """Log-probabilities from the logits in log space (log_softmax, or log_sigmoid of +-z), never log(proba)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, accept_sparse="csr")
        logits, _ = self._forward(X)
        if logits.shape[1] == 1:
            return np.hstack([log_sigmoid(-logits), log_sigmoid(logits)])
        return log_softmax(logits)
