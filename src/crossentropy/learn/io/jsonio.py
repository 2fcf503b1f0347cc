"""JSON out: the one conversion of NumPy values for ``json``."""

from __future__ import annotations

import numpy as np


def json_value(v):
    """A NumPy scalar as the Python number it holds (for json.dumps)."""
    return v.item() if isinstance(v, np.generic) else v
