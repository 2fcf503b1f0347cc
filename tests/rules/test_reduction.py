"""rules/reduction.py: scales, reductions and the batch weight against tests/reference.py."""

from __future__ import annotations

import numpy as np
import reference as ref
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st

from crossentropy.rules.options import SoftmaxOptions
from crossentropy.rules.reduction import batch_weight, reduce, reduction_scale
from crossentropy.rules.xp import NUMPY


@given(st.lists(st.floats(0, 10), min_size=0, max_size=6), st.lists(st.floats(0, 10), min_size=6, max_size=6),
       st.sampled_from(["none", "sum", "mean"]))
def test_reduce_matches_the_reference(losses, weights, reduction):
    losses = np.array(losses)
    weights = np.array(weights[: losses.size])
    scale = reduction_scale(NUMPY, reduction, NUMPY.total(weights))
    assert_close(reduce(NUMPY, losses, reduction, scale), ref.reduce(losses, weights, reduction))


def test_mean_of_zero_weight_is_zero_and_total_weight_replaces_the_denominator():
    assert float(reduction_scale(NUMPY, "mean", NUMPY.total(np.zeros(3)))) == 0.0
    assert float(reduction_scale(NUMPY, "mean", NUMPY.total(np.ones(3)), 4.0)) == 0.25
    assert float(reduction_scale(NUMPY, "sum", NUMPY.total(np.ones(3)), None)) == 1.0


@given(st.integers(0, 2**31), st.sampled_from([0.0, 0.1]))
def test_batch_weight_is_the_sum_of_the_reference_weights(seed, e):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0, 2, 4)
    targets = [rng.integers(-1, 4, rng.integers(0, 5)) for _ in range(3)]
    targets = [np.where(t < 0, -100, t) for t in targets]
    total = batch_weight(NUMPY, targets, SoftmaxOptions(label_smoothing=e), w=w)
    expected = 0.0
    for t in targets:
        for y in t:
            if y != -100:
                expected += float(w @ ref.smoothed(np.eye(4)[y], e))
    assert_close(total, expected)
