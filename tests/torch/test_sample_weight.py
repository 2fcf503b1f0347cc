"""sample_weight (one weight per target element) on the torch losses: semantics 4, l_i and o_i times s_i, so "mean"
is sum_i s_i l_i / sum_i s_i o_i. Each entry equals a naive weighted float64 computation (tests/reference.py) and the
NumPy core; gradients by gradcheck; bad weights are refused with the NumPy core's messages."""

import numpy as np
import pytest
import torch
from conftest import assert_close, tol
from hypothesis import given
from hypothesis import strategies as st
from reference import distillation, softmax_ce

import crossentropy as ce
import crossentropy.torch as cet
from crossentropy.rules.errors import InputValueError

V = 7
REDUCTIONS = ["none", "sum", "mean"]


def _case(seed, n=10):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    w = torch.randn(V, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, V, (n,), generator=g)
    y[::4] = -100
    s = torch.rand(n, generator=g, dtype=torch.float64) * 3
    s[1] = 0.0
    cw = torch.rand(V, generator=g, dtype=torch.float64) + 0.5
    return x, w, y, s, cw


def _naive(logits, y, s, reduction, **kw):
    return softmax_ce(logits.detach().numpy(), y.numpy(), sample_weight=s.numpy(), reduction=reduction, **kw)


@given(seed=st.integers(0, 2**16), reduction=st.sampled_from(REDUCTIONS), e=st.sampled_from([0.0, 0.1]),
       weighted=st.booleans())
def test_cross_entropy_equals_naive_and_numpy(seed, reduction, e, weighted):
    x, w, y, s, cw = _case(seed)
    z = x @ w.T
    cw = cw if weighted else None
    got = cet.cross_entropy(z, y, weight=cw, label_smoothing=e, reduction=reduction, sample_weight=s)
    kw = {"class_weight": None if cw is None else cw.numpy(), "label_smoothing": e}
    assert_close(got.numpy(), _naive(z, y, s, reduction, **kw), "float64-reference")
    assert_close(got.numpy(), ce.softmax_cross_entropy(z.numpy(), y.numpy(), sample_weight=s.numpy(),
                                                       reduction=reduction, **kw), "float64")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_soft_targets_and_focal_equal_naive(reduction):
    x, w, y, s, cw = _case(1)
    z = x @ w.T
    probs = torch.softmax(torch.randn(z.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64), -1)
    got = cet.cross_entropy(z, probs, reduction=reduction, sample_weight=s, label_smoothing=0.1)
    assert_close(got.numpy(), _naive(z, probs, s, reduction, label_smoothing=0.1), "float64-reference")
    got = cet.softmax_focal_loss(z, y, gamma=1.5, alpha=cw, reduction=reduction, sample_weight=s)
    assert_close(got.numpy(), _naive(z, y, s, reduction, class_weight=cw.numpy(), focal_gamma=1.5),
                 "float64-reference")
    assert_close(got.numpy(), ce.softmax_focal_loss(z.numpy(), y.numpy(), gamma=1.5, alpha=cw.numpy(),
                                                    sample_weight=s.numpy(), reduction=reduction), "float64")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("chunk_size", [1, 3, None])
def test_linear_cross_entropy_equals_cross_entropy_and_naive(reduction, chunk_size):
    x, w, y, s, cw = _case(3)
    x, y, s = x.reshape(2, 5, 5), y.reshape(2, 5), s.reshape(2, 5)  # sample_weight in the target's batch shape
    leaves = [t.clone().requires_grad_() for t in (x, w)]
    got = cet.linear_cross_entropy(*leaves, y, weight=cw, label_smoothing=0.1, reduction=reduction,
                                   chunk_size=chunk_size, sample_weight=s)
    ref_leaves = [t.clone().requires_grad_() for t in (x, w)]
    ref = cet.cross_entropy((ref_leaves[0] @ ref_leaves[1].T).movedim(-1, 1), y, weight=cw, label_smoothing=0.1,
                            reduction=reduction, sample_weight=s)
    assert_close(got.detach().numpy().reshape(-1),
                 np.ravel(_naive((x @ w.T).reshape(-1, V), y.reshape(-1), s.reshape(-1), reduction,
                                 class_weight=cw.numpy(), label_smoothing=0.1)), "float64-reference")
    up = torch.rand(got.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for a, b in zip(torch.autograd.grad(got, leaves, up), torch.autograd.grad(ref, ref_leaves, up), strict=True):
        torch.testing.assert_close(a, b, **tol("float64"))


def test_mean_with_extreme_weights_is_exact():
    """"mean" divides the sample weights by their largest value first (as the NumPy core): weights near the ends of
    the float range give the same mean as weights near 1, in both the dense and the chunked loss."""
    x, w, y, s, _ = _case(5)
    z = x @ w.T
    for scale in (1e-300, 1e300):
        torch.testing.assert_close(cet.cross_entropy(z, y, sample_weight=s * scale),
                                   cet.cross_entropy(z, y, sample_weight=s), **tol("float64"))
        torch.testing.assert_close(cet.linear_cross_entropy(x, w, y, sample_weight=s * scale, chunk_size=3),
                                   cet.linear_cross_entropy(x, w, y, sample_weight=s, chunk_size=3),
                                   **tol("float64"))


def test_gradcheck():
    x, w, y, s, cw = _case(6, n=5)
    z = (x @ w.T).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: cet.cross_entropy(a, y, weight=cw, sample_weight=s,
                                                                label_smoothing=0.1), [z])
    assert torch.autograd.gradcheck(lambda a: cet.softmax_focal_loss(a, y, sample_weight=s), [z])
    leaves = [t.clone().requires_grad_() for t in (x, w)]
    assert torch.autograd.gradcheck(lambda a, b: cet.linear_cross_entropy(a, b, y, sample_weight=s, chunk_size=2,
                                                                          reduction="none"), leaves)
    teacher = torch.randn(z.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: cet.distillation_loss(a, teacher, y, sample_weight=s,
                                                                    divergence="jsd"), [z])


