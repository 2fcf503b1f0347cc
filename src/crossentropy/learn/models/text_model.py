"""``crossentropy train --task text``: a small fastText-style neural text classifier, trained with
``crossentropy.torch.cross_entropy`` (or its focal loss). Needs the ``torch`` extra.

A text is read as the bag of its word n-grams and character n-grams (``text.ngrams``), each hashed into one of
``n_buckets`` rows of an embedding (CRC32 of the UTF-8 n-gram, so the same on every machine and run). An
``nn.EmbeddingBag(mode="mean")`` averages a text's rows, given as one flat index list plus offsets, so no padding
exists to be ignored and texts of any length share a batch; dropout and a linear layer give one logit per class:

    logits = W · mean_{g in ngrams(text)} E[crc32(g) mod n_buckets] + b

An empty text gives the zero vector, so its logits are ``b``. ``class_weight``, ``label_smoothing`` and
``loss="focal"`` go to the loss as in the other models. The model is saved as ``model.npz`` (E, W, b) and
``model.json`` (settings, classes, the text column), without pickle.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval
from torch import nn

from ...core.jsonio import json_value
from ...core.weights import class_weights
from ...rules.errors import InputValueError
from ..choices import TRAIN_DEFAULTS
from ..io.modelfiles import FORMAT
from ..io.table import TEXT, column_roles
from ..io.text import display_ngram, ngrams
from ..metrics.evaluate import EvaluationReport, evaluate
from ..metrics.explain import hardest_examples, top_ngrams
from .training import TORCH_CONSTRAINTS, fit_network, torch_loss, torch_optimizer, torch_threads


class FastTextNetwork(nn.Module):
    """EmbeddingBag (mean) over hashed n-grams, dropout, linear."""

    def __init__(self, n_buckets: int, dim: int, n_classes: int, dropout: float):
        super().__init__()
        self.embedding = nn.EmbeddingBag(n_buckets, dim, mode="mean")
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(dim, n_classes)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.output(self.dropout(self.embedding(ids, offsets)))


class FastTextClassifier(BaseEstimator):
    """A fastText-style text classifier (module doc) with a scikit-learn-like interface: ``fit(texts, y)``,
    ``predict_proba(texts)``, ``predict(texts)``, ``classes_``. ``texts`` is a list of strings, or a DataFrame
    whose ``text_column`` holds them.

    Holds out ``validation_fraction`` (stratified) to report a validation loss each epoch
    (``callback(epoch, train_loss, validation_loss)``) and keeps the weights of the best epoch (``best_epoch_``).
    With ``refit`` (the default), a fresh network then trains on all the texts for ``best_epoch_`` epochs, as
    scikit-learn's ``*CV`` estimators refit on all the data; the loss curves are those of the first run.
    """

    PARAMS = ("epochs", "learning_rate", "batch_size", "optimizer", "weight_decay", "loss", "gamma",
              "label_smoothing", "class_weight", "dim", "n_buckets", "dropout", "word_ngram_range",
              "char_ngram_range", "validation_fraction", "refit", "random_state", "num_threads", "text_column")
    _parameter_constraints: dict = {
        **TORCH_CONSTRAINTS,
        "dim": [Interval(Integral, 1, None, closed="left")],
        "n_buckets": [Interval(Integral, 1, None, closed="left")],
        "word_ngram_range": [tuple, list],
        "char_ngram_range": [tuple, list],
        "refit": ["boolean"],
        "text_column": [str, Integral],
    }


    def __init__(self, *, epochs=30, learning_rate=0.005, batch_size=32, optimizer="adam", weight_decay=1e-5,
                 loss="cross_entropy", gamma=2.0, label_smoothing=0.0, class_weight=None, dim=64, n_buckets=2**15,
                 dropout=0.5, word_ngram_range=(1, 2), char_ngram_range=(2, 3), validation_fraction=0.1,
                 refit=True, random_state=0, num_threads=1, text_column="text", callback=None):
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.loss = loss
        self.gamma = gamma
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.dim = dim
        self.n_buckets = n_buckets
        self.dropout = dropout
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.random_state = random_state
        self.num_threads = num_threads
        self.text_column = text_column
        self.callback = callback

    def get_params(self, deep: bool = True) -> dict:
        """The parameters that ``save`` writes (all but ``callback``)."""
        return {name: getattr(self, name) for name in self.PARAMS}

    # -------------------------------------------------------------------------------------------- encoding
    def _texts(self, X) -> list[str]:
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            if self.text_column not in X.columns:
                raise InputValueError(f"the data lacks the text column {self.text_column!r} that the model was "
                                      f"trained on; its columns are {list(X.columns)}.")
            X = X[self.text_column]
        if isinstance(X, str):
            raise InputValueError("texts must be a list of strings (or a DataFrame), not one string; wrap it in "
                                  "a list.")
        return ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in X]

    def _ngrams(self, text: str) -> list[str]:
        words, chars = ngrams(text, tuple(self.word_ngram_range), tuple(self.char_ngram_range))
        return words + chars

    def _bucket(self, gram: str) -> int:
        return zlib.crc32(gram.encode("utf-8")) % self.n_buckets

    def _ids(self, bag: list[str]) -> np.ndarray:
        return np.array([self._bucket(g) for g in bag], dtype=np.int64)

    def _bags(self, bags: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat bucket ids and the offset of each bag (EmbeddingBag's input)."""
        return self._batch([self._ids(bag) for bag in bags])

    @staticmethod
    def _batch(ids: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        offsets = np.cumsum([0] + [len(i) for i in ids[:-1]])
        flat = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        return torch.from_numpy(flat), torch.as_tensor(offsets, dtype=torch.int64)

    # -------------------------------------------------------------------------------------------- training
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y) -> FastTextClassifier:
        texts, y = self._texts(X), np.asarray(y)
        if len(texts) != len(y):
            raise InputValueError(f"X has {len(texts)} texts but y has {len(y)} labels; give one label per text.")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise InputValueError(f"y must hold at least 2 classes, but got only {self.classes_.tolist()}.")
        with torch_threads(self.num_threads):
            return self._fit([self._ids(self._ngrams(t)) for t in texts], y_idx.reshape(-1))

    def _fit(self, bags, y_idx) -> FastTextClassifier:
        torch.manual_seed(self.random_state)
        train_idx, val_idx = np.arange(len(bags)), np.arange(0)
        if len(bags) >= 20 and self.validation_fraction:
            stratify = y_idx if np.bincount(y_idx).min() >= 2 else None
            train_idx, val_idx = train_test_split(train_idx, test_size=self.validation_fraction, stratify=stratify,
                                                  random_state=self.random_state)
        weight = None
        if self.class_weight is not None:
            weight = torch.as_tensor(class_weights(y_idx[train_idx], n_classes=len(self.classes_),
                                                   method=self.class_weight), dtype=torch.float32)
        targets = torch.as_tensor(y_idx, dtype=torch.int64)
        self.loss_curve_, self.validation_loss_curve_, best_loss, best_epoch = self._train(
            bags, targets, weight, train_idx, val_idx, self.epochs, self.callback)
        if self.refit and len(val_idx):
            # the held-out texts join the training set for as many epochs as the best validation epoch took
            self._train(bags, targets, weight, np.arange(len(bags)), np.arange(0), best_epoch, None)
        self.best_loss_, self.best_epoch_, self.n_iter_ = best_loss, best_epoch, self.epochs
        return self

    def _train(self, bags, targets, weight, train_idx, val_idx, epochs, callback) -> tuple:
        """Train a fresh network for ``epochs`` over ``train_idx`` (``training.fit_network``); with ``val_idx``,
        keep the weights of the epoch of least validation loss. Returns the loss curves, that loss and epoch
        (``inf`` and ``epochs`` without ``val_idx``)."""
        rng = np.random.default_rng(self.random_state)
        self.network_ = FastTextNetwork(self.n_buckets, self.dim, len(self.classes_), self.dropout)
        opt = torch_optimizer(self.optimizer, self.network_.parameters(), self.learning_rate, self.weight_decay)

        def batches():
            order = rng.permutation(train_idx)
            for start in range(0, len(order), self.batch_size):
                chosen = order[start:start + self.batch_size]
                yield self._batch([bags[i] for i in chosen]), targets[chosen], len(chosen)

        val = (self._batch([bags[i] for i in val_idx]), targets[val_idx]) if len(val_idx) else None
        return fit_network(self.network_, opt, lambda logits, y: torch_loss(self, logits, y, weight), batches,
                           epochs=epochs, validation=val, callback=callback)

    # -------------------------------------------------------------------------------------------- prediction
    def _logits_bags(self, bags: list[list[str]], batch_size: int = 1024) -> np.ndarray:
        if not hasattr(self, "network_"):
            raise InputValueError("this FastTextClassifier is not fitted yet; call fit(texts, y) first.")
        self.network_.eval()
        out = []
        with torch.no_grad(), torch_threads(self.num_threads):
            for start in range(0, len(bags), batch_size):
                out.append(self.network_(*self._bags(bags[start:start + batch_size])).double().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)))

    def _log_proba_bags(self, bags: list[list[str]]) -> np.ndarray:
        logits = self._logits_bags(bags)
        return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)

    def predict_log_proba(self, X) -> np.ndarray:
        return self._log_proba_bags([self._ngrams(t) for t in self._texts(X)])

    def predict_proba(self, X) -> np.ndarray:
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_log_proba(X).argmax(axis=1)]

    def explain(self, X, y, hardest: list[dict], k: int = 10) -> dict:
        """As ``explain.text_influence``, over the n-grams of the texts ``X``. A text's logits are the mean of its
        n-grams' ``W E[g]`` plus ``b``, so each n-gram's score for a class is its own ``W E[g]``, centred over the
        classes (the log-odds it adds against the average class; log-probabilities of a one-n-gram text would
        saturate). ``hardest`` entries (rows of ``X``) gain ``"contributions"`` by occlusion of each distinct
        n-gram: ``log p(true | text) - log p(true | text without it)``."""
        bags = [self._ngrams(t) for t in self._texts(X)]
        grams = sorted({g for bag in bags for g in bag})
        if not grams:
            return {}
        delta = self._logits_bags([[g] for g in grams]) - self._logits_bags([[]])
        delta -= delta.mean(axis=1, keepdims=True)
        y_index = np.searchsorted(self.classes_, np.asarray(y))
        for example in hardest:
            bag = bags[example["index"]]
            present = sorted(set(bag))
            true = y_index[example["index"]]
            base = self._log_proba_bags([bag])[0, true]
            change = base - self._log_proba_bags([[g for g in bag if g != p] for p in present])[:, true]
            order = np.argsort(-np.abs(change), kind="stable")[:k]
            example["contributions"] = [{"ngram": display_ngram(present[i]), "log_p_true": float(change[i])}
                                        for i in order]
        return {"top_ngrams": top_ngrams(delta, [display_ngram(g) for g in grams], self.classes_, k)}

    # -------------------------------------------------------------------------------------------- persistence
    def save(self, directory, *, metadata: dict | None = None) -> tuple[Path, Path]:
        """Write ``model.npz`` (the network's weights) and ``model.json`` (settings, classes)."""
        directory = Path(directory)
        npz, meta = directory / "model.npz", directory / "model.json"
        np.savez(npz, **{name: t.detach().cpu().numpy() for name, t in self.network_.state_dict().items()})
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()}
        info = {"format": FORMAT, "version": 1, "kind": type(self).__name__, "params": params,
                "classes": [json_value(c) for c in self.classes_],
                "loss_curve": self.loss_curve_, "validation_loss_curve": self.validation_loss_curve_,
                "metadata": metadata or {}}
        meta.write_text(json.dumps(info, indent=1))
        return npz, meta

    @classmethod
    def from_saved(cls, info: dict, arrays: dict) -> FastTextClassifier:
        """Rebuild from the ``model.json`` record and ``model.npz`` arrays written by ``save``."""
        try:
            params = dict(info["params"])
            model = cls(**params)
            model.classes_ = np.array(info["classes"])
            model.loss_curve_, model.validation_loss_curve_ = info["loss_curve"], info["validation_loss_curve"]
            model.network_ = FastTextNetwork(model.n_buckets, model.dim, len(model.classes_), model.dropout)
            model.network_.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
        except (KeyError, TypeError, RuntimeError) as exc:
            raise InputValueError(f"model.json/model.npz do not hold a FastTextClassifier "
                                  f"({str(exc).splitlines()[0][:120]}); save the model again.") from None
        model.n_iter_ = len(model.loss_curve_)
        return model


