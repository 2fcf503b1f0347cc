"""JSON out, written once for the whole library and the command line: NumPy values become Python ones, keys become
strings, and a float that is not finite becomes null with its path recorded under "non_finite"
(docs/semantics.md), so that the text is standard JSON.
"""

from __future__ import annotations

import json

import numpy as np


def json_value(v):
    """A NumPy scalar as the Python value it holds (for json.dumps, and for messages: ``7``, not
    ``np.int64(7)``); anything else unchanged."""
    return v.item() if isinstance(v, np.generic) else v


def json_safe(obj):
    """``obj`` with every dict key a string and every NumPy scalar a Python one, nested dicts and lists included.

    >>> json_safe({1: np.float32(0.5), "a": [np.int64(2)]})
    {'1': 0.5, 'a': [2]}
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return json_value(obj)


def to_json(obj: dict, **kwargs) -> str:
    """Standard JSON of the dict ``obj`` (``json_safe``): a float that is not finite becomes null, and the
    "non_finite" entry maps its path (a key, or e.g. "loss_curve[3]") to "inf", "-inf" or "nan". ``kwargs`` go to
    ``json.dumps`` (``indent=2``).

    >>> to_json({"loss": float("inf"), "curve": [1.0, float("nan")]})
    '{"loss": null, "curve": [1.0, null], "non_finite": {"loss": "inf", "curve[1]": "nan"}}'
    """
    flags = dict(obj.get("non_finite", {}))

    def clean(value, path):
        if isinstance(value, float) and not np.isfinite(value):
            flags[path] = str(value)
            return None
        if isinstance(value, dict):
            return {k: clean(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    cleaned = clean(json_safe({k: v for k, v in obj.items() if k != "non_finite"}), "")
    return json.dumps({**cleaned, "non_finite": flags}, allow_nan=False, **kwargs)
