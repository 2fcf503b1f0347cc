"""The Triton kernels (``crossentropy.kernels.triton``) equal the float64 reference on the option grid, in value,
gradient and stats, for float32, float16 and bfloat16 logits: ``rules.rows.softmax_rows`` (softmax rows and
vocabulary shards), a float64 ``log_softmax`` (log-prob rows) and ``rules.divergence.dense_rows`` (distillation).

Without CUDA they run in Triton's interpreter (``tests/conftest.py`` sets ``TRITON_INTERPRET=1`` before anything
imports Triton), on small shapes: blocks of 64 classes, so that every row spans several blocks and
``V = 63, 64, 65`` sit on the block boundary. Per-row values are computed in float32 and compared at the float32
tier; gradients are stored in the logits' dtype and compared at that dtype's tier.
"""

import math
import os
from dataclasses import replace

import pytest
from conftest import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
if not (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"):
    pytest.skip("no CUDA device, and Triton was imported without TRITON_INTERPRET=1", allow_module_level=True)

from crossentropy.kernels.triton import linear as tl_linear  # noqa: E402
from crossentropy.kernels.triton import rows as tr  # noqa: E402
from crossentropy.rules.divergence import dense_rows  # noqa: E402
from crossentropy.rules.errors import InputValueError  # noqa: E402
from crossentropy.rules.options import DistillationOptions, SoftmaxOptions  # noqa: E402
from crossentropy.rules.rows import softmax_rows  # noqa: E402
from crossentropy.rules.targets import coefficients  # noqa: E402
from crossentropy.torch import linear_cross_entropy  # noqa: E402
from crossentropy.torch._xp import TORCH  # noqa: E402

BLOCK = 64
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
INF = math.inf
# masked products compute a * x before discarding it, and shifts of huge logits overflow: the interpreter's NumPy
# warns about both
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:triton.runtime.interpreter")


def _close(actual, expected, key, msg=""):
    """``assert_close`` of tensors of any dtype and device (bfloat16 via float64)."""
    assert_close(actual.detach().double().cpu(), expected.detach().double().cpu(), key, msg)


def _grad_key(dtype):
    return "float32" if dtype == torch.float32 else dtype


def _logits(n, vocab, dtype, seed, scale=3.0, special=False):
    """Random logits; ``special`` puts the limit rule's rows in (two ``+inf``, some ``-inf``, all ``-inf``) and a
    NaN in a fourth row (it propagates)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, vocab, generator=g, dtype=torch.float64) * scale
    if special and n >= 3 and vocab >= 3:
        x[0, [1, vocab - 1]] = INF
        x[1, ::2] = -INF
        x[2] = -INF
    if special and n >= 4 and vocab >= 3:
        x[3, vocab - 2] = math.nan
    return x.to(dtype).to(DEVICE)


def _coefs(x, target, *, weight, sample, smoothing, dtype):
    return coefficients(TORCH, target, x.shape[-1], SoftmaxOptions(label_smoothing=smoothing), w=weight, s=sample,
                        dtype=dtype)


def _case(n, vocab, dtype, seed, *, probs, weighted, sampled, smoothing, special=False):
    g = torch.Generator().manual_seed(seed + 1)
    x = _logits(n, vocab, dtype, seed, special=special)
    if probs:
        target = torch.softmax(torch.randn(n, vocab, generator=g, dtype=torch.float64), -1)
        target = target.to(dtype if dtype != torch.float64 else torch.float64)
    else:
        target = torch.randint(0, vocab, (n,), generator=g)
        target[n // 2] = -100
    weight = torch.rand(vocab, generator=g, dtype=torch.float64) if weighted else None
    if weight is not None and vocab > 2:
        weight[vocab // 3] = 0.0
    sample = torch.rand(n, generator=g, dtype=torch.float64) + 0.5 if sampled else None
    row_scale = torch.rand(n, generator=g, dtype=torch.float64) + 0.5
    to = {"device": DEVICE}
    return (x, target.to(**to), None if weight is None else weight.to(**to),
            None if sample is None else sample.to(**to), smoothing, row_scale.to(**to))


def _check_rows(x, target, weight, sample, smoothing, row_scale, *, z_loss, softcap, stats):
    cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
    coef = _coefs(x, target, weight=weight, sample=sample, smoothing=smoothing, dtype=cdt)
    got = tr.softmax_rows(x, coef, z_loss=z_loss, softcap=softcap, dtype=cdt, row_scale=row_scale.to(cdt),
                          stats=stats, block=BLOCK)
    ref_coef = coef.astype(torch.float64)  # the same coefficients (float16 targets give float16 row masses)
    ref = softmax_rows(TORCH, x.double(), ref_coef, z_loss=z_loss, softcap=softcap, row_scale=row_scale,
                       stats=stats)
    assert got.grad.dtype == x.dtype and got.loss.dtype == cdt
    _close(got.loss, ref.loss, "float32", "loss")
    _close(got.lse, ref.lse, "float32", "lse")
    _close(got.grad, ref.grad, _grad_key(x.dtype), "grad")
    if stats:
        _close(got.entropy, ref.entropy, "float32", "entropy")
        assert torch.equal(got.predicted, ref.predicted)
        if ref.p_target is not None:
            _close(got.p_target, ref.p_target, "float32", "p_target")


@pytest.mark.parametrize("vocab", [BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 5])
@pytest.mark.parametrize("dtype", DTYPES)
def test_block_boundaries_every_option(vocab, dtype):
    """Index targets with class weights (one 0), sample weights, smoothing, an ignored row, z-loss, softcap and
    stats at once, and with the infinite rows of the limit rule."""
    case = _case(4, vocab, dtype, seed=vocab, probs=False, weighted=True, sampled=True, smoothing=0.1,
                 special=True)
    _check_rows(*case, z_loss=1e-2, softcap=None, stats=True)
    case = _case(3, vocab, dtype, seed=vocab + 1, probs=False, weighted=True, sampled=True, smoothing=0.1)
    _check_rows(*case, z_loss=1e-2, softcap=8.0, stats=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_probability_targets(dtype):
    case = _case(4, 2 * BLOCK + 3, dtype, seed=3, probs=True, weighted=True, sampled=True, smoothing=0.2,
                 special=True)
    _check_rows(*case, z_loss=1e-2, softcap=None, stats=True)
    case = _case(3, BLOCK + 1, dtype, seed=4, probs=True, weighted=False, sampled=False, smoothing=0.0)
    _check_rows(*case, z_loss=0.0, softcap=5.0, stats=False)


@settings(max_examples=12)
@given(n=st.integers(1, 4), vocab=st.integers(1, 3 * BLOCK + 2), seed=st.integers(0, 2**16),
       dtype=st.sampled_from(DTYPES), probs=st.booleans(), weighted=st.booleans(), sampled=st.booleans(),
       smoothing=st.sampled_from([0.0, 0.05]), z_loss=st.sampled_from([0.0, 1e-3]),
       softcap=st.sampled_from([None, 10.0]), stats=st.booleans(), special=st.booleans())
def test_option_grid(n, vocab, seed, dtype, probs, weighted, sampled, smoothing, z_loss, softcap, stats, special):
    case = _case(n, vocab, dtype, seed, probs=probs, weighted=weighted, sampled=sampled, smoothing=smoothing,
                 special=special)
    _check_rows(*case, z_loss=z_loss, softcap=softcap, stats=stats and not probs)


def test_all_ignored_rows_and_gradient_in_place():
    """Every row ignored: loss 0 and gradient 0; ``out=x`` writes the gradient over the logits."""
    x = _logits(3, BLOCK + 1, torch.float32, 7)
    target = torch.full((3,), -100, device=DEVICE)
    coef = _coefs(x, target, weight=None, sample=None, smoothing=0.0, dtype=torch.float32)
    r = tr.softmax_rows(x, coef, z_loss=0.0, softcap=None, dtype=torch.float32,
                        row_scale=torch.ones(3, device=DEVICE), stats=True, out=x, block=BLOCK)
    assert r.grad is x
    _close(r.loss, torch.zeros(3), "exact")
    _close(x, torch.zeros(3, BLOCK + 1), "exact")
    _close(r.p_target, torch.zeros(3), "exact")


def test_float64_logits_compute_in_float64():
    case = _case(3, BLOCK + 1, torch.float64, 9, probs=False, weighted=True, sampled=False, smoothing=0.1,
                 special=True)
    x, target, weight, sample, smoothing, row_scale = case
    coef = _coefs(x, target, weight=weight, sample=sample, smoothing=smoothing, dtype=torch.float64)
    got = tr.softmax_rows(x, coef, z_loss=0.0, softcap=None, dtype=torch.float64, row_scale=row_scale,
                          block=BLOCK)
    ref = softmax_rows(TORCH, x.clone(), coef, z_loss=0.0, softcap=None, row_scale=row_scale)
    _close(got.loss, ref.loss, "float64-reference")
    _close(got.grad, ref.grad, "float64-reference")


@pytest.mark.parametrize("dtype", DTYPES)
def test_vocab_parallel_partials_combine_to_the_whole_row(dtype):
    """Two shards' partials, put on the global max and summed, give the single-shard loss and lse; each
    shard's gradient pass from the combined max and sum gives its slice of the whole gradient."""
    vocab, cut, n = 2 * BLOCK + 7, BLOCK + 3, 4
    x, target, weight, _, smoothing, row_scale = _case(n, vocab, dtype, 11, probs=False, weighted=False,
                                                       sampled=False, smoothing=0.1, special=True)
    target[1] = vocab - 1  # a target on the second shard
    coef = _coefs(x, target, weight=None, sample=None, smoothing=smoothing, dtype=torch.float32)
    ref = softmax_rows(TORCH, x.double(), _coefs(x, target, weight=None, sample=None, smoothing=smoothing,
                                                 dtype=torch.float64), z_loss=1e-2, softcap=None,
                       row_scale=row_scale)
    shards = []
    for lo, hi in ((0, cut), (cut, vocab)):
        mine = (target >= lo) & (target < hi)
        shard_coef = replace(coef, n_classes=hi - lo, y=torch.where(mine, target - lo, 0),
                             a_y=torch.where(mine, coef.a_y, 0.0))
        shards.append((x[:, lo:hi], shard_coef, tr.shard_partials(x[:, lo:hi], shard_coef, softcap=None,
                                                                  block=BLOCK)))
    m = torch.maximum(shards[0][2].max, shards[1][2].max)
    total, linear = (sum(parts) for parts in zip(*(tr.combine_partials(p, m) for _, _, p in shards), strict=True))
    loss, lse = tr.partial_rows(coef, m, total, linear, 1e-2)
    _close(loss, ref.loss, "float32", "loss")
    _close(lse, ref.lse, "float32", "lse")
    grad = torch.cat([tr.shard_grad(xs, c, m, total, z_loss=1e-2, softcap=None, row_scale=row_scale.float(),
                                    block=BLOCK) for xs, c, _ in shards], dim=1)
    _close(grad, ref.grad, _grad_key(dtype), "grad")


def _logprob_reference(x, target, temperature, softcap):
    """Float64 ``log q[target]`` and entropy of ``softmax(softcap(x) / T)``, 0 on ignored rows."""
    z = x.double() if softcap is None else torch.tanh(x.double() / softcap) * softcap
    logq = torch.log_softmax(z / temperature, -1)
    keep = target != -100
    logp = torch.where(keep, logq.gather(-1, torch.where(keep, target, 0)[:, None])[:, 0], 0.0)
    q = logq.exp()
    entropy = torch.where(keep, -torch.where(q > 0, q * logq, 0.0).sum(-1), 0.0)
    return logp, entropy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("temperature", "softcap"), [(1.0, None), (0.7, 6.0)])
