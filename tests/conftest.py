"""Shared test settings: the one tolerance table keyed by dtype, and hypothesis profiles."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings

# rtol/atol by the dtype of the computation under test. float16 is computed in float32 but its inputs and
# gradients are rounded to float16.
TOL = {
    np.dtype(np.float16): {"rtol": 2e-3, "atol": 1e-3},
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-6},
    np.dtype(np.float64): {"rtol": 1e-10, "atol": 1e-12},
    # named tiers, for comparisons whose error is not the rounding of a dtype
    "finite_difference": {"rtol": 1e-6, "atol": 1e-7},  # central differences with h = 1e-6 in float64
    "minimizer": {"rtol": 1e-6, "atol": 0.0},  # an exact optimum against a brute-force (grid + Brent) minimiser
}

settings.register_profile("default", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("ci")


def tol(dtype) -> dict:
    """The tolerances of ``dtype``, or of a named tier such as ``"minimizer"``."""
    return TOL[dtype] if isinstance(dtype, str) and dtype in TOL else TOL[np.dtype(dtype)]


def assert_close(actual, expected, dtype=np.float64, **override) -> None:
    """Compare with the tolerance of ``dtype`` (NaN equals NaN, inf must match exactly)."""
    kw = {**tol(dtype), **override}
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               equal_nan=True, **kw)


def numeric_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar ``f`` at float64 ``x``."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = float(f(x))
        x[i] = old - h
        down = float(f(x))
        x[i] = old
        g[i] = (up - down) / (2 * h)
    return g
