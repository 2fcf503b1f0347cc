"""crossentropy.core.stable: golden values, SciPy agreement, derivatives, properties and extremes."""

import numpy as np
import pytest
import scipy.special as sp
from conftest import assert_close, numeric_grad
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import crossentropy as ce

finite = st.floats(-50, 50, allow_nan=False)
rows = arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=finite)


def test_golden_values():
    assert_close(ce.logsumexp([0.0, 0.0]), np.log(2))
    assert_close(ce.softmax([1.0, 1.0, 1.0, 1.0]), [0.25] * 4)
    assert_close(ce.sigmoid(0.0), 0.5)
    assert_close(ce.softplus(0.0), np.log(2))
    assert_close(ce.log_sigmoid(0.0), -np.log(2))
    assert_close(ce.xlogy(0.0, 0.0), 0.0)
    assert_close(ce.log_softmax([0.0, np.log(3.0)]), np.log([0.25, 0.75]))


@given(rows, st.integers(0, 1))
def test_agrees_with_scipy(x, axis):
    assert_close(ce.logsumexp(x, axis=axis), sp.logsumexp(x, axis=axis))
    assert_close(ce.softmax(x, axis=axis), sp.softmax(x, axis=axis))
    assert_close(ce.log_softmax(x, axis=axis), sp.log_softmax(x, axis=axis))
    assert_close(ce.sigmoid(x), sp.expit(x))
    assert_close(ce.log_sigmoid(x), sp.log_expit(x))
    assert_close(ce.softplus(x), np.logaddexp(0, x))
    assert_close(ce.xlogy(np.abs(x), np.abs(x) + 1), sp.xlogy(np.abs(x), np.abs(x) + 1))


def test_keepdims_and_axis():
    x = np.arange(6.0).reshape(2, 3)
    assert ce.logsumexp(x, axis=0, keepdims=True).shape == (1, 3)
    assert_close(ce.logsumexp(x, axis=0), sp.logsumexp(x, axis=0))


@pytest.mark.parametrize("x0", [-3.0, -0.5, 0.0, 0.7, 4.0])
def test_derivatives_against_finite_differences(x0):
    # Each primitive's derivative is another primitive: d softplus = sigmoid, d log_sigmoid = sigmoid(-x),
    # grad logsumexp = softmax.
    x = np.array([x0])
    assert_close(numeric_grad(lambda v: ce.softplus(v)[0], x), ce.sigmoid(x), "finite-difference")
    assert_close(numeric_grad(lambda v: ce.log_sigmoid(v)[0], x), ce.sigmoid(-x), "finite-difference")
    z = np.array([x0, 1.0, -2.0])
    assert_close(numeric_grad(ce.logsumexp, z), ce.softmax(z), "finite-difference")


@given(rows, st.floats(-1e3, 1e3))
def test_log_softmax_shift_invariance(x, c):
    assert_close(ce.log_softmax(x + c), ce.log_softmax(x), "float64-reference")


@given(rows)
def test_softmax_is_a_distribution(x):
    p = ce.softmax(x)
    assert (p >= 0).all()
    assert_close(p.sum(axis=-1), np.ones(x.shape[0]))


@pytest.mark.parametrize("dtype,big", [(np.float32, 1e4), (np.float64, 1e300)])
def test_extremes_are_finite(dtype, big):
    x = np.array([[big, -big, 0.0], [-big, -big, -big]], dtype=dtype)
    lse = ce.logsumexp(x)
    assert np.isfinite(lse).all()
    assert_close(lse[0], big, dtype)
    assert_close(lse[1], -big + np.log(3), dtype)
    assert np.isfinite(ce.log_softmax(x)[:, 2]).all()
    assert_close(ce.softmax(x), [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], dtype)
    assert_close(ce.sigmoid(np.array([big, -big], dtype)), [1, 0], dtype)
    assert_close(ce.softplus(np.array([big, -big], dtype)), [big, 0], dtype)
    assert_close(ce.log_sigmoid(np.array([big, -big], dtype)), [0, -big], dtype)


def test_infinite_entries():
    assert ce.logsumexp([-np.inf, 0.0]) == 0.0
    assert ce.logsumexp([-np.inf, -np.inf]) == -np.inf
    assert ce.logsumexp([np.inf, 0.0]) == np.inf
    assert_close(ce.softmax([-np.inf, 0.0, 0.0]), [0, 0.5, 0.5])
    assert_close(ce.softmax([np.inf, 0.0, np.inf]), [0.5, 0, 0.5])  # the limit: +inf entries share the mass
    assert_close(ce.softmax([-np.inf, -np.inf]), [0.5, 0.5])  # all -inf: the equal-rate limit is uniform
    assert_close(ce.log_softmax([np.inf, 0.0]), [0.0, -np.inf])
    assert np.isnan(ce.logsumexp([np.nan, 0.0]))  # NaN propagates


def test_float16_is_computed_in_float32():
    x = np.array([1.0, 2.0], dtype=np.float16)
    for f in (ce.logsumexp, ce.softmax, ce.log_softmax, ce.sigmoid, ce.softplus, ce.log_sigmoid):
        assert f(x).dtype == np.float32
    assert ce.softmax(np.array([1, 2])).dtype == np.float64  # integers compute in float64


def test_bad_input():
    with pytest.raises(ValueError, match=r"axis=2 is out of range for an input with 1 dimension"):
        ce.logsumexp([1.0, 2.0], axis=2)
    with pytest.raises(TypeError, match=r"axis must be an int, but got float"):
        ce.softmax([1.0], axis=0.5)
    with pytest.raises(TypeError, match=r"x must hold real numbers, but got dtype <U1"):
        ce.softmax(["a"])
    with pytest.raises(TypeError, match=r"x must hold real numbers, but got dtype complex128"):
        ce.sigmoid([1j])
    with pytest.raises(TypeError, match=r"converting it failed"):
        ce.softmax([[1.0], [1.0, 2.0]])
