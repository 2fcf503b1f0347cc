"""linear_logprobs equals a float64 log_softmax((x @ W.T + b) / T).gather(...) and its entropy, in value and in the
gradients to input, weight and bias, under any upstream gradient, for every chunk size; and TRL's chunked path."""

import math

import pytest
import torch
from conftest import tol
from hypothesis import given
from hypothesis import strategies as st
from matmul_count import count_matmuls

from crossentropy.rules.errors import InputTypeError, InputValueError
from crossentropy.torch import linear_logprobs

V, D = 11, 6


def _case(seed=0, dtype=torch.float64, shape=(2, 9)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, D, generator=g, dtype=dtype)
    w = torch.randn(V, D, generator=g, dtype=dtype)
    b = torch.randn(V, generator=g, dtype=dtype)
    y = torch.randint(0, V, shape, generator=g)
    y.view(-1)[3::4] = -100  # every fourth token from the fourth is ignored
    return x, w, b, y


def reference(x, w, b, y, *, temperature=1.0, softcap=None, ignore_index=-100):
    """The naive float64 computation: the whole logits, log_softmax, gather, entropy."""
    z = x.double() @ w.double().T + (0 if b is None else b.double())
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    logq = torch.log_softmax(z / temperature, -1)
    keep = y != ignore_index
    logp = logq.gather(-1, torch.where(keep, y, 0)[..., None]).squeeze(-1)
    entropy = -(logq.exp() * logq).sum(-1)
    zero = torch.zeros((), dtype=torch.float64)
    return torch.where(keep, logp, zero), torch.where(keep, entropy, zero)


def _upstream(shape, seed):
    """A random upstream gradient that is not contiguous (a strided view of a larger tensor)."""
    g = torch.Generator().manual_seed(seed)
    big = torch.randn(*shape, 3, generator=g, dtype=torch.float64)
    out = big[..., 1]
    assert out.numel() < 2 or not out.is_contiguous()
    return out


def _close_to_scale(actual, expected, key):
    """Close within the tier's rtol, entries small against the largest one within rtol of the largest (sums of
    terms that cancel, computed in float32 or rounded to bfloat16)."""
    rtol = tol(key)["rtol"]
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * float(expected.abs().max()))


def _grads(fn, leaves, upstream):
    leaves = [t.clone().requires_grad_() for t in leaves]
    outs = fn(*leaves)
    total = sum((o * u).sum() for o, u in zip(outs, upstream, strict=True))
    return [o.detach() for o in outs], list(torch.autograd.grad(total, leaves))


def _compare(x, w, b, y, chunk_size, seed=5, **kw):
    up = (_upstream(y.shape, seed), _upstream(y.shape, seed + 1))
    got = _grads(lambda a, c, d: linear_logprobs(a, c, y, linear_bias=d, return_entropy=True,
                                                  chunk_size=chunk_size, **kw), (x, w, b), up)
    expected = _grads(lambda a, c, d: reference(a, c, d, y, **kw), (x, w, b), up)
    for a, e in zip(got[0] + got[1], expected[0] + expected[1], strict=True):
        torch.testing.assert_close(a, e, **tol("float64"))


@pytest.mark.parametrize("chunk_size", [1, 4, 18, None, 100])
@pytest.mark.parametrize("kw", [{}, {"temperature": 0.7}, {"softcap": 3.0}, {"temperature": 1.9, "softcap": 2.0}])
def test_equals_float64_reference_in_value_and_gradients(chunk_size, kw):
    _compare(*_case(), chunk_size, **kw)


@given(n=st.integers(1, 30), chunk=st.integers(1, 35), seed=st.integers(0, 2**16),
       temperature=st.floats(0.2, 3.0), softcap=st.one_of(st.none(), st.floats(0.5, 20.0)))
def test_every_chunk_size_hypothesis(n, chunk, seed, temperature, softcap):
    x, w, b, y = _case(seed, shape=(n,))
    _compare(x, w, b, y, chunk, seed=seed, temperature=temperature, softcap=softcap)


@given(seed=st.integers(0, 2**16), scale=st.floats(0.0, 60.0))
def test_log_probabilities_are_at_most_zero_and_entropy_in_range(seed, scale):
    """verl #2656: fused log-probs came out above 0. Here logp <= 0 and 0 <= H <= log V, at any logit scale."""
    x, w, b, y = _case(seed, dtype=torch.float32)
    logp, h = linear_logprobs(x * scale, w, y, linear_bias=b, return_entropy=True, chunk_size=5)
    assert bool((logp <= 0).all())
    assert bool((h >= 0).all()) and bool((h <= math.log(V) * (1 + tol("float32")["rtol"])).all())