# ------------------------------------------------------------------------------------------------ workflow
@dataclass
class TextResult:
    model: FastTextClassifier
    report: EvaluationReport
    hardest: list[dict]
    train_seconds: float
    n_train: int
    n_test: int
    explanation: dict = field(default_factory=dict)


def check_text_data(data, text_columns=None, test=None) -> str:
    """The text column of ``data`` (a ``data.Dataset``) for ``--task text``: the one given (``--text COL``), or the
    only column that ``table.column_roles`` calls text. Anything else is an ``InputValueError``."""
    if text_columns:
        if len(text_columns) != 1:
            raise InputValueError(f"the text classifier reads one text column, but `text_columns` names "
                                  f"{list(text_columns)}.")
        column = text_columns[0]
        if column not in data.X.columns:
            raise InputValueError(f"`text_columns` names {column!r}, which is not a column of {data.name}; its "
                                  f"columns are {list(data.X.columns)}.")
    else:
        texts = [n for n, role in column_roles(data.X).items() if role == TEXT]
        if len(texts) != 1:
            raise InputValueError(f"the text classifier needs one text column, but {data.name} has "
                                  f"{len(texts)} that look like text ({texts}); name one with `text_columns`.")
        column = texts[0]
    if test is not None and column not in test.X.columns:
        raise InputValueError(f"the `test` data lacks the text column {column!r}.")
    return column


