"""linear_cross_entropy equals cross_entropy(input @ weight.T + bias) in value and in all gradients, for every
chunk size, option and reduction, and for 3-D inputs."""

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close, tol
from hypothesis import given
from hypothesis import strategies as st
from matmul_count import count_matmuls

from crossentropy.torch import cross_entropy
from crossentropy.torch import total_weight as cet_total_weight
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
        lambda a, c, d: linear_cross_entropy(a, c, y, linear_bias=d, chunk_size=3, reduction="none",
                                             label_smoothing=0.1, z_loss=0.01, softcap=4.0), leaves)


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
    assert_close(float(loss.detach()), float(ref), "low-precision-gradient")


def test_module_and_default_chunk():
    x, w, b, y = _case(4)
    module = LinearCrossEntropyLoss(label_smoothing=0.1, chunk_size=3)
    torch.testing.assert_close(module(x, w, y, b), linear_cross_entropy(x, w, y, linear_bias=b, label_smoothing=0.1))
    assert "chunk_size=3" in repr(module)
    assert default_chunk_size(32768) * 32768 * 4 <= 64 << 20


@pytest.mark.parametrize("bias", [False, True])
def test_backward_with_create_graph_gives_the_same_first_order_gradients(bias):
    """reduction="none" recomputes the chunks in backward, where the logits go into recycled buffers (out=); with
    create_graph=True the first-order gradients are still those of a plain backward, and differentiating them again
    raises (the chunk pass is once differentiable) instead of returning wrong numbers."""
    x, w, b, y = _case(5)
    b = b if bias else None
    leaves = [t.requires_grad_() for t in (x, w)]
    plain = torch.autograd.grad(linear_cross_entropy(x, w, y, linear_bias=b, reduction="none", chunk_size=4).sum(),
                                leaves)
    graphed = torch.autograd.grad(linear_cross_entropy(x, w, y, linear_bias=b, reduction="none",
                                                       chunk_size=4).sum(), leaves, create_graph=True)
    for p_, g_ in zip(plain, graphed, strict=True):
        torch.testing.assert_close(g_.detach(), p_, **tol("float64"))
    with pytest.raises(RuntimeError):
        graphed[0].sum().backward()


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
    (lambda x, w, b, y: linear_cross_entropy(x, w, y, linear_bias=b[:3]), ValueError,
     r"linear_bias must have shape \(11,\)"),
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


# ------------------------------------------------------------------------------------------ only the work asked for
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_no_gradient_work_without_grad(reduction):
    x, w, b, y = _case(6)
    chunks = -(-N_ROWS // 4)
    trainable = [t.clone().requires_grad_() for t in (x, w, b)]

    def call(*leaves):
        return linear_cross_entropy(leaves[0], leaves[1], y, linear_bias=leaves[2], chunk_size=4, reduction=reduction)

    with torch.no_grad():
        assert count_matmuls(lambda: call(*trainable)) == chunks  # the logits only
    assert count_matmuls(lambda: call(x, w, b)) == chunks  # detached inputs
    with_grad = count_matmuls(lambda: call(*trainable))
    assert with_grad == (3 * chunks if reduction == "mean" else chunks)  # "mean" makes the gradients in forward
    with torch.no_grad():
        torch.testing.assert_close(call(*trainable), call(x, w, b), **tol("exact"))


def test_only_the_needed_gradients_are_made():
    x, w, b, y = _case(7)
    xl = x.clone().requires_grad_()  # a frozen head: no weight gradient (one matmul per chunk saved)
    chunks = -(-N_ROWS // 4)
    assert count_matmuls(lambda: linear_cross_entropy(xl, w, y, linear_bias=b, chunk_size=4)) == 2 * chunks
    loss = linear_cross_entropy(xl, w, y, linear_bias=b, chunk_size=4)
    (gx,) = torch.autograd.grad(loss, xl)
    xr = x.clone().requires_grad_()
    (gx_ref,) = torch.autograd.grad(cross_entropy((xr @ w.T + b).movedim(-1, 1), y), xr)
    torch.testing.assert_close(gx, gx_ref, **tol("float64"))


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_compiles_with_fullgraph_and_equals_eager(reduction):
    x, w, b, y = _case(8, torch.float32)
    cw = torch.rand(11, generator=torch.Generator().manual_seed(1))
    kw = {"weight": cw, "label_smoothing": 0.1, "z_loss": 1e-3, "chunk_size": 5, "reduction": reduction,
          "return_stats": True}

    def fn(a, c, d):
        loss, stats = linear_cross_entropy(a, c, y, linear_bias=d, **kw)
        return loss.sum(), stats.correct

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")  # fullgraph: a graph break raises
    results = []
    for f in (compiled, fn):
        leaves = [t.clone().requires_grad_() for t in (x, w, b)]
        loss, correct = f(*leaves)
        results.append((loss, correct, *torch.autograd.grad(loss, leaves)))
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected, **tol("float32"))


# ------------------------------------------------------------------------------------------ torch's own function
def _native(x, w, y, **kw):
    options = kw.pop("options", None)
    return F.linear_cross_entropy(x, w, y, options=options, **kw)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.2}, {"weight": "w"}, {"linear_bias": "b"},
                                {"options": "chunked"}])
