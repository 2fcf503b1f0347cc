"""Save and load fitted models as ``model.npz`` (arrays) plus ``model.json`` (everything else), never pickle:
opening a model file runs no code (``np.load(..., allow_pickle=False)``).

A model is a fitted ``CrossEntropyClassifier`` or ``CNNClassifier``, alone or after a ``StandardScaler`` in a
pipeline; ``load_model`` also loads a ``TokenTagger`` (saved by its own ``save``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..rules.errors import InputTypeError, InputValueError
from .estimator import CrossEntropyClassifier

FORMAT = "crossentropy-model"


def _parts(model):
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps]
        if len(steps) != 2 or not isinstance(steps[0], StandardScaler):
            raise InputTypeError("save_model takes a classifier or a StandardScaler + classifier pipeline.")
        return steps[0], steps[1]
    return None, model


def _json_value(v):
    return v.item() if isinstance(v, np.generic) else v


def save_model(model, directory, *, metadata: dict | None = None) -> tuple[Path, Path]:
    """Write ``model.npz`` and ``model.json`` into ``directory``; return their paths."""
    scaler, clf = _parts(model)
    arrays: dict[str, np.ndarray] = {}
    if scaler is not None:
        arrays["scaler.mean"], arrays["scaler.scale"] = scaler.mean_, scaler.scale_
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
    info = {"format": FORMAT, "version": 1, "kind": kind, "params": params, "scaled": scaler is not None,
            "classes": [_json_value(c) for c in clf.classes_], "n_features_in": int(clf.n_features_in_),
            "loss_curve": list(clf.loss_curve_), "validation_loss_curve": list(clf.validation_loss_curve_),
            "metadata": metadata or {}, **extra}
    directory = Path(directory)
    npz, meta = directory / "model.npz", directory / "model.json"
    np.savez(npz, **arrays)
    meta.write_text(json.dumps(info, indent=2, default=_json_value))
    return npz, meta


def load_model(directory):
    """Rebuild a model saved by ``save_model``; no pickle is read."""
    directory = Path(directory)
    try:
        info = json.loads((directory / "model.json").read_text())
        arrays = dict(np.load(directory / "model.npz", allow_pickle=False))
    except FileNotFoundError as exc:
        raise InputValueError(f"{directory} has no saved model ({exc.filename} is missing); pass a run directory "
                         f"written by 'crossentropy train'.") from None
    if info.get("format") != FORMAT:
        raise InputValueError(f"{directory / 'model.json'} is not a crossentropy model file.")
    if info["kind"] == "TokenTagger":
        from .tagger import TokenTagger

        return TokenTagger.load(directory)
    classes = np.array(info["classes"])
    if info["kind"] == "CrossEntropyClassifier":
        clf = CrossEntropyClassifier(**{k: tuple(v) if k == "hidden_layer_sizes" else v
                                        for k, v in info["params"].items()})
        clf.coefs_ = [arrays[f"coef.{i}"] for i in range(info["n_layers"])]
        clf.intercepts_ = [arrays[f"intercept.{i}"] for i in range(info["n_layers"])]
    else:
        import torch

        from .cnn import CNNClassifier, build_network

        clf = CNNClassifier(**info["params"])
        clf.side_ = info["side"]
        clf.network_ = build_network(clf.side_, len(classes))
        clf.network_.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net.")})
    clf.classes_, clf.n_features_in_ = classes, info["n_features_in"]
    clf.loss_curve_, clf.validation_loss_curve_ = info["loss_curve"], info["validation_loss_curve"]
    clf.n_iter_ = len(clf.loss_curve_)
    if not info["scaled"]:
        return clf
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_ = arrays["scaler.mean"], arrays["scaler.scale"]
    scaler.var_, scaler.n_features_in_, scaler.n_samples_seen_ = scaler.scale_**2, info["n_features_in"], 0
    return make_pipeline(scaler, clf)
