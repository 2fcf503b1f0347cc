"""Binned calibration statistics: each bin's mean score, observed frequency and count, the error over the bins,
and the reliability curves.

Binning. A score ``c`` in [0, 1] falls in one of ``B`` bins:

* ``strategy="uniform"`` (equal width): bin ``min(floor(c * B), B - 1)``;
* ``strategy="quantile"`` (equal mass): the edges are the ``0, 1/B, ..., 1`` quantiles of the scores, and bin ``b``
  holds ``edges[b] <= c < edges[b + 1]`` (the last bin includes its right edge). Tied scores share a bin, so some
  bins may be empty.

Empty bins are skipped everywhere. With ``n_b`` samples, mean score ``conf_b`` and observed frequency ``acc_b`` in
bin ``b``, the error is, over the ``n`` samples:

* ``norm="l1"``: ``sum_b n_b / n |acc_b - conf_b|`` (the ECE of Guo et al., 2017);
* ``norm="l2"``: ``sqrt(sum_b n_b / n (acc_b - conf_b)^2)`` (the root-mean-square error of Kumar et al., 2019);
* ``norm="max"``: ``max_b |acc_b - conf_b|`` (the maximum calibration error).

``multiclass="top_label"`` bins the top-1 confidence against whether the top-1 prediction is right;
``"classwise"`` bins each class's probability against whether the sample is of that class, and averages the K
errors (Kull et al., 2019).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class BinStatistics(NamedTuple):
    """Per bin: mean score, observed frequency (NaN for an empty bin), sample count, and the ``B + 1`` edges."""

    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray
    edges: np.ndarray


def bin_statistics(score, outcome, *, bins: int = 15, strategy: str = "uniform") -> BinStatistics:
    """Bin ``score`` (in [0, 1]) and average it and the 0/1 ``outcome`` per bin (module docstring).

    >>> s = bin_statistics([0.1, 0.15, 0.9], [0, 1, 1], bins=2)
    >>> s.count.tolist(), s.accuracy.tolist()
    ([2, 1], [0.5, 1.0])
    """
    score = np.asarray(score, dtype=np.float64)
    outcome = np.asarray(outcome, dtype=np.float64)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
        index = np.minimum((score * bins).astype(np.int64), bins - 1)
    else:
        edges = np.quantile(score, np.linspace(0.0, 1.0, bins + 1))
        index = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, weights=score, minlength=bins) / count
        accuracy = np.bincount(index, weights=outcome, minlength=bins) / count
    return BinStatistics(confidence, accuracy, count, edges)


def bin_error(stats: BinStatistics, norm: str = "l1") -> float:
    """The calibration error of binned statistics in the L1, L2 or max ``norm`` (module docstring)."""
    filled = stats.count > 0
    gap = np.abs(stats.accuracy[filled] - stats.confidence[filled])
    share = stats.count[filled] / stats.count.sum()
    if norm == "l1":
        return float(share @ gap)
    if norm == "l2":
        return float(np.sqrt(share @ (gap * gap)))
    return float(gap.max())


def reliability_curves(y_index: np.ndarray, p: np.ndarray, *, bins: int = 15) -> dict:
    """What the reliability diagrams draw (equal-width bins): for two classes, P(positive) against the observed
    frequency of the positive class (``kind="positive"``); for more, the top-1 confidence against top-1 accuracy
    (``kind="top_label"``); and under ``per_class`` each class's probability against its observed frequency."""
    def as_dict(stats: BinStatistics) -> dict:
        return {"confidence": stats.confidence.tolist(), "accuracy": stats.accuracy.tolist(),
                "count": stats.count.tolist()}

    if p.shape[1] == 2:
        main, kind = bin_statistics(p[:, 1], y_index == 1, bins=bins), "positive"
    else:
        main, kind = bin_statistics(p.max(axis=1), p.argmax(axis=1) == y_index, bins=bins), "top_label"
    per_class = [as_dict(bin_statistics(p[:, k], y_index == k, bins=bins)) for k in range(p.shape[1])]
    return {"kind": kind, **as_dict(main), "per_class": per_class}
