"""evaluate(y_true, proba) -> EvaluationReport: cross-entropy in nats and bits, perplexity, accuracy, Brier score,
expected calibration error, confusion matrix and scikit-learn's classification report, as text, JSON-safe dict or
plots.

The cross-entropy numbers come from this library's core (no clipping); accuracy, Brier score, the confusion matrix
and the classification report are scikit-learn's own.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, brier_score_loss, classification_report, confusion_matrix

from ...constants import ECE_BINS
from ...core._inputs import unit_name
from ...core.classification import categorical_cross_entropy
from ...core.jsonio import json_safe, json_value
from ...rules.errors import InputValueError
from .bins import bin_error, bin_statistics, reliability_curves
from .inputs import check_inputs

PERPLEXITY_MAX_NATS = math.log(np.finfo(np.float64).max)  # about 709.78
def expected_calibration_error(y_index: np.ndarray, proba: np.ndarray, n_bins: int = ECE_BINS):
    """ECE over ``n_bins`` equal-width bins of top-1 confidence (Guo et al., 2017): ``sum_b |B|/n |acc_b -
    conf_b|``. A confidence ``c`` falls in bin ``min(floor(c * n_bins), n_bins - 1)``. Also returns per-bin
    (confidence, accuracy, count). Other variants: :func:`crossentropy.learn.calibration_error`."""
    stats = bin_statistics(proba.max(axis=1), proba.argmax(axis=1) == y_index, bins=n_bins)
    return bin_error(stats, "l1"), stats.confidence, stats.accuracy, stats.count


@dataclass
class EvaluationReport:
    """Metrics of predicted probabilities against true labels. Cross-entropy is in nats (``log_loss``) and bits."""

    n_samples: int
    log_loss: float
    log_loss_bits: float
    perplexity: float
    accuracy: float
    brier_score: float
    ece: float
    labels: list
    confusion_matrix: list
    classification_report: dict
    reliability: dict = field(repr=False)

    def to_dict(self) -> dict:
        """A dict that ``json.dumps(..., allow_nan=False)`` accepts (the classification report under
        "classification_report"). A metric that is not finite (an infinite log loss, or a perplexity above the
        float64 range) is ``None``, and ``"non_finite"`` maps its name to ``"inf"`` (docs/semantics.md)."""
        metrics = {"n_samples": self.n_samples, "log_loss": self.log_loss, "log_loss_bits": self.log_loss_bits,
                   "perplexity": self.perplexity, "accuracy": self.accuracy, "brier_score": self.brier_score,
                   "ece": self.ece}
        non_finite = {k: str(v) for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)}
        return {**{k: None if k in non_finite else v for k, v in metrics.items()}, "non_finite": non_finite,
                "labels": [json_value(v) for v in self.labels], "confusion_matrix": self.confusion_matrix,
                "classification_report": self.classification_report}

    def to_text(self, base=None) -> str:
        """The classification report, then the cross-entropy (in log ``base`` first when given, e.g. 2 for bits)
        and calibration."""
        names = [str(v) for v in self.labels]
        width = max(12, *(len(n) for n in names))
        lines = [f"{'':>{width}s} {'precision':>9s} {'recall':>9s} {'f1-score':>9s} {'support':>9s}", ""]
        for name in names:
            r = self.classification_report[name]
            lines.append(f"{name:>{width}s} {r['precision']:9.4f} {r['recall']:9.4f} {r['f1-score']:9.4f} "
                         f"{int(r['support']):9d}")
        lines.append("")
        lines.append(f"{'accuracy':>{width}s} {'':9s} {'':9s} {self.accuracy:9.4f} {self.n_samples:9d}")
        for avg in ("macro avg", "weighted avg"):
            r = self.classification_report[avg]
            lines.append(f"{avg:>{width}s} {r['precision']:9.4f} {r['recall']:9.4f} {r['f1-score']:9.4f} "
                         f"{int(r['support']):9d}")
        lines.append("")
        if base is None or base == 2:
            first, second = (self.log_loss, None), (self.log_loss_bits, 2.0)
            first, second = (second, first) if base == 2 else (first, second)
        else:
            first, second = (self.log_loss / math.log(base), base), (self.log_loss, None)
        ce = f"{first[0]:.4f} {unit_name(first[1])}  ({second[0]:.4f} {unit_name(second[1])})"
        perplexity = f"{self.perplexity:.4f}" if math.isfinite(self.perplexity) else \
            f"inf (exp of the log loss overflows float64 above {PERPLEXITY_MAX_NATS:.2f} nats)"
        for name, value in (("cross-entropy (log loss)", ce), ("perplexity", perplexity),
                            ("Brier score", f"{self.brier_score:.4f}"), (f"ECE ({ECE_BINS} bins)", f"{self.ece:.4f}")):
            lines.append(f"{name:26s}{value}")
        return "\n".join(lines)

    def plot(self, directory, estimator=None, *, per_class: bool = False) -> list[Path]:
        """Write reliability.png and confusion_matrix.png (and loss_curve.png for a fitted estimator with a
        ``loss_curve_``, labelled by its loss; and reliability_per_class.png with ``per_class``) into
        ``directory``; return their paths."""
        from .. import plots

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        names = [str(v) for v in self.labels]
        figures = {"reliability.png": plots.reliability(self.reliability, self.ece),
                   "confusion_matrix.png": plots.confusion(np.asarray(self.confusion_matrix), names)}
        if per_class:
            figures["reliability_per_class.png"] = plots.reliability_per_class(self.reliability, names)
        if estimator is not None and getattr(estimator, "loss_curve_", None):
            loss_name = "focal loss" if getattr(estimator, "loss", None) == "focal" else "cross-entropy"
            figures["loss_curve.png"] = plots.loss_curve(estimator.loss_curve_,
                                                         getattr(estimator, "validation_loss_curve_", []),
                                                         loss_name=loss_name)
        return [plots.save(fig, directory / name) for name, fig in figures.items()]


def evaluate(y_true, proba, *, labels=None) -> EvaluationReport:
    """Evaluate probabilities ``proba`` (n_samples, n_classes), or (n_samples,) for the positive class of a binary
    problem, against ``y_true``. ``labels`` names the class of each column, in the columns' order (default: 0..K-1
    for integer labels, else the sorted distinct labels of ``y_true``); scikit-learn's ``log_loss(labels=...)``
    sorts them instead. Rows that do not sum to 1 (beyond float32 rounding) are used as given with a UserWarning,
    as scikit-learn's ``log_loss`` does; a row further than ``FAR_FROM_ONE`` (0.1) from 1 is an
    ``InputValueError``.

    >>> report = evaluate([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    >>> round(report.log_loss, 4), report.accuracy
    (0.2798, 1.0)
    """
    y, p, labels, y_index = check_inputs(y_true, proba, labels)
    with warnings.catch_warnings():  # _check_inputs has warned about rows off 1 (at float32 rounding) already
        warnings.simplefilter("ignore", UserWarning)
        nats = float(categorical_cross_entropy(p, y_index))
    ece = expected_calibration_error(y_index, p)[0]
    if p.shape[1] == 2:
        brier = float(brier_score_loss(y_index, p[:, 1]))
    else:
        brier = float(brier_score_loss(y_index, p, labels=np.arange(p.shape[1])))
    y_pred = labels[p.argmax(axis=1)]
    report = classification_report(y, y_pred, labels=labels, target_names=[str(v) for v in labels],
                                   output_dict=True, zero_division=0)
    return EvaluationReport(
        n_samples=int(len(y)), log_loss=nats, log_loss_bits=nats / math.log(2), perplexity=_perplexity(nats),
        accuracy=float(accuracy_score(y, y_pred)), brier_score=brier, ece=ece, labels=labels.tolist(),
        confusion_matrix=confusion_matrix(y, y_pred, labels=labels).tolist(),
        classification_report=json_safe(report),
        reliability=reliability_curves(y_index, p, bins=ECE_BINS))


def _perplexity(nats: float) -> float:
    """``exp(nats)``, and inf rather than OverflowError above ``PERPLEXITY_MAX_NATS``."""
    return math.exp(nats) if nats <= PERPLEXITY_MAX_NATS else math.inf


def labels_from_columns(columns, y, name: str = "proba") -> list:
    """The class of each column of a headed probability table: its name, read as the type of the labels ``y``
    (``"0"`` is the integer 0 when the labels are integers). Every label of ``y`` must have a column."""
    y = np.asarray(y)
    columns = [str(c).strip() for c in columns]
    if y.dtype.kind in "iuf":
        kind = int if y.dtype.kind in "iu" else float
        try:
            classes = [kind(float(c)) if kind is int and float(c).is_integer() else kind(c) for c in columns]
        except ValueError:
            raise InputValueError(f"the labels are numbers, so the columns of {name} must be named by those numbers, "
                                  f"but its columns are {columns}.") from None
    else:
        classes = columns
    if len(set(classes)) != len(classes):
        raise InputValueError(f"the columns of {name} must name each class once, but its columns are {columns}.")
    missing = [v for v in np.unique(y).tolist() if v not in set(classes)]
    if missing:
        raise InputValueError(f"label {missing[0]!r} has no column in {name} (its columns are {columns}); give each "
                              f"class a probability column named by the label.")
    return classes
