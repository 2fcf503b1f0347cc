"""Save and load fitted models as ``model.npz`` (arrays) plus ``model.json`` (everything else), never pickle:
opening a model file runs no code (``np.load(..., allow_pickle=False)``).

A model is a fitted ``CrossEntropyClassifier`` or ``CNNClassifier``, alone or after one preprocessing step in a
pipeline: a ``TablePreprocessor`` (``crossentropy train`` uses it; the JSON then records each feature's name, kind,
fill value and categories) or a ``StandardScaler``. ``load_model`` also loads a ``TokenTagger`` (saved by its
own ``save``) and a ``FastTextClassifier`` (``crossentropy train --task text``).

``load_model`` checks everything it reads: a file that is truncated, not a model, or inconsistent with itself
(a missing array, a shape that does not chain, a class list of the wrong length) is an ``InputValueError`` that
names the problem, never another exception and never a model that predicts differently.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ...core.jsonio import json_value
from ...rules.errors import InputTypeError, InputValueError
from ..io.modelfiles import (
    FORMAT,
    VERSION,
    checked_array,
    load_weights,
    model_field,
    number_list,
    output_directory,
    read_model_files,
)
from ..io.table import TablePreprocessor
from .estimator import CrossEntropyClassifier


def _parts(model):
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps]
        if len(steps) != 2 or not isinstance(steps[0], (StandardScaler, TablePreprocessor)):
            raise InputTypeError("save_model takes a classifier, or a pipeline of a TablePreprocessor or "
                                 "StandardScaler and a classifier.")
        return steps[0], steps[1]
    return None, model


def save_model(model, directory, *, metadata: dict | None = None) -> tuple[Path, Path]:
    """Write ``model.npz`` and ``model.json`` into ``directory`` (an existing directory); return their paths."""
    directory = output_directory(directory)
    prep, clf = _parts(model)
    arrays: dict[str, np.ndarray] = {}
    preprocessing: dict = {"kind": None}
    if isinstance(prep, StandardScaler):
        arrays["scaler.mean"], arrays["scaler.scale"] = prep.mean_, prep.scale_
        preprocessing = {"kind": "StandardScaler"}
    elif isinstance(prep, TablePreprocessor):
        state, table_arrays = prep.to_state()
        arrays.update(table_arrays)
        preprocessing = {"kind": "TablePreprocessor", **state}
    kind = type(clf).__name__
    if isinstance(clf, CrossEntropyClassifier):
        for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_, strict=True)):
            arrays[f"coef.{i}"], arrays[f"intercept.{i}"] = w, b
        extra = {"n_layers": len(clf.coefs_)}
    elif kind == "CNNClassifier":
        for name, tensor in clf.network_.state_dict().items():
            arrays[f"net.{name}"] = tensor.detach().cpu().numpy()
        extra = {"side": clf.side_}
    else:
        raise InputTypeError(f"save_model does not know how to save a {kind}.")
    params = {k: v for k, v in clf.get_params().items() if k != "callback"}
    info = {"format": FORMAT, "version": VERSION, "kind": kind, "params": params, "preprocessing": preprocessing,
            "classes": [json_value(c) for c in clf.classes_], "n_features_in": int(clf.n_features_in_),
            "loss_curve": list(clf.loss_curve_), "validation_loss_curve": list(clf.validation_loss_curve_),
            "metadata": metadata or {}, **extra}
    npz, meta = directory / "model.npz", directory / "model.json"
    np.savez(npz, **arrays)
    meta.write_text(json.dumps(info, indent=2, default=json_value, allow_nan=False), encoding="utf-8")
    return npz, meta


def _mlp(info: dict, arrays: dict, n_inputs: int, n_classes: int) -> CrossEntropyClassifier:
    params = model_field(info, "params", dict)
    hidden = model_field(params, "hidden_layer_sizes", list, "model.json params")
    n_layers = model_field(info, "n_layers", int)
    if n_layers != len(hidden) + 1 or not all(isinstance(h, int) and h > 0 for h in hidden):
        raise InputValueError(f"model.json says {n_layers} layers but hidden_layer_sizes {hidden}; save the model "
                              f"again.")
    try:
        clf = CrossEntropyClassifier(**{k: tuple(v) if k == "hidden_layer_sizes" else v for k, v in params.items()})
        clf._validate_params()  # scikit-learn's own check of every parameter's type and range
    except (TypeError, ValueError) as exc:
        raise InputValueError(f"model.json params do not fit CrossEntropyClassifier ({exc}).") from None
    sizes = [n_inputs, *hidden, 1 if n_classes == 2 else n_classes]
    clf.coefs_ = [checked_array(arrays, f"coef.{i}", (sizes[i], sizes[i + 1])) for i in range(n_layers)]
    clf.intercepts_ = [checked_array(arrays, f"intercept.{i}", (sizes[i + 1],)) for i in range(n_layers)]
    return clf


def _cnn(info: dict, arrays: dict, n_inputs: int, n_classes: int):
    from .cnn import CNNClassifier, build_network

    side = model_field(info, "side", int)
    if side < 2 or side * side != n_inputs:
        raise InputValueError(f"model.json says images of side {side}, but {n_inputs} features.")
    try:
        clf = CNNClassifier(**model_field(info, "params", dict))
    except TypeError as exc:
        raise InputValueError(f"model.json params do not fit CNNClassifier ({exc}).") from None
    clf.side_ = side
    clf.network_ = build_network(side, n_classes)
    load_weights(clf.network_, {k[4:]: v for k, v in arrays.items() if k.startswith("net.")}, "this CNN")
    return clf


def _preprocessing(info: dict, arrays: dict):
    """The saved preprocessing step (or None), and the number of features it feeds the classifier."""
    n_in = model_field(info, "n_features_in", int)
    record = info.get("preprocessing")
    if record is None:  # version 1: a "scaled" flag
        record = {"kind": "StandardScaler" if model_field(info, "scaled", bool) else None}
    if not isinstance(record, dict) or "kind" not in record:
        raise InputValueError(f"model.json's preprocessing must be an object with a 'kind' (got {record!r:.60}); "
                              f"save the model again.")
    kind = model_field(record, "kind", (str, type(None)), "model.json preprocessing")
    if kind is None:
        if any(k.startswith(("scaler.", "table.")) for k in arrays):
            raise InputValueError("model.json records no preprocessing, but model.npz holds a preprocessing step's "
                                  "arrays; save the model again.")
        return None, n_in
    if kind == "StandardScaler":
        scaler = StandardScaler()
        scaler.mean_ = checked_array(arrays, "scaler.mean", (n_in,))
        scaler.scale_ = checked_array(arrays, "scaler.scale", (n_in,))
        scaler.var_, scaler.n_features_in_, scaler.n_samples_seen_ = scaler.scale_**2, n_in, 0
        return scaler, n_in
    if kind == "TablePreprocessor":
        table = TablePreprocessor.from_state(record, arrays)
        if table.n_features_out_ != n_in:
            raise InputValueError(f"model.json's preprocessing makes {table.n_features_out_} features, but the "
                                  f"classifier takes {n_in}.")
        return table, n_in
    raise InputValueError(f"model.json names an unknown preprocessing {kind!r}.")


def load_model(directory):
    """Rebuild a model saved by ``save_model``; no pickle is read.

    >>> import tempfile
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = CrossEntropyClassifier(hidden_layer_sizes=(), max_epochs=5, random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = save_model(clf, d)
    ...     bool((load_model(d).predict_proba(X) == clf.predict_proba(X)).all())
    True
    """
    directory = Path(directory)
    info, arrays = read_model_files(directory)
    return MODEL_FORMATS.get(info.get("kind"), _classifier)(directory, info, arrays)


def _tagger(directory: Path, info: dict, arrays: dict):
    from .tagger import TokenTagger  # torch: imported only for a torch model

    return TokenTagger.load(directory)


def _text_model(directory: Path, info: dict, arrays: dict):
    from .text_model import FastTextClassifier  # torch: imported only for a torch model

    return FastTextClassifier.from_saved(info, arrays)


def _classifier(directory: Path, info: dict, arrays: dict):
    """A tabular classifier (``CLASSIFIER_FORMATS``), alone or after its saved preprocessing step."""
    classes = model_field(info, "classes", list)
    if len(classes) < 2 or not all(isinstance(c, (int, float, str)) for c in classes) \
            or len({str(c) for c in classes}) != len(classes):
        raise InputValueError(f"model.json's classes must be at least two distinct labels, but got {classes!r:.80}.")
    classes = np.array(classes)
    prep, n_in = _preprocessing(info, arrays)
    kind = model_field(info, "kind", str)
    if kind not in CLASSIFIER_FORMATS:
        raise InputValueError(f"model.json names an unknown model kind {kind!r}.")
    clf = CLASSIFIER_FORMATS[kind](info, arrays, n_in, len(classes))
    curves = [number_list(info, key) for key in ("loss_curve", "validation_loss_curve")]
    clf.classes_, clf.n_features_in_ = classes, n_in
    clf.loss_curve_, clf.validation_loss_curve_ = curves
    clf.n_iter_ = len(clf.loss_curve_)
    return clf if prep is None else make_pipeline(prep, clf)


# The registry of model formats: model.json's "kind" -> the function that rebuilds it. A kind not listed here is
# a tabular classifier (CLASSIFIER_FORMATS: its weights, classes and preprocessing step are read the same way).
MODEL_FORMATS = {"TokenTagger": _tagger, "FastTextClassifier": _text_model}
CLASSIFIER_FORMATS = {"CrossEntropyClassifier": _mlp, "CNNClassifier": _cnn}
