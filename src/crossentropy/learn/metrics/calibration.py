"""Calibration of predicted probabilities: the calibration error in its common variants (with a bootstrap
confidence interval), the reliability curves the plots draw, and temperature scaling of a model's outputs (the
library side of ``crossentropy calibrate``).

Binning: ``bins.py``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ...core.calibration import fit_temperature
from ...core.stable import sigmoid, softmax
from ...rules.errors import InputValueError
from ...rules.options import check_unit_interval
from ...rules.xp import NUMPY
from .bins import bin_error, bin_statistics
from .evaluate import evaluate
from .inputs import check_inputs

STRATEGIES = ("uniform", "quantile")
NORMS = ("l1", "l2", "max")
MULTICLASS = ("top_label", "classwise")


class CalibrationErrorInterval(NamedTuple):
    """A calibration error with its bootstrap percentile interval at level ``ci``."""

    value: float
    low: float
    high: float
    ci: float


def _error(y_index: np.ndarray, p: np.ndarray, bins: int, strategy: str, norm: str, multiclass: str) -> float:
    if multiclass == "top_label":
        stats = bin_statistics(p.max(axis=1), p.argmax(axis=1) == y_index, bins=bins, strategy=strategy)
        return bin_error(stats, norm)
    return float(np.mean([bin_error(bin_statistics(p[:, k], y_index == k, bins=bins, strategy=strategy), norm)
                          for k in range(p.shape[1])]))


def _choice(value, name: str, options: tuple) -> str:
    if value not in options:
        raise InputValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}, but got {value!r}.")
    return value


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputValueError(f"{name} must be a positive int, but got {value!r}.")
    return int(value)


def calibration_error(y_true, proba, *, labels=None, bins: int = 15, strategy: str = "uniform", norm: str = "l1",
                      multiclass: str = "top_label", ci: float | None = None, n_bootstrap: int = 1000,
                      random_state=None):
    """The calibration error of probabilities ``proba`` (n_samples, n_classes), or (n_samples,) for the positive
    class of a binary problem, against ``y_true``; the variants are defined in the module docstring. ``labels``
    names the class of each column, as in :func:`evaluate`.

    With ``ci`` (e.g. 0.95), returns ``CalibrationErrorInterval(value, low, high, ci)``: the percentile interval
    of the error over ``n_bootstrap`` resamples of the samples with replacement (``random_state`` seeds them);
    otherwise the error as a float.

    >>> y, p = [0, 0, 1, 1], [[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.2, 0.8]]
    >>> round(calibration_error(y, p), 4)  # 3/4 |2/3 - 0.9| + 1/4 |1 - 0.8|
    0.225
    >>> round(calibration_error(y, p, norm="max"), 4)
    0.2333
    """

    _, p, _, y_index = check_inputs(y_true, proba, labels)
    bins = _positive_int(bins, "bins")
    args = (bins, _choice(strategy, "strategy", STRATEGIES), _choice(norm, "norm", NORMS),
            _choice(multiclass, "multiclass", MULTICLASS))
    value = _error(y_index, p, *args)
    if ci is None:
        return value
    if isinstance(ci, bool) or not isinstance(ci, (float, int, np.floating)) or not 0 < ci < 1:
        raise InputValueError(f"ci must be a confidence level in (0, 1) such as 0.95, or None, but got {ci!r}.")
    n_bootstrap = _positive_int(n_bootstrap, "n_bootstrap")
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    n = len(y_index)
    draws = [_error(y_index[i], p[i], *args) for i in (rng.randint(0, n, n) for _ in range(n_bootstrap))]
    low, high = np.quantile(draws, [(1 - ci) / 2, (1 + ci) / 2])
    return CalibrationErrorInterval(value, float(low), float(high), float(ci))


# ------------------------------------------------------------------------------------------------ temperature
LOOKS_NORMALIZED = 1e-6  # rows of "logits" in [0, 1] summing to 1 this closely are probabilities passed by mistake
def _as_logits(logits, proba) -> np.ndarray:
    """Logits of shape (n, K) from exactly one of ``logits`` (n, K) / (n,) binary, or ``proba`` (used as log p)."""
    if (logits is None) == (proba is None):
        raise InputValueError("pass exactly one of `logits` or `proba`.")
    if logits is not None:
        z = np.asarray(logits, dtype=np.float64)
        if z.ndim == 2 and z.shape[1] > 1 and z.size and (z >= 0).all() and (z <= 1).all() \
                and np.allclose(z.sum(axis=1), 1.0, rtol=0.0, atol=LOOKS_NORMALIZED):
            warnings.warn("`logits` look like probabilities: every row lies in [0, 1] and sums to 1. If they are, "
                          "pass them as `proba` (as logits they give nearly uniform probabilities).", UserWarning,
                          stacklevel=3)
        return np.column_stack([np.zeros_like(z), z]) if z.ndim == 1 else z
    p = np.asarray(proba, dtype=np.float64)
    check_unit_interval(NUMPY, p, "`proba`", "If these are logits, pass them as `logits`.")
    p = np.column_stack([1 - p, p]) if p.ndim == 1 else p
    with np.errstate(divide="ignore"):
        return np.log(p)


def apply_temperature(temperature: float, *, logits=None, proba=None) -> np.ndarray:
    """Calibrated probabilities ``softmax(logits / T)`` (from probabilities: ``softmax(log(proba) / T)``). A 1-D
    input is binary (a logit, or P(positive)) and gives P(positive) back as 1-D.

    >>> apply_temperature(2.0, logits=[[0.0, np.log(9.0)]]).round(4).tolist()
    [[0.25, 0.75]]
    """
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating)) \
            or not 0 < temperature < np.inf:
        raise InputValueError(f"temperature must be a positive finite number, but got {temperature!r}.")
    one_d = np.ndim(logits if logits is not None else proba) == 1
    if one_d and logits is not None:
        return sigmoid(np.asarray(logits, dtype=np.float64) / temperature)
    p = softmax(_as_logits(logits, proba) / temperature)
    return p[:, 1] if one_d else p


@dataclass
class CalibrationResult:
    """The fitted temperature, and log loss (nats) and top-label ECE before and after scaling."""

    temperature: float
    n_samples: int
    labels: list
    log_loss_before: float
    log_loss_after: float
    ece_before: float
    ece_after: float

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "n_samples": self.n_samples, "labels": self.labels,
                "log_loss_before": self.log_loss_before, "log_loss_after": self.log_loss_after,
                "ece_before": self.ece_before, "ece_after": self.ece_after}

    def to_text(self) -> str:
        return "\n".join([f"temperature T = {self.temperature:.6g}  ({self.n_samples} samples)", "",
                          f"{'':24s}{'before':>10s}{'after':>10s}",
                          f"{'log loss (nats)':24s}{self.log_loss_before:10.4f}{self.log_loss_after:10.4f}",
                          f"{'ECE (15 bins)':24s}{self.ece_before:10.4f}{self.ece_after:10.4f}"])


def calibrate(y_true, *, logits=None, proba=None, labels=None, sample_weight=None) -> CalibrationResult:
    """Fit a temperature to ``logits`` (n_samples, n_classes), or (n_samples,) binary logits, or to ``proba``
    (whose ``log`` serves as logits), against labels ``y_true``, with :func:`crossentropy.fit_temperature`; report
    log loss and ECE before and after. ``labels`` names the class of each column, as in :func:`evaluate`.

    >>> result = calibrate([1, 1, 1, 0], logits=[[0.0, 1.0]] * 4)
    >>> round(result.temperature, 6), result.log_loss_after < result.log_loss_before
    (0.910239, True)
    """

    z = _as_logits(logits, proba)
    if z.ndim != 2:
        raise InputValueError(f"the scores must have shape (n_samples, n_classes), or (n_samples,) for binary, but "
                              f"got shape {z.shape}.")
    y, before, labels, y_index = check_inputs(y_true, softmax(z) if logits is not None else proba, labels)
    temperature = fit_temperature(z, y_index, sample_weight=sample_weight)
    after = softmax(z / temperature)
    report_before, report_after = evaluate(y, before, labels=labels), evaluate(y, after, labels=labels)
    return CalibrationResult(temperature, int(len(y)), report_before.to_dict()["labels"], report_before.log_loss,
                             report_after.log_loss, report_before.ece, report_after.ece)
