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
import math
import zipfile
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ...rules.errors import InputTypeError, InputValueError
from ..models.estimator import CrossEntropyClassifier
from .table import TablePreprocessor

FORMAT = "crossentropy-model"
VERSION = 2  # 2 adds the "preprocessing" record; version 1 files (a "scaled" flag) still load


def _parts(model):
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps]
        if len(steps) != 2 or not isinstance(steps[0], (StandardScaler, TablePreprocessor)):
            raise InputTypeError("save_model takes a classifier, or a pipeline of a TablePreprocessor or "
                                 "StandardScaler and a classifier.")
        return steps[0], steps[1]
    return None, model


def _json_value(v):
    return v.item() if isinstance(v, np.generic) else v


def output_directory(directory) -> Path:
    """``directory`` as a Path, which must be an existing directory (a model is saved into it, never beside it)."""
    directory = Path(directory)
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise InputValueError(f"directory {directory} {what}; create it first (Path(directory).mkdir(parents=True)) "
                              f"or pass an existing directory to save the model into.")
    return directory


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
            "classes": [_json_value(c) for c in clf.classes_], "n_features_in": int(clf.n_features_in_),
            "loss_curve": list(clf.loss_curve_), "validation_loss_curve": list(clf.validation_loss_curve_),
            "metadata": metadata or {}, **extra}
    npz, meta = directory / "model.npz", directory / "model.json"
    np.savez(npz, **arrays)
    meta.write_text(json.dumps(info, indent=2, default=_json_value, allow_nan=False), encoding="utf-8")
    return npz, meta


