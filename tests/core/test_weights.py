"""crossentropy.core.weights: class weights against scikit-learn and the Cui et al. formula, label helpers."""

import numpy as np
import pytest
from conftest import assert_close, tol
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.utils.class_weight import compute_class_weight

import crossentropy as ce


def test_golden_values():
    assert_close(ce.class_weights(np.array([0, 0, 0, 1])), [2 / 3, 2.0])
    # Cui et al. 2019: w_c proportional to (1 - beta) / (1 - beta**n_c), normalised to sum to K.
    w = ce.class_weights(np.array([0] * 9 + [1]), method="effective_number", beta=0.9)
    raw = np.array([(1 - 0.9) / (1 - 0.9**9), (1 - 0.9) / (1 - 0.9)])
    assert_close(w, 2 * raw / raw.sum())


@given(arrays(np.int64, st.integers(1, 40), elements=st.integers(0, 4)))
def test_balanced_equals_sklearn(y):
    classes = np.unique(y)
    expected = compute_class_weight("balanced", classes=classes, y=y)
    got = ce.class_weights(y, n_classes=5) if len(classes) == 5 else None
    if got is None:
        with pytest.warns(UserWarning, match="have no samples; their weight is set to 0"):
            got = ce.class_weights(y, n_classes=5)
    assert_close(got[classes], expected)
    assert (np.delete(got, classes) == 0).all()


@given(arrays(np.int64, st.integers(1, 40), elements=st.integers(0, 2)), st.floats(0.5, 0.9999))
def test_effective_number_properties(y, beta):
    if len(np.unique(y)) < 3:
        return
    w = ce.class_weights(y, method="effective_number", beta=beta)
    assert_close(w.sum(), 3.0)
    counts = np.bincount(y)
    order = np.argsort(counts)
    assert np.all(np.diff(w[order]) <= tol(np.float64)["atol"])  # rarer classes weigh more


def test_helpers():
    assert_close(ce.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    assert_close(ce.smooth_labels(ce.one_hot(np.array([1]), 4), 0.2), [[0.05, 0.85, 0.05, 0.05]])


def test_bad_input():
    with pytest.raises(TypeError, match=r"labels must be integer class indices, but got dtype <U1"):
        ce.class_weights(np.array(["a"]))
    with pytest.raises(ValueError, match=r"labels contain class 3, but n_classes=2"):
        ce.class_weights(np.array([0, 3]), n_classes=2)
    with pytest.raises(ValueError, match=r"method must be 'balanced' or 'effective_number'"):
        ce.class_weights(np.array([0, 1]), method="inverse")
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\)"):
        ce.class_weights(np.array([0, 1]), method="effective_number", beta=1.0)
    with pytest.raises(ValueError, match=r"labels must be non-negative"):
        ce.class_weights(np.array([-1, 1]))
    with pytest.raises(ValueError, match=r"labels is empty"):
        ce.class_weights(np.array([], dtype=int))
    with pytest.raises(ValueError, match=r"index values must lie in \[0, 2\]"):
        ce.one_hot(np.array([3]), 3)
