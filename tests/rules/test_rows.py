"""rules/rows.py and rules/limits.py: the row math against the float64 reference, and the limit rule."""

from __future__ import annotations

import numpy as np
import reference as ref
from conftest import assert_close, numeric_grad
from hypothesis import given
from hypothesis import strategies as st

from crossentropy.rules.limits import logsumexp, masked_product
from crossentropy.rules.options import SoftmaxOptions
from crossentropy.rules.rows import softmax_rows
from crossentropy.rules.targets import coefficients
from crossentropy.rules.xp import NUMPY


@st.composite
def rows(draw):
    n, k = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    target = rng.integers(0, k, n)
    target[rng.random(n) < 0.2] = -100
    return rng.normal(0, 3, (n, k)), target, draw(st.sampled_from([0.0, 0.2]))


@given(rows())
def test_softmax_rows_match_the_reference(problem):
    z, target, e = problem
    coef = coefficients(NUMPY, target, z.shape[1], SoftmaxOptions(label_smoothing=e), dtype=np.float64)
    r = softmax_rows(NUMPY, z.copy(), coef, row_scale=np.ones(z.shape[0]))
    assert_close(r.loss, ref.softmax_ce(z, target, label_smoothing=e, reduction="none"), "float64-reference")

    def total(x):
        return float(np.sum(ref.softmax_ce(x, target, label_smoothing=e, reduction="none")))
    assert_close(r.grad, numeric_grad(total, z), "finite-difference")


@given(rows(), st.floats(1e-3, 0.1), st.floats(1.0, 10.0))
def test_z_loss_and_softcap_terms(problem, z_loss, cap):
    z, target, e = problem
    coef = coefficients(NUMPY, target, z.shape[1], SoftmaxOptions(label_smoothing=e), dtype=np.float64)
    capped = cap * np.tanh(z / cap)
    r = softmax_rows(NUMPY, z.copy(), coef, z_loss=z_loss, softcap=cap, stats=True)
    lse = np.log(np.exp(capped).sum(axis=1))
    expected = ref.softmax_ce(capped, target, label_smoothing=e, reduction="none") + z_loss * coef.o * lse**2
    assert_close(r.loss, expected, "float64-reference")
    assert_close(r.lse, lse, "float64-reference")
    assert (r.predicted == capped.argmax(axis=1)).all()


def test_limit_rule_golden():
    assert masked_product(NUMPY, np.array([0.0, 2.0]), np.array([np.inf, 3.0])).tolist() == [0.0, 6.0]
    assert logsumexp(NUMPY, np.array([[-np.inf, -np.inf], [np.inf, 0.0]]))[:, 0].tolist() == [-np.inf, np.inf]
