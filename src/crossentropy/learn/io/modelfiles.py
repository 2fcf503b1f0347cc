"""The model file format: ``model.npz`` (arrays) plus ``model.json`` (everything else), never pickle. Reading
checks the files (a truncated, foreign or damaged file is an ``InputValueError``); ``models/persist.py`` turns the
checked record into a model by its kind.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np

from ...rules.errors import InputValueError

FORMAT = "crossentropy-model"
VERSION = 2  # 2 adds the "preprocessing" record; version 1 files (a "scaled" flag) still load


def output_directory(directory) -> Path:
    """``directory`` as a Path, which must be an existing directory (a model is saved into it, never beside it)."""
    directory = Path(directory)
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise InputValueError(f"directory {directory} {what}; create it first (Path(directory).mkdir(parents=True)) "
                              f"or pass an existing directory to save the model into.")
    return directory


def read_model_files(directory) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON record and the numeric arrays of the model saved in ``directory``, refusing a missing, damaged or
    foreign file (and JSON nested too deep to parse) with an ``InputValueError``."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputValueError(f"{directory} is a file, not a model's directory; pass the run directory that holds "
                              f"model.json and model.npz.")
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


def model_field(info: dict, key: str, kinds, what: str = "model.json"):
    """``info[key]``, which must be of type ``kinds``, else an ``InputValueError`` naming ``what``."""
    value = info.get(key) if isinstance(info, dict) else None
    if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is not bool):
        raise InputValueError(f"{what} has no valid {key!r} (got {value!r:.60}); save the model again.")
    return value


def number_list(info: dict, key: str) -> list:
    """``info[key]``, which must be a list of finite numbers (a loss curve)."""
    values = model_field(info, key, list)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise InputValueError(f"model.json's {key!r} must be a list of finite numbers (got {values!r:.60}); save the "
                              f"model again.")
    return values


def checked_array(arrays: dict, key: str, shape: tuple) -> np.ndarray:
    """``arrays[key]``, which must be finite float64 of ``shape`` (a saved weight), else an ``InputValueError``."""
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
