"""A small PyTorch CNN for square grayscale images (such as scikit-learn's 8x8 digits), trained with
``crossentropy.torch``'s losses and the shared training loop (training.py). Needs the ``torch`` extra.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from ...rules.errors import InputValueError
from ..choices import CLASS_WEIGHTS
from .base import ClassifierBase
from .training import TORCH_CONSTRAINTS, fit_network, torch_loss, torch_optimizer


def build_network(side: int, n_classes: int) -> nn.Sequential:
    """conv(16) - relu - conv(32) - relu - maxpool(2) - linear(64) - relu - linear(K), for ``side x side`` inputs."""
    pooled = side // 2
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * pooled * pooled, 64), nn.ReLU(), nn.Linear(64, n_classes))


class CNNClassifier(ClassifierBase):
    """A convolutional classifier for flattened square images ``X (n, side * side)``, trained with
    ``crossentropy.torch.cross_entropy`` (or its focal loss) and Adam / AdamW / SGD.

    Holds out ``validation_fraction`` (stratified) to report a validation loss each epoch and keeps the weights of
    the best epoch. ``callback(epoch, train_loss, validation_loss)`` is called after each epoch.
    ``learning_rate="auto"`` is 1e-3 for Adam and AdamW and 0.05 for SGD.
    """

    _parameter_constraints: dict = {
        **TORCH_CONSTRAINTS,
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "class_weight": [None, dict, StrOptions(set(CLASS_WEIGHTS))],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

    AUTO_LEARNING_RATES = {"adam": 1e-3, "adamw": 1e-3, "sgd": 0.05}

    def __init__(self, *, epochs=30, learning_rate="auto", batch_size=64, optimizer="adam", weight_decay=1e-4,
                 loss="cross_entropy", gamma=2.0, label_smoothing=0.0, class_weight=None, validation_fraction=0.1,
                 random_state=0, callback=None):
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.loss = loss
        self.gamma = gamma
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.callback = callback

    def _images(self, X) -> torch.Tensor:
        return torch.as_tensor(X, dtype=torch.float32).reshape(-1, 1, self.side_, self.side_)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        side = math.isqrt(X.shape[1])
        if side * side != X.shape[1] or side < 2:
            raise InputValueError(f"the cnn model needs square images flattened to side*side features, but X has "
                             f"{X.shape[1]} features. Use the MLP (`model='mlp'`) for tabular data.")
        self.side_ = side
        y_idx = self._set_classes(y)
        torch.manual_seed(self.random_state)
        X_train, X_val, y_train, y_val = train_test_split(X, y_idx, test_size=self.validation_fraction,
                                                          stratify=y_idx, random_state=self.random_state)
        weight = self._class_weight_vector(y_train)
        weight = None if weight is None else torch.as_tensor(weight, dtype=torch.float32)
        self.network_ = build_network(side, len(self.classes_))
        opt = torch_optimizer(self.optimizer, self.network_.parameters(), self._learning_rate(), self.weight_decay)
        xt, yt = self._images(X_train), torch.as_tensor(y_train)
        generator = torch.Generator().manual_seed(self.random_state)

        def batches():
            for idx in torch.randperm(len(yt), generator=generator).split(self.batch_size):
                yield (xt[idx],), yt[idx], len(idx)

        self.loss_curve_, self.validation_loss_curve_, self.best_loss_, _ = fit_network(
            self.network_, opt, lambda logits, y: torch_loss(self, logits, y, weight), batches, epochs=self.epochs,
            validation=((self._images(X_val),), torch.as_tensor(y_val)), callback=self.callback)
        self.n_iter_ = self.epochs
        return self

    def predict_log_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        self.network_.eval()
        with torch.no_grad():
            return torch.log_softmax(self.network_(self._images(X)).double(), dim=1).numpy()