def test_logprob_rows(dtype, temperature, softcap):
    """Forward: ``log q[y]`` and entropy against a float64 ``log_softmax``; backward against float64 autograd of
    ``sum(g_logp logp + g_ent H)``."""
    n, vocab = 4, 2 * BLOCK + 1
    x = _logits(n, vocab, dtype, 21)
    target = torch.tensor([0, vocab - 1, -100, BLOCK], device=DEVICE)
    got = tr.logprob_rows(x, target, temperature=temperature, softcap=softcap, block=BLOCK)
    leaf = x.double().requires_grad_()
    logp, entropy = _logprob_reference(leaf, target, temperature, softcap)
    _close(got.logp, logp.detach().cpu(), "float32", "logp")
    _close(got.entropy, entropy.detach().cpu(), "float32", "entropy")
    g = torch.Generator().manual_seed(5)
    g_logp, g_ent = torch.randn(n, generator=g, dtype=torch.float64), torch.randn(n, generator=g,
                                                                                  dtype=torch.float64)
    (logp * g_logp + entropy * g_ent).sum().backward()
    grad = tr.logprob_rows_backward(x, target, got, g_logp, g_ent, temperature=temperature, softcap=softcap,
                                    block=BLOCK)
    assert grad.dtype == dtype
    _close(grad, leaf.grad, _grad_key(dtype), "grad")


