"""total_weight and the exact global "mean": micro-batch losses given the whole batch's total_weight have gradients
that sum to the full-batch "mean" gradient (cross_entropy, linear_cross_entropy, the NumPy core), with class
weights, per-token sample weights, label smoothing, ignored targets and z-loss; total_weight against a float64
reference; bad input. The multi-rank case is in test_parallel.py."""

import numpy as np
import pytest
import torch
from conftest import assert_close, tol
from hypothesis import given
from hypothesis import strategies as st
from reference import smoothed

import crossentropy as ce
import crossentropy.torch as cet

V = 7


def _reference_weight(targets, class_weight, ignore_index, e) -> float:
    """``sum_i sum_c w_c t'_ic`` row by row from the definition (tests/reference.py's smoothing)."""
    w = np.ones(V) if class_weight is None else np.asarray(class_weight, dtype=np.float64)
    total = 0.0
    for t in targets:
        t = np.asarray(t)
        rows = t.reshape(-1) if t.dtype.kind in "iu" else t.reshape(-1, t.shape[-1])
        for row in rows:
            if rows.ndim == 1:
                if row == ignore_index:
                    continue
                row = np.eye(V)[row]
            total += float(np.dot(w, smoothed(row, e)))
    return total


def _batch(seed, n, *, ignored=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    w = torch.randn(V, 5, generator=g, dtype=torch.float64)
    b = torch.randn(V, generator=g, dtype=torch.float64)
    y = torch.randint(0, V, (n,), generator=g)
    if ignored:
        y[torch.rand(n, generator=g) < 0.3] = -100
    cw = torch.rand(V, generator=g, dtype=torch.float64) * 2
    return x, w, b, y, cw


def _cuts(n, data):
    """Random uneven micro-batch bounds covering 0..n (every micro-batch non-empty)."""
    k = data.draw(st.integers(1, min(n, 5)))
    inner = sorted(data.draw(st.sets(st.integers(1, n - 1), min_size=k - 1, max_size=k - 1))) if n > 1 else []
    return list(zip([0, *inner], [*inner, n], strict=True))


# ------------------------------------------------------------------------------------------ total_weight
def test_total_weight_golden():
    y = [torch.tensor([0, 2, -100]), torch.tensor([1])]
    cw = torch.tensor([1.0, 2.0, 0.5])
    assert float(cet.total_weight(y, weight=cw)) == 3.5
    assert ce.total_weight([t.numpy() for t in y], class_weight=cw.numpy()) == 3.5
    # smoothing spreads e / K over every class: o = (1 - e) w_y + e * mean(w) = 0.7 * 3.5 + 0.3 * 3 * 7 / 6
    assert_close(float(cet.total_weight(y, weight=cw, label_smoothing=0.3)), 3.5)
    assert_close(float(cet.total_weight(y, weight=cw * 2, label_smoothing=0.5)), 0.5 * 7 + 0.5 * 3 * 7 / 3)
    assert float(cet.total_weight(torch.tensor([[5, -100]]))) == 1.0  # an index tensor of any shape


@pytest.mark.parametrize("e", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("soft", [False, True])
def test_total_weight_equals_float64_reference(e, weighted, soft):
    g = torch.Generator().manual_seed(3)
    cw = torch.rand(V, generator=g, dtype=torch.float64) if weighted else None
    if soft:
        targets = [torch.softmax(torch.randn(n, V, generator=g, dtype=torch.float64), 1) for n in (3, 1, 5)]
    else:
        targets = [torch.randint(-1, V, (n,), generator=g) for n in (3, 1, 5)]
    expected = _reference_weight([t.numpy() for t in targets], None if cw is None else cw.numpy(), -1, e)
    got = cet.total_weight(targets, weight=cw, ignore_index=-1, label_smoothing=e)
    assert got.dtype == torch.float64 and got.dim() == 0
    assert_close(float(got), expected, "float64-reference")
    got_np = ce.total_weight([t.numpy() for t in targets], class_weight=None if cw is None else cw.numpy(),
                             ignore_index=-1, label_smoothing=e)
    assert_close(got_np, expected, "float64-reference")


def test_total_weight_of_k_dim_soft_targets_uses_class_dim_1():
    p = torch.softmax(torch.randn(2, V, 3, dtype=torch.float64), 1)
    cw = torch.rand(V, dtype=torch.float64)
    expected = _reference_weight([p.movedim(1, -1).numpy()], cw.numpy(), -100, 0.1)
    assert_close(float(cet.total_weight(p, weight=cw, label_smoothing=0.1)), expected, "float64-reference")


@pytest.mark.parametrize("call,message", [
    (lambda: cet.total_weight([]), r"targets is empty"),
    (lambda: cet.total_weight([torch.tensor([0]), torch.rand(1, V)]), r"mixes class indices and probabilities"),
    (lambda: cet.total_weight(torch.tensor([0, 9]), weight=torch.ones(V)), r"class index 9 .* \(targets\[0\]\)"),
    (lambda: cet.total_weight(torch.tensor([0]), weight=torch.ones(2, V)), r"weight must be one weight per class"),
    (lambda: cet.total_weight(torch.rand(2, 3), weight=torch.ones(V)), r"has 3 classes along dim 1, but weight"),
    (lambda: cet.total_weight(torch.tensor([0]), label_smoothing=1.0), r"label_smoothing must be in \[0, 1\)"),
    (lambda: ce.total_weight([np.array([0]), np.array([[0.5, 0.5]])]), r"mixes class indices and probabilities"),
    (lambda: ce.total_weight(np.array([-3])), r"class index -3"),
    (lambda: ce.total_weight([]), r"targets is empty"),
    (lambda: ce.total_weight([np.ones((1, 2)) / 2, np.ones((1, 3)) / 3]), r"targets\[1\] has 3 classes, but"),
    (lambda: ce.total_weight(np.array([[0.5, 0.5]]), class_weight=[1.0] * 3), r"has 2 classes on its last axis"),
    (lambda: ce.total_weight(np.array([0]), class_weight=[[1.0]]), r"class_weight must be one weight per class"),
])
def test_total_weight_bad_input(call, message):
    with pytest.raises(ce.InputValueError, match=message):
        call()


def test_total_weight_goes_with_mean_only():
    x, w, _, y, _ = _batch(0, 4)
    with pytest.raises(ce.InputValueError, match=r"total_weight sets the denominator of reduction='mean'"):
        cet.linear_cross_entropy(x, w, y, reduction="sum", total_weight=cet.total_weight(y))


# ------------------------------------------------------------------------------------------ micro-batches
def _options(data):
    return {"label_smoothing": data.draw(st.sampled_from([0.0, 0.1])),
            "z_loss": data.draw(st.sampled_from([0.0, 1e-2]))}


def _sample_weight(seed, n, data):
    """Per-token weights (some 0), or None."""
    if not data.draw(st.booleans()):
        return None
    s = torch.rand(n, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64) * 3
    s[::3] = 0.0
    return s


def _part(s, a, b):
    return None if s is None else s[a:b]


def _micro_total(y, cuts, cw, opts, s):
    return cet.total_weight([y[a:b] for a, b in cuts], weight=cw, label_smoothing=opts["label_smoothing"],
                            sample_weight=None if s is None else [s[a:b] for a, b in cuts])


@given(st.integers(0, 10_000), st.integers(1, 12), st.data())
def test_micro_batch_gradients_sum_to_the_full_mean_gradient(seed, n, data):
    x, w, _, y, cw = _batch(seed, n)
    x = x @ w.T  # (n, V) logits
    opts, cuts, s = _options(data), _cuts(n, data), _sample_weight(seed, n, data)
    full = x.clone().requires_grad_()
    full_loss = cet.cross_entropy(full, y, weight=cw, sample_weight=s, **opts)
    full_loss.backward()
    total = _micro_total(y, cuts, cw, opts, s)
    parts = [x[a:b].clone().requires_grad_() for a, b in cuts]
    losses = [cet.cross_entropy(p, y[a:b], weight=cw, total_weight=total, sample_weight=_part(s, a, b), **opts)
              for p, (a, b) in zip(parts, cuts, strict=True)]
    sum(losses).backward()
    torch.testing.assert_close(torch.cat([p.grad for p in parts]), full.grad, **tol("float64"))
    torch.testing.assert_close(sum(losses), full_loss, **tol("float64"))


@given(st.integers(0, 10_000), st.integers(1, 12), st.data())
def test_linear_micro_batch_gradients_sum_to_the_full_mean_gradient(seed, n, data):
    x, w, b, y, cw = _batch(seed, n)
    opts, cuts, s = _options(data), _cuts(n, data), _sample_weight(seed, n, data)
    chunk_size = data.draw(st.integers(1, n + 1))
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    cet.linear_cross_entropy(leaves[0], leaves[1], y, linear_bias=leaves[2], weight=cw, chunk_size=chunk_size,
                             sample_weight=s, **opts).backward()
    total = _micro_total(y, cuts, cw, opts, s)
    wl, bl = w.clone().requires_grad_(), b.clone().requires_grad_()
    parts = [x[a:b].clone().requires_grad_() for a, b in cuts]
    for p, (a, c) in zip(parts, cuts, strict=True):  # one backward per micro-batch, as gradient accumulation does
        cet.linear_cross_entropy(p, wl, y[a:c], linear_bias=bl, weight=cw, chunk_size=chunk_size,
                                 total_weight=total, sample_weight=_part(s, a, c), **opts).backward()
    summed = (torch.cat([p.grad for p in parts]), wl.grad, bl.grad)
    for got, expected in zip(summed, (leaf.grad for leaf in leaves), strict=True):
        torch.testing.assert_close(got, expected, **tol("float64"))


@given(st.integers(0, 10_000), st.integers(1, 12), st.data())
def test_numpy_micro_batch_gradients_sum_to_the_full_mean_gradient(seed, n, data):
    x, w, _, y, cw = _batch(seed, n)
    x, y, cw = (x @ w.T).numpy(), y.numpy(), cw.numpy()
    e, cuts = data.draw(st.sampled_from([0.0, 0.1])), _cuts(n, data)
    full_loss, full_grad = ce.softmax_cross_entropy(x, y, class_weight=cw, label_smoothing=e, return_grad=True)
    total = ce.total_weight([y[a:b] for a, b in cuts], class_weight=cw, label_smoothing=e)
    parts = [ce.softmax_cross_entropy(x[a:b], y[a:b], class_weight=cw, label_smoothing=e, total_weight=total,
                                      return_grad=True) for a, b in cuts]
    assert_close(sum(p[0] for p in parts), full_loss)
    assert_close(np.concatenate([p[1] for p in parts]), full_grad)


def test_every_target_ignored_gives_zero_loss_and_gradient():
    x, w, _, y, cw = _batch(1, 5)
    y[:] = -100
    total = cet.total_weight([y[:2], y[2:]], weight=cw)
    assert float(total) == 0.0
    xl = x[:2].clone().requires_grad_()
    loss = cet.linear_cross_entropy(xl, w, y[:2], weight=cw, total_weight=total)
    loss.backward()
    assert float(loss.detach()) == 0.0 and not xl.grad.any()