def train_text_classifier(data, test=None, *, text_column: str, test_size: float = TRAIN_DEFAULTS["test_size"],
                          seed: int = TRAIN_DEFAULTS["seed"], loss=TRAIN_DEFAULTS["loss"],
                          label_smoothing=TRAIN_DEFAULTS["label_smoothing"],
                          class_weight=TRAIN_DEFAULTS["class_weight"], optimizer=TRAIN_DEFAULTS["optimizer"],
                          learning_rate=None, epochs=None, batch_size=None, callback=None) -> TextResult:
    """Fit a ``FastTextClassifier`` on ``data[text_column]`` and evaluate it on ``test``, or on a stratified
    ``test_size`` share of ``data``, with the hardest test examples and the n-gram explanation."""
    texts, y = data.X[text_column], data.y
    if test is None:
        if not 0 < test_size < 1:
            raise InputValueError(f"test_size must be in (0, 1), but got {test_size}.")
        _, counts = np.unique(y, return_counts=True)
        X_train, X_test, y_train, y_test, _, rows = train_test_split(
            texts, y, np.arange(len(y)), test_size=test_size, random_state=seed,
            stratify=y if counts.min() >= 2 else None)
    else:
        X_train, y_train, X_test, y_test, rows = texts, y, test.X[text_column], test.y, np.arange(len(test.y))
    options = {"learning_rate": learning_rate, "epochs": epochs, "batch_size": batch_size}
    model = FastTextClassifier(loss=loss, label_smoothing=label_smoothing, class_weight=class_weight,
                               optimizer=optimizer, random_state=seed, text_column=text_column, callback=callback,
                               **{k: v for k, v in options.items() if v is not None})
    start = time.perf_counter()
    model.fit(list(X_train), y_train)
    seconds = time.perf_counter() - start
    proba = model.predict_proba(list(X_test))
    hardest = hardest_examples(y_test, proba, k=5, labels=model.classes_)
    explanation = model.explain(list(X_test), y_test, hardest)
    for example in hardest:
        example["index"] = int(rows[example["index"]])
    return TextResult(model, evaluate(y_test, proba, labels=model.classes_), hardest, seconds, len(y_train),
                      len(y_test), explanation)


def write_text_run(directory, result: TextResult, *, metadata: dict | None = None) -> list[str]:
    """Save the model (``model.npz`` + ``model.json``) and the report's plots into ``directory``; return the names
    written (``metrics.json`` is the caller's)."""
    result.model.save(directory, metadata=metadata)
    return ["model.npz", "model.json"] + [p.name for p in result.report.plot(directory)]
