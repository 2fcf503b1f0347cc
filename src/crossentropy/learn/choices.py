"""The names and defaults that the workflows of ``crossentropy.learn`` accept, in one light module: it imports
neither scikit-learn nor torch, so that the command line builds its parser from it (``crossentropy.cli``) and a
core-only install still runs ``crossentropy info``. The estimators and workflows take their tuples and defaults
from here; ``None`` for an option means "the library's default" (for the epochs, the learning rate and the batch
size that default depends on the model).
"""

from __future__ import annotations

from ..constants import LOSSES
from ..core.weights import METHODS as CLASS_WEIGHTS
from .models.optim import OPTIMIZERS

TASKS = ("classification", "text", "tagging")  # train: a table, one text column, or a CoNLL token tagger
MODELS = ("softmax", "mlp", "cnn")  # the classifiers of a table
DEFAULT_MODEL = "mlp"
DATASETS = ("digits", "iris", "wine", "breast_cancer")  # scikit-learn's bundled data sets, by name
SCHEMES = ("IOB1", "IOB2")  # the tag schemes of the tagging reports

TRAIN_DEFAULTS = {"task": "classification", "data": "digits", "loss": "cross_entropy", "label_smoothing": 0.0,
                  "class_weight": None, "optimizer": "adam", "test_size": 0.25, "seed": 0, "max_features": 20000}
TAGGING_DEFAULTS = {"scheme": "IOB2"}

__all__ = ["CLASS_WEIGHTS", "DATASETS", "DEFAULT_MODEL", "LOSSES", "MODELS", "OPTIMIZERS", "SCHEMES", "TASKS",
           "TAGGING_DEFAULTS", "TRAIN_DEFAULTS"]
