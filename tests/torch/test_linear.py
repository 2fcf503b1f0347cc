"""linear_cross_entropy equals cross_entropy(input @ weight.T + bias) in value and in all gradients, for every
chunk size, option and reduction, and for 3-D inputs."""

import pytest
import torch
from conftest import tol
from hypothesis import given
from hypothesis import strategies as st

from crossentropy.torch import cross_entropy
from crossentropy.torch.linear import LinearCrossEntropyLoss, default_chunk_size, linear_cross_entropy

N_ROWS = 2 * 9


def _case(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 9, 6, generator=g, dtype=dtype)
    w = torch.randn(11, 6, generator=g, dtype=dtype)
    b = torch.randn(11, generator=g, dtype=dtype)
    y = torch.randint(0, 11, (2, 9), generator=g)
    y[0, 3] = y[1, 0] = -100
    return x, w, b, y


def _both(x, w, b, y, chunk_size, **kw):
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    loss = linear_cross_entropy(leaves[0], leaves[1], y, linear_bias=leaves[2], chunk_size=chunk_size, **kw)
    ref_leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    ref = cross_entropy((ref_leaves[0] @ ref_leaves[1].T + ref_leaves[2]).movedim(-1, 1), y, **kw)
    g_out = torch.randn(loss.shape, generator=torch.Generator().manual_seed(5), dtype=loss.dtype)
    grads = torch.autograd.grad(loss, leaves, g_out)
    ref_grads = torch.autograd.grad(ref, ref_leaves, g_out)
    return (loss, *grads), (ref, *ref_grads)


@pytest.mark.parametrize("chunk_size", [1, 7, 64, None, N_ROWS + 5])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("extras", [{}, {"label_smoothing": 0.1}, {"z_loss": 0.01}, {"softcap": 3.0},
                                    {"label_smoothing": 0.2, "z_loss": 1e-3, "softcap": 5.0}])
def test_equals_naive_reference(chunk_size, reduction, extras):
    got, expected = _both(*_case(), chunk_size, reduction=reduction, **extras)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, **tol("float64"))


def test_without_bias_and_two_dim_input():
    x, w, _, y = _case(1)
    x2, y2 = x.reshape(-1, 6).requires_grad_(), y.reshape(-1)
    loss = linear_cross_entropy(x2, w, y2, chunk_size=4)
    (gx,) = torch.autograd.grad(loss, x2)
    x_ref = x2.detach().clone().requires_grad_()
    ref = cross_entropy(x_ref @ w.T, y2)
    (gx_ref,) = torch.autograd.grad(ref, x_ref)
    torch.testing.assert_close(loss, ref, **tol("float64"))
    torch.testing.assert_close(gx, gx_ref, **tol("float64"))


@given(st.integers(1, N_ROWS + 3), st.sampled_from(["none", "sum", "mean"]), st.integers(0, 20))
def test_chunked_equals_unchunked_for_every_chunk_size(chunk_size, reduction, seed):
    x, w, b, y = _case(seed)
    whole = _both(x, w, b, y, N_ROWS, reduction=reduction, label_smoothing=0.1)[0]
    chunked = _both(x, w, b, y, chunk_size, reduction=reduction, label_smoothing=0.1)[0]
    for a, c in zip(chunked, whole, strict=True):
        torch.testing.assert_close(a, c, **tol("float64"))


def test_gradcheck():
    # gradcheck differentiates one graph many times, which "mean"/"sum" refuse (their gradients are made in
    # forward and scaled in place); those are checked against autograd through the naive reference above.
    x, w, b, y = (t[:, :4] if t.dim() > 1 and t.shape[0] == 2 else t for t in _case(2))
    leaves = tuple(t.clone().requires_grad_() for t in (x, w, b))
    assert torch.autograd.gradcheck(
        lambda a, c, d: linear_cross_entropy(a, c, y, linear_bias=d, chunk_size=3, reduction="none", label_smoothing=0.1,
                                             z_loss=0.01, softcap=4.0), leaves)


def test_all_ignored_and_low_precision():
    x, w, b, y = _case(3)
    xl = x.clone().requires_grad_()
    loss = linear_cross_entropy(xl, w, torch.full_like(y, -100), linear_bias=b)
    loss.backward()
    assert float(loss.detach()) == 0.0 and not xl.grad.any()
    xb, wb = x.bfloat16().requires_grad_(), w.bfloat16().requires_grad_()
    loss = linear_cross_entropy(xb, wb, y, chunk_size=5)
    loss.backward()
    assert loss.dtype == torch.float32 and xb.grad.dtype == wb.grad.dtype == torch.bfloat16
    ref = cross_entropy((x @ w.T).movedim(-1, 1), y)
    assert abs(float(loss.detach()) - float(ref)) / float(ref) < 2e-2


def test_module_and_default_chunk():
    x, w, b, y = _case(4)
    module = LinearCrossEntropyLoss(label_smoothing=0.1, chunk_size=3)
    torch.testing.assert_close(module(x, w, y, b), linear_cross_entropy(x, w, y, linear_bias=b, label_smoothing=0.1))
    assert "chunk_size=3" in repr(module)
    assert default_chunk_size(32768) * 32768 * 4 <= 32 << 20


def test_second_backward_is_refused_not_wrong():
    x, w, b, y = _case(5)
    xl = x.clone().requires_grad_()
    loss = linear_cross_entropy(xl, w, y)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match=r"backward can run once"):
        loss.backward()


@pytest.mark.parametrize("call,exc,message", [
    (lambda x, w, b, y: linear_cross_entropy(x, w[:, :5], y), ValueError,
     r"linear_weight must have shape \(V, D\) with D = input.shape\[-1\] = 6, but got \(11, 5\)"),
    (lambda x, w, b, y: linear_cross_entropy(x, w, y, linear_bias=b[:3]), ValueError, r"linear_bias must have shape \(11,\)"),
    (lambda x, w, b, y: linear_cross_entropy(x, w, y[:, :4]), ValueError,
     r"target must have the input's shape without its last dim, \(2, 9\)"),
    (lambda x, w, b, y: linear_cross_entropy(x, w, y.double()), TypeError, r"target must hold class indices"),
    (lambda x, w, b, y: linear_cross_entropy(x, w, y + 20), ValueError,
     r"target has class index \d+ at position \(\d+,\), outside \[0, 10\] for 11 classes \(the vocabulary\)"),
    (lambda x, w, b, y: linear_cross_entropy(x, w, y, chunk_size=0), ValueError, r"chunk_size must be a positive int"),
    (lambda x, w, b, y: linear_cross_entropy(x, w, y, reduction="avg"), ValueError, r"reduction must be one of"),
])
def test_bad_input(call, exc, message):
    with pytest.raises(exc, match=message):
        call(*_case())
