"""torch distillation losses: dense, linear chunked (every chunk size, different hidden sizes) and sparse k = V against
the float64 torch.log_softmax reference in value and student gradient for each divergence x beta x tau with ignored
tokens; gradcheck in float64; low precision; no gradient work under no_grad; errors; properties."""

import itertools

import numpy as np
import pytest
import reference as ref
import torch
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st

import crossentropy as ce
import crossentropy.torch as cet
from crossentropy.torch import _distill_autograd

DIVERGENCES = ["forward_kl", "reverse_kl", "jsd"]
GRID = list(itertools.product(DIVERGENCES, [0.1, 0.5], [1.0, 2.0]))


def _batch(seed=0, shape=(2, 3), vocab=7, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(*shape, vocab, generator=g, dtype=dtype) * 2
    t = torch.randn(*shape, vocab, generator=g, dtype=dtype) * 2
    y = torch.randint(0, vocab, shape, generator=g)
    y.view(-1)[[1, -1]] = -100
    return s, t, y


def _reference(s, t, y, divergence, beta, tau, reduction="mean"):
    s = s.detach().double().requires_grad_()
    loss = ref.distillation(s, t.detach().double(), y, divergence=divergence, beta=beta, tau=tau,
                            reduction=reduction)
    loss.sum().backward()
    return loss.detach(), s.grad


@pytest.mark.parametrize("divergence,beta,tau", GRID)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_dense_matches_reference(divergence, beta, tau, reduction):
    s, t, y = _batch()
    s.requires_grad_()
    loss = cet.distillation_loss(s, t, y, divergence=divergence, beta=beta, temperature=tau, reduction=reduction)
    loss.sum().backward()
    ref_loss, ref_grad = _reference(s, t, y, divergence, beta, tau, reduction)
    assert_close(loss.detach(), ref_loss)
    assert_close(s.grad, ref_grad)
    assert torch.all(s.grad[y == -100] == 0)


@pytest.mark.parametrize("divergence,beta,tau", GRID)
def test_sparse_k_equal_vocab_matches_reference(divergence, beta, tau):
    s, t, y = _batch(1)
    s.requires_grad_()
    lt = torch.log_softmax(t / tau, -1)
    lp, idx = lt.sort(-1, descending=True)
    loss = cet.sparse_distillation_loss(s, idx, lp, y, divergence=divergence, beta=beta, temperature=tau)
    loss.backward()
    ref_loss, ref_grad = _reference(s, t, y, divergence, beta, tau)
    assert_close(loss.detach(), ref_loss)
    assert_close(s.grad, ref_grad)


@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("k", [1, 3, 7])
def test_sparse_matches_the_numpy_core(divergence, k):
    # the NumPy core's sparse loss is pinned to a hand computation of the k + 1 bins (tests/core)
    s, t, y = _batch(2)
    lp, idx = torch.log_softmax(t / 2, -1).topk(k, -1)
    s.requires_grad_()
    loss = cet.sparse_distillation_loss(s, idx, lp, y, divergence=divergence, beta=0.1, temperature=2.0)
    loss.backward()
    np_loss, np_grad = ce.sparse_distillation_loss(s.detach().numpy(), idx.numpy(), lp.numpy(), y.numpy(),
                                                   divergence=divergence, beta=0.1, temperature=2.0,
                                                   return_grad=True)
    assert_close(loss.detach(), np_loss)
    assert_close(s.grad, np_grad)


def _heads(seed=3, n=7, ds=5, dt=3, vocab=11, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    xs, ws, bs = (torch.randn(n, ds, generator=g, dtype=dtype), torch.randn(vocab, ds, generator=g, dtype=dtype),
                  torch.randn(vocab, generator=g, dtype=dtype))
    xt, wt, bt = (torch.randn(n, dt, generator=g, dtype=dtype), torch.randn(vocab, dt, generator=g, dtype=dtype),
                  torch.randn(vocab, generator=g, dtype=dtype))
    y = torch.randint(0, vocab, (n,), generator=g)
    y[[0, -1]] = -100
    return (xs, ws, bs), (xt, wt, bt), y


@pytest.mark.parametrize("divergence,beta,tau", GRID)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_linear_every_chunk_size_matches_reference(divergence, beta, tau, reduction):
    (xs, ws, bs), (xt, wt, bt), y = _heads()
    expected = [p.detach().clone().requires_grad_() for p in (xs, ws, bs)]
    ref_loss = ref.distillation(expected[0] @ expected[1].T + expected[2], xt @ wt.T + bt, y, divergence=divergence,
                                beta=beta, tau=tau, reduction=reduction)
    ref_loss.sum().backward()
    for chunk in range(1, xs.shape[0] + 1):
        params = [p.detach().clone().requires_grad_() for p in (xs, ws, bs)]
        teacher = [p.detach().clone().requires_grad_() for p in (xt, wt, bt)]
        loss = cet.linear_distillation_loss(params[0], params[1], teacher[0], teacher[1], y, student_bias=params[2],
                                            teacher_bias=teacher[2], divergence=divergence, beta=beta,
                                            temperature=tau, reduction=reduction, chunk_size=chunk)
        loss.sum().backward()
        assert_close(loss.detach(), ref_loss.detach())
        for p, e in zip(params, expected, strict=True):
            assert_close(p.grad, e.grad)
        assert all(p.grad is None for p in teacher)  # the teacher gets no gradient


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_gradcheck_float64(divergence):
    s, t, y = _batch(4, shape=(3,), vocab=5)
    s.requires_grad_()
    opts = {"divergence": divergence, "beta": 0.3, "temperature": 1.7}
    lp, idx = torch.log_softmax(t / 1.7, -1).topk(2, -1)
    for reduction in ("mean", "none"):
        assert torch.autograd.gradcheck(lambda v, r=reduction: cet.distillation_loss(v, t, y, reduction=r, **opts),
                                        (s,))
        assert torch.autograd.gradcheck(
            lambda v, r=reduction: cet.sparse_distillation_loss(v, idx, lp, y, reduction=r, **opts), (s,))
    (xs, ws, bs), (xt, wt, bt), y2 = _heads(n=4, ds=3, dt=2, vocab=5)
    inputs = tuple(p.requires_grad_() for p in (xs, ws, bs))
    assert torch.autograd.gradcheck(
        lambda a, b, c: cet.linear_distillation_loss(a, b, xt, wt, y2, student_bias=c, teacher_bias=bt,
                                                     reduction="none", chunk_size=3, **opts), inputs)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_computes_in_float32(dtype):
    s, t, y = _batch(5, dtype=dtype)
    s.requires_grad_()
    loss = cet.distillation_loss(s, t, y, divergence="jsd", temperature=2.0)
    loss.backward()
    assert loss.dtype == torch.float32 and s.grad.dtype == dtype
    ref_loss, ref_grad = _reference(s, t, y, "jsd", 0.5, 2.0)  # the reference on the rounded inputs
    assert_close(loss.detach(), ref_loss, np.float32)
    if dtype == torch.float16:
        assert_close(s.grad.double(), ref_grad, np.float16)
    (xs, ws, bs), (xt, wt, bt), y = _heads(dtype=dtype)
    xs.requires_grad_()
    lin = cet.linear_distillation_loss(xs, ws, xt, wt, y, student_bias=bs, teacher_bias=bt, chunk_size=3)
    lin.backward()
    assert lin.dtype == torch.float32 and xs.grad.dtype == dtype
    expected = ref.distillation(xs.detach().double() @ ws.double().T + bs.double(),
                                xt.double() @ wt.double().T + bt.double(), y)
    assert_close(lin.detach(), expected, np.float16 if dtype != torch.float32 else np.float32)


def test_no_gradient_work_without_grad(monkeypatch):
    (xs, ws, bs), (xt, wt, bt), y = _heads()
    made = []
    real = _distill_autograd._zero_grads
    monkeypatch.setattr(_distill_autograd, "_zero_grads", lambda *a: made.append(1) or real(*a))
    ws.requires_grad_()
    with torch.no_grad():
        cet.linear_distillation_loss(xs, ws, xt, wt, y, chunk_size=2)
    cet.linear_distillation_loss(xs.detach(), ws.detach(), xt, wt.requires_grad_(), y, chunk_size=2)
    assert made == []
    loss = cet.linear_distillation_loss(xs, ws, xt, wt, y, chunk_size=2)
    assert made == [1]
    loss.backward()
    assert ws.grad is not None and wt.grad is None


def test_all_ignored_is_zero_with_zero_gradient():
    s, t, _ = _batch(6)
    y = torch.full(s.shape[:-1], -100)
    s.requires_grad_()
    loss = cet.distillation_loss(s, t, y, divergence="reverse_kl")
    loss.backward()
    assert loss.item() == 0 and torch.all(s.grad == 0)


def test_negative_infinite_logits_match_the_numpy_core():
    s = torch.tensor([[0.0, -torch.inf, 1.0], [2.0, 0.0, -1.0]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[0.5, -torch.inf, 0.0], [0.0, -torch.inf, 1.0]], dtype=torch.float64)
    for divergence in DIVERGENCES:
        s.grad = None
        loss = cet.distillation_loss(s, t, divergence=divergence, reduction="sum")
        loss.backward()
        np_loss, np_grad = ce.distillation_loss(s.detach().numpy(), t.numpy(), divergence=divergence,
                                                reduction="sum", return_grad=True)
        assert_close(loss.detach(), np_loss)
        assert_close(s.grad, np_grad)
        assert torch.isnan(cet.distillation_loss(s, torch.full_like(t, torch.nan), divergence=divergence))


@pytest.mark.parametrize("kwargs,match", [
    ({"divergence": "kl"}, "divergence"),
    ({"beta": 1.0}, "beta"),
    ({"beta": -0.2}, "beta"),
    ({"temperature": 0}, "temperature"),
    ({"reduction": "avg"}, "reduction"),
])
def test_bad_options_name_them(kwargs, match):
    s, t, y = _batch()
    (xs, ws, bs), (xt, wt, bt), y2 = _heads()
    idx = torch.zeros(*s.shape[:-1], 1, dtype=torch.long)
    for call in (lambda: cet.distillation_loss(s, t, y, **kwargs),
                 lambda: cet.sparse_distillation_loss(s, idx, torch.full(idx.shape, -1.0), y, **kwargs),
                 lambda: cet.linear_distillation_loss(xs, ws, xt, wt, y2, **kwargs)):
        with pytest.raises(ce.InputValueError, match=match):
            call()


def test_bad_shapes_name_them():
    s, t, y = _batch()
    (xs, ws, bs), (xt, wt, bt), y2 = _heads()
    cases = [
        (lambda: cet.distillation_loss(s, t[..., :5], y), "vocabulary"),
        (lambda: cet.distillation_loss(s, t, y[:1]), "target"),
        (lambda: cet.linear_distillation_loss(xs, ws, xt, wt[:5], y2), "vocabularies must match"),
        (lambda: cet.linear_distillation_loss(xs, ws, xt[:3], wt, y2), "teacher_input"),
        (lambda: cet.linear_distillation_loss(xs, ws.T, xt, wt, y2), "student_weight"),
        (lambda: cet.linear_distillation_loss(xs, ws, xt, wt, y2, student_bias=bs[:2]), "student_bias"),
        (lambda: cet.linear_distillation_loss(xs, ws, xt, wt, y2, chunk_size=0), "chunk_size"),
        (lambda: cet.sparse_distillation_loss(s, torch.full((2, 3, 1), 9), torch.full((2, 3, 1), -1.0)),
         "teacher_indices"),
    ]
    for call, match in cases:
        with pytest.raises(ce.InputValueError, match=match):
            call()
    with pytest.raises(ce.InputTypeError, match="teacher_indices"):
        cet.sparse_distillation_loss(s, torch.zeros(2, 3, 1), torch.zeros(2, 3, 1))


@given(st.integers(0, 10_000), st.sampled_from(DIVERGENCES), st.floats(0.05, 0.95), st.floats(0.5, 4.0),
       st.integers(1, 6))
def test_properties(seed, divergence, beta, tau, chunk):
    s, t, _ = _batch(seed, shape=(5,), vocab=6)
    opts = {"divergence": divergence, "beta": beta, "temperature": tau}
    per = cet.distillation_loss(s, t, reduction="none", **opts)
    assert torch.all(per >= 0)
    assert_close(cet.distillation_loss(s, s, reduction="none", **opts), torch.zeros(5))
    assert_close(per, tau**2 * cet.distillation_loss(s / tau, t / tau, reduction="none",
                                                     **{**opts, "temperature": 1.0}))
    eye = torch.eye(6, dtype=torch.float64)  # logits through an identity head: chunked equals dense
    assert_close(cet.linear_distillation_loss(s, eye, t, eye, reduction="none", chunk_size=chunk, **opts), per)


# ------------------------------------------------------------------ issue 21.24: half-precision top-k teachers
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("k", [5, 40, 50])
def test_sparse_accepts_the_half_precision_topk_of_a_real_log_softmax(dtype, k):
    # the "sums to at most 1" tolerance follows the log-probs' dtype, as in the NumPy core (float16 there)
    g = torch.Generator().manual_seed(298)
    student = torch.randn(8, 50, generator=g)
    top = torch.log_softmax((torch.randn(8, 50, generator=g) * 3).to(dtype), -1).topk(k, -1)
    loss = cet.sparse_distillation_loss(student, top.indices, top.values, reduction="none")
    assert bool(torch.isfinite(loss).all()) and bool((loss >= 0).all())
    if dtype == torch.float16:  # NumPy has float16: the same values, the same answer
        numpy = ce.sparse_distillation_loss(student.numpy(), top.indices.numpy(), top.values.numpy(),
                                            reduction="none")
        assert_close(loss, numpy, "float32")