def read_model_files(directory) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON record and the numeric arrays of the model saved in ``directory``, refusing a missing, damaged or
    foreign file (and JSON nested too deep to parse) with an ``InputValueError``."""
    directory = Path(directory)
    try:
        text = (directory / "model.json").read_text(encoding="utf-8")
        with np.load(directory / "model.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError as exc:
        raise InputValueError(f"{directory} has no saved model ({exc.filename} is missing); pass a run directory "
                              f"written by 'crossentropy train'.") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, UnicodeDecodeError,
            NotImplementedError) as exc:  # NotImplementedError: zipfile's unsupported (damaged) flags
        raise InputValueError(f"{directory / 'model.npz'} is damaged or not a crossentropy model "
                              f"({type(exc).__name__}: {str(exc)[:100]}); save the model again.") from None
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputValueError(f"{directory / 'model.json'} is not valid JSON ({exc.msg} at line {exc.lineno}); "
                              f"save the model again.") from None
    except RecursionError:
        raise InputValueError(f"{directory / 'model.json'} nests its values too deeply to be a model file; save the "
                              f"model again.") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise InputValueError(f"{directory / 'model.json'} is not a crossentropy model file.")
    if any(a.dtype.kind not in "fiub" for a in arrays.values()):
        raise InputValueError(f"{directory / 'model.npz'} holds non-numeric arrays; save the model again.")
    return info, arrays


def _field(info: dict, key: str, kinds, what: str = "model.json"):
    value = info.get(key) if isinstance(info, dict) else None
    if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is not bool):
        raise InputValueError(f"{what} has no valid {key!r} (got {value!r:.60}); save the model again.")
    return value


def number_list(info: dict, key: str) -> list:
    """``info[key]``, which must be a list of finite numbers (a loss curve)."""
    values = _field(info, key, list)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise InputValueError(f"model.json's {key!r} must be a list of finite numbers (got {values!r:.60}); save the "
                              f"model again.")
    return values


def _array(arrays: dict, key: str, shape: tuple) -> np.ndarray:
    if key not in arrays:
        raise InputValueError(f"model.npz lacks the array {key!r}; save the model again.")
    a = arrays[key]
    if a.shape != shape:
        raise InputValueError(f"model.npz array {key!r} has shape {a.shape}, but the model needs {shape}.")
    if a.dtype != np.float64:  # the saved weights are float64: another dtype would predict differently
        raise InputValueError(f"model.npz array {key!r} has dtype {a.dtype}, but the model's weights are float64; "
                              f"save the model again.")
    if not np.isfinite(a).all():
        raise InputValueError(f"model.npz array {key!r} holds NaN or inf; save the model again.")
    return a


def _mlp(info: dict, arrays: dict, n_inputs: int, n_classes: int) -> CrossEntropyClassifier:
    params = _field(info, "params", dict)
    hidden = _field(params, "hidden_layer_sizes", list, "model.json params")
    n_layers = _field(info, "n_layers", int)
    if n_layers != len(hidden) + 1 or not all(isinstance(h, int) and h > 0 for h in hidden):
        raise InputValueError(f"model.json says {n_layers} layers but hidden_layer_sizes {hidden}; save the model "
                              f"again.")
    try:
        clf = CrossEntropyClassifier(**{k: tuple(v) if k == "hidden_layer_sizes" else v for k, v in params.items()})
        clf._validate_params()  # scikit-learn's own check of every parameter's type and range
    except (TypeError, ValueError) as exc:
        raise InputValueError(f"model.json params do not fit CrossEntropyClassifier ({exc}).") from None
    sizes = [n_inputs, *hidden, 1 if n_classes == 2 else n_classes]
    clf.coefs_ = [_array(arrays, f"coef.{i}", (sizes[i], sizes[i + 1])) for i in range(n_layers)]
    clf.intercepts_ = [_array(arrays, f"intercept.{i}", (sizes[i + 1],)) for i in range(n_layers)]
    return clf


def _cnn(info: dict, arrays: dict, n_inputs: int, n_classes: int):
    from ..models.cnn import CNNClassifier, build_network

    side = _field(info, "side", int)
    if side < 2 or side * side != n_inputs:
        raise InputValueError(f"model.json says images of side {side}, but {n_inputs} features.")
    try:
        clf = CNNClassifier(**_field(info, "params", dict))
    except TypeError as exc:
        raise InputValueError(f"model.json params do not fit CNNClassifier ({exc}).") from None
    clf.side_ = side
    clf.network_ = build_network(side, n_classes)
    load_weights(clf.network_, {k[4:]: v for k, v in arrays.items() if k.startswith("net.")}, "this CNN")
    return clf


def load_weights(network, arrays: dict[str, np.ndarray], what: str) -> None:
    """Copy ``arrays`` into the torch ``network``: the names, shapes and dtypes must be exactly those of its
    ``state_dict()`` and every value finite, else an ``InputValueError`` (``what`` names the model)."""
    import torch

    state = network.state_dict()
    if set(arrays) != set(state):
        odd = sorted(set(arrays) ^ set(state))[:3]
        raise InputValueError(f"model.npz does not hold {what}'s weights (missing or unexpected arrays {odd}); save "
                              f"the model again.")
    for name, tensor in state.items():
        a = arrays[name]
        if a.shape != tuple(tensor.shape) or a.dtype != np.dtype(str(tensor.dtype).removeprefix("torch.")):
            raise InputValueError(f"model.npz does not hold {what}'s weights: {name!r} is {a.dtype} of shape "
                                  f"{a.shape}, but {what} needs {str(tensor.dtype).removeprefix('torch.')} of shape "
                                  f"{tuple(tensor.shape)}; save the model again.")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise InputValueError(f"model.npz array {name!r} holds NaN or inf; save the model again.")
    network.load_state_dict({name: torch.from_numpy(a) for name, a in arrays.items()})


def _preprocessing(info: dict, arrays: dict):
    """The saved preprocessing step (or None), and the number of features it feeds the classifier."""
    n_in = _field(info, "n_features_in", int)
    record = info.get("preprocessing")
    if record is None:  # version 1: a "scaled" flag
        record = {"kind": "StandardScaler" if _field(info, "scaled", bool) else None}
    if not isinstance(record, dict) or "kind" not in record:
        raise InputValueError(f"model.json's preprocessing must be an object with a 'kind' (got {record!r:.60}); "
                              f"save the model again.")
    kind = _field(record, "kind", (str, type(None)), "model.json preprocessing")
    if kind is None:
        if any(k.startswith(("scaler.", "table.")) for k in arrays):
            raise InputValueError("model.json records no preprocessing, but model.npz holds a preprocessing step's "
                                  "arrays; save the model again.")
        return None, n_in
    if kind == "StandardScaler":
        scaler = StandardScaler()
        scaler.mean_ = _array(arrays, "scaler.mean", (n_in,))
        scaler.scale_ = _array(arrays, "scaler.scale", (n_in,))
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
    if info.get("kind") == "TokenTagger":
        from ..models.tagger import TokenTagger

        return TokenTagger.load(directory)
    if info.get("kind") == "FastTextClassifier":
        from ..models.text_model import FastTextClassifier

        return FastTextClassifier.from_saved(info, arrays)
    classes = _field(info, "classes", list)
    if len(classes) < 2 or not all(isinstance(c, (int, float, str)) for c in classes) \
            or len({str(c) for c in classes}) != len(classes):
        raise InputValueError(f"model.json's classes must be at least two distinct labels, but got {classes!r:.80}.")
    classes = np.array(classes)
    prep, n_in = _preprocessing(info, arrays)
    kind = _field(info, "kind", str)
    if kind == "CrossEntropyClassifier":
        clf = _mlp(info, arrays, n_in, len(classes))
    elif kind == "CNNClassifier":
        clf = _cnn(info, arrays, n_in, len(classes))
    else:
        raise InputValueError(f"model.json names an unknown model kind {kind!r}.")
    curves = [number_list(info, key) for key in ("loss_curve", "validation_loss_curve")]
    clf.classes_, clf.n_features_in_ = classes, n_in
    clf.loss_curve_, clf.validation_loss_curve_ = curves
    clf.n_iter_ = len(clf.loss_curve_)
    return clf if prep is None else make_pipeline(prep, clf)