def test_logprob_rows_infinite_logits():
    """Two ``+inf`` logits share the mass (log q = log 1/2 there); an all ``-inf`` row is uniform."""
    x = torch.zeros(2, BLOCK + 1, device=DEVICE)
    x[0, [0, BLOCK]] = INF
    x[1] = -INF
    got = tr.logprob_rows(x, torch.tensor([BLOCK, 3], device=DEVICE), block=BLOCK)
    _close(got.logp, torch.tensor([-math.log(2), -math.log(BLOCK + 1)]), "float32")
    _close(got.entropy, torch.tensor([math.log(2), math.log(BLOCK + 1)]), "float32")


@pytest.mark.parametrize("divergence", ["forward_kl", "reverse_kl", "jsd"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_distill_rows(divergence, dtype):
    """Values and student gradients of ``rules.divergence.dense_rows`` (float64), ignored rows 0, with a ``-inf``
    student logit and a teacher row with an infinite logit."""
    n, vocab, tau, beta = 4, BLOCK + 1, 2.0, 0.3
    zs, zt = _logits(n, vocab, dtype, 31), _logits(n, vocab, dtype, 32)
    zs[0, 3] = -INF
    zt[0, 3] = -INF
    zt[3, 5] = INF
    kept = torch.tensor([True, True, False, True], device=DEVICE)
    row_scale = torch.tensor([0.5, 1.0, 2.0, 1.5], device=DEVICE, dtype=torch.float64)
    values, grad = tr.distill_rows(zs, zt, divergence=divergence, beta=beta, temperature=tau, kept=kept,
                                   row_scale=row_scale, with_grad=True, block=BLOCK)
    ref_v, ref_g = dense_rows(TORCH, zs.double(), zt.double(), DistillationOptions(divergence, beta, tau), kept,
                              row_scale, with_grad=True)
    _close(values, ref_v, "float32", "values")
    _close(grad, ref_g, _grad_key(dtype), "grad")
    only, none = tr.distill_rows(zs, zt, divergence=divergence, beta=beta, temperature=tau, with_grad=False,
                               block=BLOCK)
    assert none is None
    _close(only[kept], values[kept], "exact")


def test_unknown_divergence_raises_and_unusable_tensor_has_a_reason(monkeypatch):
    """A bad divergence name is an InputValueError; integer logits and a CPU tensor without the interpreter have a
    reason not to run (which the dispatch point turns into an InputValueError naming impl)."""
    x = torch.zeros(1, 3, dtype=torch.float32)
    with pytest.raises(InputValueError, match="divergence"):
        tr.distill_rows(x, x, divergence="kl", beta=0.5, temperature=1.0, with_grad=False)
    assert tr.reason(torch.zeros(1, 3, dtype=torch.int64)).endswith("not torch.int64")
    assert tr.reason(x.to(DEVICE)) is None
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert "TRITON_INTERPRET is not set" in tr.reason(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_linear_rows_equal_linear_cross_entropy(dtype):
    """The chunked Triton loop (chunks of 2 rows, a bias, class weights, smoothing, z-loss, softcap, an ignored
    row) against float64 autograd of ``crossentropy.torch.linear_cross_entropy(..., reduction="sum")``."""
    g = torch.Generator().manual_seed(41)
    n, hidden, vocab = 5, 4, BLOCK + 6
    x, w = torch.randn(n, hidden, generator=g, dtype=torch.float64), torch.randn(vocab, hidden, generator=g,
                                                                                 dtype=torch.float64)
    b, weight = torch.randn(vocab, generator=g, dtype=torch.float64), torch.rand(vocab, generator=g,
                                                                                 dtype=torch.float64)
    y = torch.randint(0, vocab, (n,), generator=g)
    y[2] = -100
    xd, wd, bd = (t.to(dtype).to(DEVICE) for t in (x, w, b))
    yd, weight_d = y.to(DEVICE), weight.to(DEVICE)
    options = {"z_loss": 1e-2, "softcap": 20.0}

    def coef_of(start, stop):
        return coefficients(TORCH, yd[start:stop], vocab, SoftmaxOptions(label_smoothing=0.1), w=weight_d,
                            dtype=torch.float32)

    got = tl_linear.linear_rows(xd, wd, bd, coef_of, torch.ones(n, device=DEVICE), chunk_size=2, block=BLOCK,
                                **options)
    leaves = [t.to(dtype).double().requires_grad_() for t in (x, w, b)]
    loss = linear_cross_entropy(leaves[0], leaves[1], y, linear_bias=leaves[2], weight=weight, reduction="sum",
                                label_smoothing=0.1, **options)
    loss.backward()
    # the logits and their gradient are rounded to the inputs' dtype (as in every bfloat16 linear layer)
    key = dtype
    _close(got.loss.sum(), loss, key, "loss")
    for name, mine, leaf in zip(("x", "w", "b"), (got.grad_x, got.grad_w, got.grad_b), leaves, strict=True):
        _close(mine, leaf.grad, key, name)
    assert tl_linear.chunk_rows(n, vocab, dtype, torch.device("cpu")) == n


def test_bench_gpu_dry_run(capsys):
    """benchmarks/bench_gpu.py runs its code paths on tiny shapes (here in the interpreter), and without a CUDA
    device and ``--dry-run`` it only says so."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "benchmarks" / "bench_gpu.py"
    spec = importlib.util.spec_from_file_location("bench_gpu", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--dry-run", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    for name in ("ours (Triton rows)", "F.cross_entropy", "floor: copy of the logits", "ours (chunked, Triton rows)",
                 "torch F.linear_cross_entropy (chunked)", "of copy bandwidth", "ours (cross_entropy, impl='triton')",
                 "ours (linear_cross_entropy, impl='triton')"):
        assert name in out
    if not torch.cuda.is_available():
        assert bench.main([]) == 0
        assert "no CUDA device is present" in capsys.readouterr().out


def test_adapters_import_without_triton():
    """Importing the adapters imports no Triton (it is imported on the first launch), so the library imports
    where Triton is not installed."""
    import subprocess
    import sys

    code = ("import sys, crossentropy.kernels.triton.rows, crossentropy.kernels.triton.linear; "
            "print(sorted(m for m in sys.modules if m == 'triton' or m.startswith('triton.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip() == "[]"


_COMPILE = """
import triton, triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from crossentropy.kernels.triton import jit

def build(fn, ints, i64, i8, half, consts):
    names = fn.arg_names
    def kind(n):
        return "i32" if n in ints else "*i64" if n in i64 else "*i8" if n in i8 else "*bf16" if n in half else "*fp32"
    sig = {n: "constexpr" if n in consts else kind(n) for n in names}
    src = ASTSource(fn=fn, signature=sig, constexprs={(names.index(k),): v for k, v in consts.items()})
    triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 8})

flags = dict(ACC=tl.float32, HAS_W=True, HAS_SOFTCAP=True, HAS_Z_LOSS=True, GRAD=True, BLOCK=4096)
for index, stats, forward in ((True, True, True), (False, False, True), (True, False, False)):
    build(jit.softmax_rows_kernel, ("stride_x", "stride_g", "stride_p", "V"), ("Y", "ARGMAX"), (), ("X", "G", "P"),
          dict(flags, INDEX=index, HAS_U=index, STATS=stats, FORWARD=forward))
build(jit.logprob_backward_kernel, ("stride_x", "stride_g", "V"), ("Y",), ("KEEP",), ("X", "G"),
      dict(ACC=tl.float32, HAS_SOFTCAP=True, BLOCK=1024))
for divergence in (0, 1, 2):
    build(jit.distill_rows_kernel, ("stride_s", "stride_t", "stride_g", "V"), (), ("KEEP",), ("ZS", "ZT", "G"),
          dict(ACC=tl.float32, DIVERGENCE=divergence, GRAD=True, BLOCK=1024))
print("compiled")
"""


def test_kernels_compile_for_a_gpu_target():
    """The interpreter runs the kernels' Python; this compiles them (no device needed) for an sm_90 target, with
    bfloat16 logits and every option, the way a CUDA launch would: what the interpreter accepts but the compiler
    refuses (non-constexpr globals, loop-carried types) fails here."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", _COMPILE], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "compiled", out.stderr[-3000:]


