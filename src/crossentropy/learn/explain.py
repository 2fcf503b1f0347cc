"""Explanations in cross-entropy: the examples a model finds hardest, and which features it relies on."""

from __future__ import annotations

import numpy as np
from sklearn.inspection import permutation_importance

from ..core.classification import categorical_cross_entropy
from ..rules.errors import InputValueError
from .evaluate import _check_inputs, _json_label


def hardest_examples(y, proba, k: int = 5, *, labels=None) -> list[dict]:
    """The ``k`` examples with the highest cross-entropy ``-log p(true class)``, in nats: likely label errors or
    confusing inputs. Each is ``{"index", "label", "predicted", "p_true", "loss"}``.

    >>> hardest_examples([0, 1], [[0.9, 0.1], [0.7, 0.3]], k=1)[0]["index"]
    1
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputValueError(f"k must be a positive int, but got {k!r}.")
    y_arr, p, labels, y_index = _check_inputs(y, proba, labels)
    losses = categorical_cross_entropy(p, y_index, reduction="none")
    order = np.argsort(-losses, kind="stable")[:k]
    return [{"index": int(i), "label": _json_label(labels[y_index[i]]), "predicted": _json_label(labels[p[i].argmax()]),
             "p_true": float(p[i, y_index[i]]), "loss": float(losses[i])} for i in order]


def format_hardest(hardest: list[dict]) -> str:
    """``hardest_examples``' entries as a text table whose label columns are as wide as the longest label, so the
    columns stay aligned whatever the class names.

    >>> print(format_hardest([{"index": 7, "label": "Adelie Penguin (Pygoscelis adeliae)", "predicted": "Gentoo",
    ...                        "p_true": 0.25, "loss": 1.386294}]))
         row                                true  predicted   p(true)  loss (nats)
           7 Adelie Penguin (Pygoscelis adeliae)     Gentoo    0.2500       1.3863
    """
    true_width = max([12, *(len(str(h["label"])) for h in hardest)])
    predicted_width = max([9, *(len(str(h["predicted"])) for h in hardest)])
    lines = [f"  {'row':>6s} {'true':>{true_width}s} {'predicted':>{predicted_width}s} {'p(true)':>9s} "
             f"{'loss (nats)':>12s}"]
    lines += [f"  {h['index']:6d} {str(h['label']):>{true_width}s} {str(h['predicted']):>{predicted_width}s} "
              f"{h['p_true']:9.4f} {h['loss']:12.4f}" for h in hardest]
    return "\n".join(lines)


def cross_entropy_scorer(estimator, X, y) -> float:
    """Minus the mean cross-entropy (nats) of ``estimator.predict_proba(X)``: higher is better, as scorers are."""
    proba = estimator.predict_proba(X)
    index = np.searchsorted(estimator.classes_, np.asarray(y))
    return -float(categorical_cross_entropy(proba, index))


def feature_importance(estimator, X, y, *, n_repeats: int = 5, random_state=0, feature_names=None) -> list[dict]:
    """Permutation importance scored in cross-entropy: how much the mean cross-entropy (nats) rises when each
    feature is shuffled (``sklearn.inspection.permutation_importance``), most important first. Each entry is
    ``{"feature", "importance", "std"}``."""
    result = permutation_importance(estimator, X, y, scoring=cross_entropy_scorer, n_repeats=n_repeats,
                                    random_state=random_state)
    n_features = len(result.importances_mean)
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(n_features)]
    if len(names) != n_features:
        raise InputValueError(f"feature_names must name {n_features} features, but got {len(names)}.")
    order = np.argsort(-result.importances_mean, kind="stable")
    return [{"feature": names[i], "importance": float(result.importances_mean[i]),
             "std": float(result.importances_std[i])} for i in order]
