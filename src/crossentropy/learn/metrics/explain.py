"""Explanations in cross-entropy: the examples a model finds hardest, and which features it relies on."""

from __future__ import annotations

import numpy as np
from sklearn.inspection import permutation_importance

from ...core.classification import categorical_cross_entropy
from ...core.jsonio import json_value
from ...rules.errors import InputValueError
from .inputs import check_inputs


def hardest_examples(y, proba, k: int = 5, *, labels=None) -> list[dict]:
    """The ``k`` examples with the highest cross-entropy ``-log p(true class)``, in nats: likely label errors or
    confusing inputs. Each is ``{"index", "label", "predicted", "p_true", "loss"}``.

    >>> hardest_examples([0, 1], [[0.9, 0.1], [0.7, 0.3]], k=1)[0]["index"]
    1
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputValueError(f"k must be a positive int, but got {k!r}.")
    y_arr, p, labels, y_index = check_inputs(y, proba, labels)
    losses = categorical_cross_entropy(p, y_index, reduction="none")
    order = np.argsort(-losses, kind="stable")[:k]
    return [{"index": int(i), "label": json_value(labels[y_index[i]]), "predicted": json_value(labels[p[i].argmax()]),
             "p_true": float(p[i, y_index[i]]), "loss": float(losses[i])} for i in order]


def format_hardest(hardest: list[dict]) -> str:
    """``hardest_examples``' entries as a text table whose label columns are as wide as the longest label, so the
    columns stay aligned whatever the class names; a text model's entries end with their strongest n-gram
    contributions to ``log p(true)``.

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
              f"{h['p_true']:9.4f} {h['loss']:12.4f}" + ("" if "contributions" not in h else "   " + ", ".join(
                  f"{c['ngram']} {c['log_p_true']:+.2f}" for c in h["contributions"][:4])) for h in hardest]
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


def top_ngrams(delta: np.ndarray, names, classes, k: int = 10) -> dict:
    """The ``k`` n-grams that raise each class's log-probability most. ``delta[i, c]`` is how much n-gram ``i``
    alone moves ``log p(c)`` away from the empty text's (``text_influence``). Returns
    ``{class: [{"ngram", "score"}, ...]}``, largest change first.

    >>> top_ngrams(np.array([[-1.0, 1.0], [2.0, -2.0]]), ["good", "bad"], ["neg", "pos"], k=1)
    {'neg': [{'ngram': 'bad', 'score': 2.0}], 'pos': [{'ngram': 'good', 'score': 1.0}]}
    """
    out = {}
    for c, label in enumerate(classes):
        order = np.argsort(-delta[:, c], kind="stable")[:k]
        out[str(json_value(label))] = [{"ngram": names[i], "score": float(delta[i, c])} for i in order]
    return out


def text_influence(model, frame, y, hardest: list[dict], *, k: int = 10) -> dict:
    """Explain the text columns of a fitted ``TablePreprocessor + classifier`` pipeline, for any classifier.

    - ``top_ngrams``: per class, the n-grams whose one-n-gram text (the TF-IDF row ``e_i``; the other features at
      0, their training mean or no category) raises the class's centred log-probability ``log p(c) - mean_c' log
      p(c')`` (its logit up to a shared constant, so it does not saturate at p = 1) most over the empty text's.
    - each entry of ``hardest`` (``hardest_examples`` of ``frame``, whose ``"index"`` are rows of ``frame``) gains
      ``"contributions"``: the n-grams of that row by ``log p(true | row) - log p(true | row without the n-gram)``
      (occlusion), largest in size first.

    Returns ``{"top_ngrams": ...}``, or ``{}`` when the model has no text column."""
    from scipy import sparse

    from ..io.text import display_ngram

    prep, clf = model[0], model[-1]
    names = list(prep.get_feature_names_out())
    columns = {n for n, kind in zip(prep.feature_names_in_, prep.kinds_, strict=True) if kind == "text"}
    text = [i for i, name in enumerate(names) if name.split(":", 1)[0] in columns and ":" in name]
    if not text:
        return {}
    label = {i: f"{names[i].split(':', 1)[0]}: {display_ngram(names[i].split(':', 1)[1])}" for i in text}
    n = len(names)
    rows = sparse.vstack([sparse.csr_matrix((1, n)),  # the empty text, then one row per n-gram
                          sparse.csr_matrix((np.ones(len(text)), (np.arange(len(text)), text)), shape=(len(text), n))])
    centred = clf.predict_log_proba(rows.tocsr())
    centred -= centred.mean(axis=1, keepdims=True)
    delta = centred[1:] - centred[0]
    X = prep.transform(frame).tocsr()
    y_index = np.searchsorted(clf.classes_, np.asarray(y))
    for example in hardest:
        row = X[example["index"]]
        present = [j for j in row.indices if j in label]
        if not present:
            example["contributions"] = []
            continue
        occluded = sparse.vstack([row] * len(present), format="lil")
        for r, j in enumerate(present):
            occluded[r, j] = 0.0
        true = y_index[example["index"]]
        base = clf.predict_log_proba(row)[0, true]
        change = base - clf.predict_log_proba(occluded.tocsr())[:, true]
        order = np.argsort(-np.abs(change), kind="stable")[:k]
        example["contributions"] = [{"ngram": label[present[i]], "log_p_true": float(change[i])} for i in order]
    return {"top_ngrams": top_ngrams(delta, [label[i] for i in text], clf.classes_, k)}
