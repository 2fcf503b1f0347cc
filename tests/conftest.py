"""Shared test settings: the one tolerance table, and hypothesis profiles.

Tolerances are looked up by key, never written in a test:

* a dtype (NumPy's float16/32/64, or torch's float16/bfloat16/float32/float64): a computation in that dtype
  against a float64 reference of the same quantity;
* a named tier, for comparisons that are not about one dtype:
  - ``"float64-reference"``: two float64 computations of the same value by different formulas or libraries
    (ours against tests/reference.py, PyTorch, scikit-learn, SciPy, seqeval);
  - ``"finite-difference"``: an analytic gradient against central differences in float64 (step 1e-6);
  - ``"finite-difference-float32"``: float32 losses against float64 differences;
  - ``"low-precision-gradient"``: float16/bfloat16 gradients (built in float32, rounded to 16 bits) against
    float64;
  - ``"compensated-sum"``: a streamed, compensated float64 sum against ``math.fsum``;
  - ``"minimizer"``: an exact optimum (``fit_temperature``) against a brute-force grid + Brent minimiser;
  - ``"iterative"``: the end point of an iterative optimiser against the known optimum;
  - ``"gradient-accumulation"``: a float64 gradient accumulated over micro-batches against one full batch's;
  - ``"exact"``: bit-identical results (the same computation reached two ways).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

TOL = {
    "float16": {"rtol": 2e-3, "atol": 1e-3},
    "bfloat16": {"rtol": 1e-2, "atol": 1e-3},
    "float32": {"rtol": 1e-5, "atol": 1e-6},
    "float64": {"rtol": 1e-10, "atol": 1e-12},
    "float64-reference": {"rtol": 1e-9, "atol": 1e-12},
    "finite-difference": {"rtol": 1e-5, "atol": 1e-6},
    "finite-difference-float32": {"rtol": 1e-3, "atol": 1e-4},
    "low-precision-gradient": {"rtol": 2e-2, "atol": 1e-5},
    "compensated-sum": {"rtol": 1e-12, "atol": 0.0},
    "iterative": {"rtol": 1e-3, "atol": 1e-3},
    "minimizer": {"rtol": 1e-6, "atol": 0.0},
    "gradient-accumulation": {"rtol": 1e-9, "atol": 1e-12},
    "exact": {"rtol": 0.0, "atol": 0.0},
    "model-comparison": {"rtol": 0.05, "atol": 0.0},  # two fitted models' held-out log loss (issue 25: within 5%)
    "neural-model-comparison": {"rtol": 0.10, "atol": 0.0},  # --task text vs TF-IDF held-out log loss (within 10%)
    "disagreement": {"rtol": 1e-3, "atol": 0.0},  # two results that must differ (a documented peer difference)
}

settings.register_profile("default", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("ci")

# Triton's kernels run in its interpreter on CPU tensors when there is no CUDA device. Triton reads the variable
# when it is imported (its own library kernels are decorated then), so it is set before any test imports it.
if importlib.util.find_spec("triton") is not None:
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")


def tol(key=np.float64) -> dict:
    """``{"rtol": ..., "atol": ...}`` for a dtype (NumPy or torch) or a tier name."""
    if isinstance(key, str) and key in TOL:
        return TOL[key]
    name = str(key).removeprefix("torch.")
    if name in TOL:
        return TOL[name]
    return TOL[np.dtype(key).name]


def assert_close(actual, expected, key=np.float64, err_msg: str = "") -> None:
    """Compare with the tolerance of ``key`` (NaN equals NaN, inf must match exactly)."""
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               equal_nan=True, err_msg=err_msg, **tol(key))


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


def _fuzz_areas() -> dict:
    """``{area: [cases, failures, known]}`` of the fuzz suite in this process (tests/fuzz/fuzzkit.py), with its
    budget and seed under ``None``; {} when it did not run here."""
    import sys

    fuzzkit = sys.modules.get("fuzzkit")
    if fuzzkit is None or not fuzzkit.AREAS:
        return {}
    areas = {n: [a.cases, a.failures, a.known] for n, a in fuzzkit.AREAS.items()}
    return {None: (fuzzkit.BUDGET, fuzzkit.SEED), **areas}


# Under pytest-xdist each worker runs part of the fuzz suite: the workers hand their counts to the controller
# (config.workeroutput), which adds them up for the one summary below.
WORKER_AREAS: dict = {}


def pytest_sessionfinish(session):
    """On an xdist worker: pass this worker's fuzz counts to the controller."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["fuzz_areas"] = list(_fuzz_areas().items())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """On the xdist controller: add up a finished worker's fuzz counts."""
    for name, counts in getattr(node, "workeroutput", {}).get("fuzz_areas", []):
        if name is None:
            WORKER_AREAS[None] = counts
            continue
        cases, failures, known = counts
        total = WORKER_AREAS.setdefault(name, [0, [], []])
        total[0] += cases
        total[1].extend(failures)
        total[2].extend(known)


def pytest_terminal_summary(terminalreporter):
    """The fuzz suite's counts per area (tests/fuzz/fuzzkit.py), when it ran (in this process or on xdist workers)."""
    areas = dict(_fuzz_areas() or WORKER_AREAS)
    if not areas:
        return
    budget, seed = areas.pop(None)
    write = terminalreporter.write_line
    write(f"fuzz (budget {budget}, seed {seed}): area, cases run, failures, known failures")
    for name, (cases, failures, known) in areas.items():
        write(f"  {name:<22} {cases:>8} {len(failures):>8} {len(known):>8}")
    write(f"  {'total':<22} {sum(a[0] for a in areas.values()):>8} "
          f"{sum(len(a[1]) for a in areas.values()):>8} "
          f"{sum(len(a[2]) for a in areas.values()):>8}")
    for name, (_, _, known) in areas.items():
        for line in known:
            write(f"  known ({name}): {line}")