def test_agrees_with_torch_linear_cross_entropy(reduction, kw):
    x, w, b, y = _case(9)
    x, y = x.reshape(-1, 6), y.reshape(-1)  # torch's takes (N, D) or (D,) inputs only
    cw = torch.rand(11, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    kw = {k: {"w": cw, "b": b, "chunked": torch.nn.LinearCrossEntropyOptions()}.get(v, v) for k, v in kw.items()}
    native_kw = dict(kw)
    ours_kw = {k: v for k, v in kw.items() if k != "options"}
    got, expected = [], []
    for fn, options, out in ((linear_cross_entropy, ours_kw, got), (_native, native_kw, expected)):
        leaves = [x.clone().requires_grad_(), w.clone().requires_grad_()]
        loss = fn(*leaves[:1], leaves[1], y, reduction=reduction, **options)
        g_out = torch.linspace(0.5, 1.5, loss.numel(), dtype=loss.dtype).reshape(loss.shape)
        out.extend((loss, *torch.autograd.grad(loss, leaves, g_out)))
    for a, c in zip(got, expected, strict=True):
        torch.testing.assert_close(a, c, **tol("float64-reference"))


def test_pinned_differences_from_torch_linear_cross_entropy():
    x, w, _, y = _case(10)
    # 0. ours takes any leading dims (..., D); torch's (N, D) or (D,) only
    with pytest.raises(RuntimeError, match=r"expected input with dimensionality 1 or 2"):
        F.linear_cross_entropy(x, w, y)
    assert linear_cross_entropy(x, w, y, reduction="none").shape == y.shape
    x, y = x.reshape(-1, 6), y.reshape(-1)
    cw = torch.rand(11, generator=torch.Generator().manual_seed(3), dtype=torch.float64) + 0.5
    # 1. class weights with smoothing, "mean": ours divides by sum_i o_i (docs/semantics.md); torch by sum_i w_y_i
    ours = linear_cross_entropy(x, w, y, weight=cw, label_smoothing=0.2)
    native = F.linear_cross_entropy(x, w, y, weight=cw, label_smoothing=0.2)
    total = linear_cross_entropy(x, w, y, weight=cw, label_smoothing=0.2, reduction="sum")
    keep = y != -100
    torch.testing.assert_close(ours, total / float(cet_total_weight(y, weight=cw, label_smoothing=0.2)),
                               **tol("float64"))
    assert not torch.allclose(ours, native)
    # 2. every target ignored, "mean": ours 0 with a zero gradient, torch NaN
    ignored = torch.full_like(y, -100)
    assert float(linear_cross_entropy(x, w, ignored)) == 0.0
    assert torch.isnan(F.linear_cross_entropy(x, w, ignored))
    assert keep.any()


def test_mixed_dtypes_are_refused():
    x, w, b, y = _case(11, torch.float32)
    with pytest.raises(TypeError, match=r"linear_weight has dtype torch.bfloat16 but input has dtype torch.float32"):
        linear_cross_entropy(x, w.bfloat16(), y)
    with pytest.raises(TypeError, match=r"linear_bias has dtype torch.float64 but input has dtype torch.float32"):
        linear_cross_entropy(x, w, y, linear_bias=b.double())


def test_module_takes_class_weight_and_total_weight():
    x, w, b, y = _case(12)
    cw = torch.rand(11, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    module = LinearCrossEntropyLoss(weight=cw, label_smoothing=0.1, chunk_size=3)
    total = cet_total_weight(y, weight=cw, label_smoothing=0.1) * 2
    torch.testing.assert_close(module(x, w, y, b, total_weight=total),
                               linear_cross_entropy(x, w, y, linear_bias=b, weight=cw, label_smoothing=0.1) / 2,
                               **tol("float64"))
    assert torch.equal(module.weight, cw) and "label_smoothing=0.1" in repr(module)


# ------------------------------------------------------------------ issue 21.5: bf16 gradients built in float32
@pytest.mark.parametrize("chunk_size", [None, 64])
def test_bf16_gradients_no_worse_than_torch_chunked(chunk_size):
    # the chunk's logits and their gradient stay in float32: the relative gradient error against float64 is no
    # worse than torch's own chunked linear_cross_entropy on the same sample (up to float32 rounding)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 64, generator=g).bfloat16()
    w = (0.5 * torch.randn(512, 64, generator=g)).bfloat16()
    y = torch.randint(0, 512, (256,), generator=g)
    leaves = [x.double().requires_grad_(), w.double().requires_grad_()]
    exact = torch.autograd.grad(F.cross_entropy(leaves[0] @ leaves[1].T, y), leaves)

    def error(fn, **kw):
        leaves = [x.clone().requires_grad_(), w.clone().requires_grad_()]
        grads = torch.autograd.grad(fn(*leaves, y, **kw), leaves)
        return [float((a.double() - e).norm() / e.norm()) for a, e in zip(grads, exact, strict=True)]

    ours = error(linear_cross_entropy, chunk_size=chunk_size)
    native = error(_native, options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=64))
    for a, b in zip(ours, native, strict=True):
        assert a <= b * (1 + tol("float32")["rtol"]), (ours, native)


def test_ignore_index_none_means_minus_100_as_torch():
    # issue 21.7: None is torch's default there, and it ignores -100 index targets
    x, w, b, y = _case(13)
    x, y = x.reshape(-1, 6), y.reshape(-1)
    for reduction in ("none", "sum", "mean"):
        ours = linear_cross_entropy(x, w, y, ignore_index=None, reduction=reduction)
        torch.testing.assert_close(ours, linear_cross_entropy(x, w, y, reduction=reduction), **tol("exact"))
        torch.testing.assert_close(ours, F.linear_cross_entropy(x, w, y, ignore_index=None, reduction=reduction),
                                   **tol("float64-reference"))
    assert (y == -100).any()


# ------------------------------------------------------------------ issue 21.6: K-dimensional linear_weight
@pytest.mark.parametrize("out", [(5,), (2, 3)])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.2}, {"weight": "w"}, {"linear_bias": "b"}])
def test_k_dimensional_linear_weight_equals_torch(out, reduction, kw):
    g = torch.Generator().manual_seed(14)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    w = torch.randn(3, *out, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (4, *out), generator=g)
    y.view(-1)[1] = -100
    extra = {"w": torch.rand(3, generator=g, dtype=torch.float64) + 0.5,
             "b": torch.randn(3, *out, generator=g, dtype=torch.float64)}
    kw = {k: extra.get(v, v) for k, v in kw.items()}
    got, expected = [], []
    for fn, into in ((linear_cross_entropy, got), (F.linear_cross_entropy, expected)):
        leaves = [x.clone().requires_grad_(), w.clone().requires_grad_()]
        loss = fn(leaves[0], leaves[1], y, reduction=reduction, **kw)
        into.extend((loss, *torch.autograd.grad(loss.sum(), leaves)))
    for a, c in zip(got, expected, strict=True):
        torch.testing.assert_close(a, c, **tol("float64-reference"))


def test_k_dimensional_module_parity_and_stats():
    torch.manual_seed(0)
    native = torch.nn.LinearCrossEntropyLoss(2, 3, out_features=(5,), dtype=torch.float64)
    x, y = torch.randn(4, 2, dtype=torch.float64), torch.randint(0, 3, (4, 5))
    head = native.linear.weight.reshape(3, 5, 2)
    torch.testing.assert_close(LinearCrossEntropyLoss()(x, head, y), native(x, y), **tol("float64-reference"))
    loss, stats = linear_cross_entropy(x, head, y, reduction="none", return_stats=True)
    assert stats.p_target.shape == y.shape
    logits = (x @ head.reshape(15, 2).T).reshape(4, 3, 5)
    torch.testing.assert_close(stats.p_target, torch.softmax(logits, 1).gather(1, y[:, None]).squeeze(1),
                               **tol("float64-reference"))
    with pytest.raises(ValueError, match=r"target must have shape \(4, 5\)"):
        linear_cross_entropy(x, head, y[:, :4])