def test_golden_values():
    """Zero logits: every token has log-probability -log V and entropy log V; ignored tokens give 0 and 0."""
    x, w = torch.zeros(3, D), torch.randn(V, D)
    logp, h = linear_logprobs(x, w, torch.tensor([0, 5, -100]), return_entropy=True)
    torch.testing.assert_close(logp, torch.tensor([-math.log(V), -math.log(V), 0.0]), **tol("float32"))
    torch.testing.assert_close(h, torch.tensor([math.log(V), math.log(V), 0.0]), **tol("float32"))
    # two classes, logits (0, log 3) at temperature 1: q = (1/4, 3/4)
    w2 = torch.tensor([[0.0], [math.log(3.0)]], dtype=torch.float64)
    logp, h = linear_logprobs(torch.ones(1, 1, dtype=torch.float64), w2, torch.tensor([1]), return_entropy=True)
    torch.testing.assert_close(logp, torch.tensor([math.log(0.75)], dtype=torch.float64), **tol("float64"))
    expected_h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    torch.testing.assert_close(h, torch.tensor([expected_h], dtype=torch.float64), **tol("float64"))


def test_gradcheck_float64():
    x, w, b, y = _case(3, shape=(5,))
    for kw in ({}, {"temperature": 0.6, "softcap": 2.5}):
        def fn(a, c, d, kw=kw):
            return linear_logprobs(a, c, y, linear_bias=d, return_entropy=True, chunk_size=2, **kw)
        assert torch.autograd.gradcheck(fn, [t.clone().requires_grad_() for t in (x, w, b)])


@pytest.mark.parametrize("which", ["logp", "entropy"])
def test_one_output_used_expanded_upstream(which):
    """Only one output in the loss (the other gets no gradient), with an expanded (stride-0) upstream gradient, as a
    per-sequence advantage broadcast over tokens gives."""
    x, w, b, y = _case(4)
    advantage = torch.randn(2, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).expand(2, 9)
    pick = 0 if which == "logp" else 1

    def run(f):
        leaves = [t.clone().requires_grad_() for t in (x, w, b)]
        out = f(*leaves)[pick]
        return torch.autograd.grad(out, leaves, advantage)

    got = run(lambda a, c, d: linear_logprobs(a, c, y, linear_bias=d, return_entropy=True, chunk_size=7))
    expected = run(lambda a, c, d: reference(a, c, d, y))
    for a, e in zip(got, expected, strict=True):
        torch.testing.assert_close(a, e, **tol("float64"))


def test_no_bias_three_dim_and_ignored_all():
    x, w, _, y = _case(6, shape=(2, 3, 4))
    up = (_upstream(y.shape, 1),)
    got = _grads(lambda a, c: (linear_logprobs(a, c, y, chunk_size=5),), (x, w), up)
    expected = _grads(lambda a, c: (reference(a, c, None, y)[0],), (x, w), up)
    for a, e in zip(got[0] + got[1], expected[0] + expected[1], strict=True):
        torch.testing.assert_close(a, e, **tol("float64"))
    xl = x.clone().requires_grad_()
    out = linear_logprobs(xl, w, torch.full(y.shape, -100), return_entropy=True)
    assert not any(bool(o.any()) for o in out)
    (g,) = torch.autograd.grad(out[0].sum() + out[1].sum(), xl)
    assert not bool(g.any())


def test_low_precision_float32_outputs():
    x, w, b, y = _case(7, dtype=torch.bfloat16)
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    logp, h = linear_logprobs(*leaves[:2], y, linear_bias=leaves[2], return_entropy=True, chunk_size=4)
    assert logp.dtype == h.dtype == torch.float32
    # the logits are the head's output in bfloat16 (as the model's own lm_head gives them); the rest is float32
    z = torch.nn.functional.linear(x, w, b).double()
    ref_logp, ref_h = reference(z, torch.eye(V, dtype=torch.float64), None, y)
    torch.testing.assert_close(logp.double(), ref_logp, **tol("float32"))
    torch.testing.assert_close(h.double(), ref_h, **tol("float32"))
    grads = torch.autograd.grad(logp.sum() + h.sum(), leaves)
    assert [g.dtype for g in grads] == [torch.bfloat16] * 3
    ref_leaves = [t.double().requires_grad_() for t in (x, w, b)]
    ref_logp, ref_h = reference(*ref_leaves, y)
    ref_grads = torch.autograd.grad(ref_logp.sum() + ref_h.sum(), ref_leaves)
    for a, e in zip(grads, ref_grads, strict=True):
        _close_to_scale(a.double(), e, "low-precision-gradient")


def test_forward_does_no_gradient_work_and_backward_recomputes():
    """Forward makes one matmul per chunk (the logits), with or without grad; backward recomputes each chunk's
    logits and makes its two gradient matmuls."""
    x, w, b, y = _case(8)
    chunks = math.ceil(18 / 4)
    outputs = []
    with torch.no_grad():
        assert count_matmuls(lambda: outputs.append(linear_logprobs(x, w, y, linear_bias=b, chunk_size=4))) == chunks
    assert outputs[-1].grad_fn is None
    leaves = [t.clone().requires_grad_() for t in (x, w)]
    assert count_matmuls(lambda: outputs.append(linear_logprobs(*leaves, y, linear_bias=b, chunk_size=4))) == chunks
    assert outputs[-1].grad_fn is not None
    assert count_matmuls(lambda: outputs[-1].sum().backward()) == 3 * chunks