def test_no_rows():
    """Zero rows give empty values and gradients (no launch)."""
    x = torch.empty(0, 5, device=DEVICE)
    y = torch.empty(0, dtype=torch.long, device=DEVICE)
    coef = _coefs(x, y, weight=None, sample=None, smoothing=0.0, dtype=torch.float32)
    r = tr.softmax_rows(x, coef, z_loss=0.0, softcap=None, dtype=torch.float32, row_scale=torch.ones(0, device=DEVICE),
                        stats=True)
    assert r.loss.shape == (0,) and r.grad.shape == (0, 5) and r.predicted.shape == (0,)
    assert tr.distill_rows(x, x, divergence="jsd", beta=0.5, temperature=1.0, with_grad=True)[1].shape == (0, 5)
    forward = tr.logprob_rows(x, y)
    assert tr.logprob_rows_backward(x, y, forward, torch.ones(0), torch.ones(0)).shape == (0, 5)


def test_extreme_finite_logits_and_nan_in_an_ignored_row():
    """Against the rules on the same float32 values: logits near +-3e38, whose shifts overflow to ``-inf`` (the
    entropy sum clamps them, as the rules do, instead of making ``0 * inf = NaN``), and a NaN logit in an ignored
    row (the row max is NaN, so the row's gradient is NaN, as in the rules and in torch)."""
    x = torch.randn(3, BLOCK + 3, generator=torch.Generator().manual_seed(51))
    x[0, ::3] = 3.0e38
    x[0, 1::3] = -3.0e38
    x[1, 5] = math.nan
    x = x.to(DEVICE)
    target = torch.tensor([2, -100, 4], device=DEVICE)
    coef = _coefs(x, target, weight=None, sample=None, smoothing=0.1, dtype=torch.float32)
    scale = torch.ones(3, device=DEVICE)
    got = tr.softmax_rows(x, coef, z_loss=0.0, softcap=None, dtype=torch.float32, row_scale=scale, stats=True,
                          block=BLOCK)
    ref = softmax_rows(TORCH, x.clone(), coef, z_loss=0.0, softcap=None, row_scale=scale, stats=True)
    for name in ("loss", "lse", "grad", "entropy", "p_target"):
        _close(getattr(got, name), getattr(ref, name), "float32", name)
    assert torch.equal(got.predicted, ref.predicted)
    assert torch.isnan(got.grad[1]).all() and got.loss[1] == 0