def test_total_weight_with_sample_weight():
    x, w, y, s, cw = _case(7)
    expected = float(np.sum(s.numpy()[y.numpy() != -100] * cw.numpy()[y.numpy()[y.numpy() != -100]]))
    got = cet.total_weight([y[:4], y[4:]], weight=cw, sample_weight=[s[:4], s[4:]])
    assert_close(float(got), expected, "float64")
    # the "mean" denominator of the weighted loss: a loss given it equals the plain weighted "mean"
    z = x @ w.T
    torch.testing.assert_close(cet.cross_entropy(z, y, weight=cw, sample_weight=s, total_weight=got),
                               cet.cross_entropy(z, y, weight=cw, sample_weight=s), **tol("float64"))
    with pytest.raises(InputValueError, match="one weight tensor per target tensor"):
        cet.total_weight([y[:4], y[4:]], sample_weight=[s[:4]])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("divergence", ["forward_kl", "reverse_kl", "jsd"])
def test_distillation_losses_equal_weighted_naive(reduction, divergence):
    x, w, y, s, _ = _case(8)
    g = torch.Generator().manual_seed(9)
    xt, wt = torch.randn(10, 4, generator=g, dtype=torch.float64), torch.randn(V, 4, generator=g, dtype=torch.float64)
    zs, zt = x @ w.T, xt @ wt.T
    opts = {"divergence": divergence, "temperature": 1.5, "reduction": reduction}
    per_token = distillation(zs, zt, y, divergence=divergence, tau=1.5, reduction="none").numpy()
    kept = y.numpy() != -100
    weighted = per_token * s.numpy() * kept
    expected = {"none": weighted, "sum": weighted.sum(), "mean": weighted.sum() / (s.numpy() * kept).sum()}
    expected = expected[reduction]
    assert_close(cet.distillation_loss(zs, zt, y, sample_weight=s, **opts).numpy(), expected, "float64-reference")
    leaves = [t.clone().requires_grad_() for t in (x, w)]
    got = cet.linear_distillation_loss(*leaves, xt, wt, y, sample_weight=s, chunk_size=3, **opts)
    assert_close(got.detach().numpy(), expected, "float64-reference")
    ref_leaves = [t.clone().requires_grad_() for t in (x, w)]
    ref = cet.distillation_loss(ref_leaves[0] @ ref_leaves[1].T, zt, y, sample_weight=s, **opts)
    up = torch.rand(got.shape, generator=g, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad(got, leaves, up), torch.autograd.grad(ref, ref_leaves, up), strict=True):
        torch.testing.assert_close(a, b, **tol("float64"))
    # the sparse loss with every class given (k = V) is the dense one
    idx = torch.arange(V).expand(10, V)
    sparse = cet.sparse_distillation_loss(zs, idx, torch.log_softmax(zt / 1.5, -1), y, sample_weight=s, **opts)
    assert_close(sparse.numpy(), expected, "float64-reference")


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_sample_weight_is_refused_with_the_numpy_message(bad):
    x, w, y, s, _ = _case(10)
    s[2] = bad
    with pytest.raises(InputValueError) as numpy_error:
        ce.softmax_cross_entropy((x @ w.T).numpy(), y.numpy(), sample_weight=s.numpy())
    calls = [lambda: cet.cross_entropy(x @ w.T, y, sample_weight=s),
             lambda: cet.softmax_focal_loss(x @ w.T, y, sample_weight=s),
             lambda: cet.linear_cross_entropy(x, w, y, sample_weight=s),
             lambda: cet.total_weight(y, sample_weight=s),
             lambda: cet.distillation_loss(x @ w.T, x @ w.T, y, sample_weight=s),
             lambda: cet.linear_distillation_loss(x, w, x, w, y, sample_weight=s)]
    for call in calls:
        with pytest.raises(InputValueError) as error:
            call()
        assert str(error.value) == str(numpy_error.value)


def test_sample_weight_of_the_wrong_shape_is_refused():
    x, w, y, s, _ = _case(11)
    with pytest.raises(InputValueError, match=r"sample_weight must broadcast to shape \(10,\)"):
        cet.cross_entropy(x @ w.T, y, sample_weight=s[:4])
    with pytest.raises(InputValueError, match=r"sample_weight must broadcast to shape \(10,\)"):
        cet.linear_cross_entropy(x, w, y, sample_weight=torch.ones(10, 1))