def test_compiles_with_fullgraph_and_equals_eager():
    x, w, b, y = _case(9, dtype=torch.float32)
    up = _upstream(y.shape, 3).float()

    def fn(a, c, d):
        logp, h = linear_logprobs(a, c, y, linear_bias=d, temperature=0.8, softcap=4.0, return_entropy=True,
                                  chunk_size=5)
        return (logp * up).sum() + 0.01 * h.sum()

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")  # fullgraph: a graph break raises
    results = []
    for f in (compiled, fn):
        leaves = [t.clone().requires_grad_() for t in (x, w, b)]
        loss = f(*leaves)
        results.append((loss, *torch.autograd.grad(loss, leaves)))
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected, **tol("float32"))


@pytest.mark.parametrize(("kw", "exc", "message"), [
    ({"temperature": 0.0}, InputValueError, "temperature must be a positive finite number"),
    ({"temperature": float("nan")}, InputValueError, "temperature must be a positive finite number"),
    ({"temperature": "hot"}, InputTypeError, "temperature must be"),
    ({"softcap": -1.0}, InputValueError, "softcap must be None"),
    ({"chunk_size": 0}, InputValueError, "chunk_size must be a positive int"),
    ({"ignore_index": 1.5}, InputTypeError, "ignore_index must be an int"),
    ({"target": torch.tensor([0, 11])}, InputValueError, "class index 11"),
    ({"target": torch.tensor([0.0, 1.0])}, InputTypeError, "target must hold class indices"),
    ({"target": torch.tensor([0, 1, 2])}, InputValueError, "target must have the input's shape"),
    ({"linear_weight": torch.randn(V, D + 1)}, InputValueError, "linear_weight must have shape"),
    ({"linear_weight": torch.randn(V, D, dtype=torch.float64)}, InputTypeError, "must match"),
    ({"linear_bias": torch.randn(V + 1)}, InputValueError, "linear_bias must have shape"),
])
def test_bad_input_is_refused(kw, exc, message):
    args = {"input": torch.randn(2, D), "linear_weight": torch.randn(V, D), "target": torch.tensor([0, 1])} | kw
    with pytest.raises(exc, match=message):
        linear_logprobs(args.pop("input"), args.pop("linear_weight"), args.pop("target"), **args)


# ------------------------------------------------------------------------------------------ TRL, the peer
trl_utils = pytest.importorskip("trl.trainer.utils")
trl_kernels = pytest.importorskip("trl.kernels")


@pytest.mark.parametrize("kw", [{}, {"temperature": 0.7}, {"temperature": 1.3, "softcap": 3.0}])
def test_equals_trl_chunked_logprob_function(kw):
    """TRL's ChunkedLogProbFunction (hidden states -> log-probs and entropy, softcap then temperature) where both
    define them: TRL has no ignore_index (its callers clamp the labels and mask afterwards), so every target is kept."""
    x, w, b, y = _case(10, dtype=torch.float32, shape=(12,))
    y = y.clamp(min=0)
    up = (_upstream(y.shape, 1).float(), _upstream(y.shape, 2).float())
    got = _grads(lambda a, c, d: linear_logprobs(a, c, y, linear_bias=d, return_entropy=True, chunk_size=5, **kw),
                 (x, w, b), up)
    expected = _grads(lambda a, c, d: trl_kernels.ChunkedLogProbFunction.apply(
        a, c, d, y, kw.get("temperature", 1.0), 4, kw.get("softcap"), 1.0, ("entropy",))[:2], (x, w, b), up)
    for a, e in zip(got[0] + got[1], expected[0] + expected[1], strict=True):  # TRL sums in float32 online
        _close_to_scale(a, e, "float32")


def test_equals_trl_selective_log_softmax_and_pins_its_detached_entropy():
    """TRL's logits-level helpers: selective_log_softmax equals our log-probs in value and gradient; with
    entropy_requires_grad=False its entropy carries no gradient, where ours always does."""
    x, w, b, y = _case(11, dtype=torch.float32, shape=(10,))
    y = y.clamp(min=0)
    x = x.requires_grad_()
    logits = x @ w.T + b
    trl_logp, trl_h = trl_utils.selective_log_softmax_and_entropy(logits, y, entropy_requires_grad=False,
                                                                  temperature=0.8)
    logp, h = linear_logprobs(x, w, y, linear_bias=b, temperature=0.8, return_entropy=True)
    torch.testing.assert_close(logp, trl_logp, **tol("float32"))
    torch.testing.assert_close(h, trl_h, **tol("float32"))
    torch.testing.assert_close(torch.autograd.grad(logp.sum(), x, retain_graph=True)[0],
                               torch.autograd.grad(trl_logp.sum(), x)[0], **tol("float32"))
    assert not trl_h.requires_grad and h.requires_grad
    assert bool(torch.autograd.grad(h.sum(), x)[0].abs().sum() > 0)
