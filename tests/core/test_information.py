"""crossentropy.core.information: golden values, SciPy agreement and pinned differences, properties, errors."""

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
from conftest import assert_close, tol
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import crossentropy as ce

P = [1, 0, 0, 0]
Q = [0.775, 0.116, 0.039, 0.070]


@st.composite
def distributions(draw, k=None, positive=False):
    k = k or draw(st.integers(1, 8))
    lo = 1e-3 if positive else 0.0
    w = draw(arrays(np.float64, k, elements=st.floats(lo, 1.0)))
    if w.sum() == 0:
        w[0] = 1.0
    return w / w.sum()


@st.composite
def pairs(draw, positive_q=False):
    k = draw(st.integers(1, 8))
    return draw(distributions(k)), draw(distributions(k, positive=positive_q))


def test_worked_example_in_bits():
    assert round(float(ce.cross_entropy(P, Q, base=2)), 4) == 0.3677
    assert_close(ce.cross_entropy(P, Q, base=2), -np.log2(0.775))
    assert float(ce.entropy(P)) == 0.0
    assert_close(ce.kl_divergence(P, Q), -np.log(0.775))


def test_golden_values():
    assert_close(ce.entropy([0.5, 0.5], base=2), 1.0)
    assert_close(ce.entropy([0.25] * 4), np.log(4))
    assert_close(ce.js_divergence([1, 0], [0, 1]), np.log(2))
    assert_close(ce.perplexity([0.25] * 4), 4.0)
    assert_close(ce.perplexity(P, Q), 1 / 0.775)
    assert float(ce.cross_entropy([0.5, 0.5], [1.0, 0.0])) == np.inf  # support mismatch
    assert float(ce.kl_divergence([0.5, 0.5], [1.0, 0.0])) == np.inf
    assert_close(float(ce.kl_divergence([1.0, 0.0], [0.5, 0.5])), np.log(2))


@given(pairs(positive_q=True), st.sampled_from([None, 2.0, 10.0]))
def test_agrees_with_scipy(pq, base):
    p, q = pq
    assert_close(ce.entropy(p, base=base), scipy.stats.entropy(p, base=base), "float64-reference")
    assert_close(ce.kl_divergence(p, q, base=base), scipy.stats.entropy(p, q, base=base), "float64-reference")
    assert_close(ce.cross_entropy(p, q), np.sum(scipy.special.xlogy(p, q)) * -1, "float64-reference")
    js = scipy.spatial.distance.jensenshannon(p, q, base=base) ** 2
    assert_close(ce.js_divergence(p, q, base=base), js, "float64-reference")


def test_pinned_differences_from_scipy():
    counts = np.array([1.0, 3.0])
    # SciPy's entropy normalises silently; here it is an error unless normalize=True.
    assert_close(scipy.stats.entropy(counts), ce.entropy(counts, normalize=True))
    with pytest.raises(ValueError, match="must sum to 1"):
        ce.entropy(counts)
    # SciPy's entropy works along axis 0; this library along -1, as NumPy and PyTorch reductions over classes.
    rows = np.array([[0.5, 0.5], [1.0, 0.0]])
    assert_close(ce.entropy(rows), scipy.stats.entropy(rows, axis=1))
    assert_close(ce.entropy(rows, axis=0, normalize=True), scipy.stats.entropy(rows))
    # scipy.special.kl_div adds q - p per element: its sum is not KL for unnormalised inputs.
    p, q = np.array([0.2, 0.3]), np.array([0.5, 0.4])
    assert not np.isclose(scipy.special.kl_div(p, q).sum(), scipy.special.rel_entr(p, q).sum(), **tol("disagreement"))
    assert_close(ce.kl_divergence(p, q, normalize=True), scipy.stats.entropy(p, q))
    # jensenshannon is a distance: the square root of this divergence.
    assert_close(scipy.spatial.distance.jensenshannon([1, 0], [0, 1]) ** 2, ce.js_divergence([1, 0], [0, 1]))


@given(pairs())
def test_identity_cross_entropy_is_entropy_plus_kl(pq):
    p, q = pq
    h_pq = ce.cross_entropy(p, q)
    if np.isfinite(h_pq):
        assert_close(h_pq, ce.entropy(p) + ce.kl_divergence(p, q), "float64-reference")
    else:
        assert ce.kl_divergence(p, q) == np.inf


@given(pairs())
def test_properties(pq):
    p, q = pq
    assert ce.kl_divergence(p, p) == 0.0
    assert ce.kl_divergence(p, q) >= 0
    assert ce.entropy(p) >= 0
    assert ce.cross_entropy(p, q) >= ce.entropy(p) - 1e-12
    js = ce.js_divergence(p, q)
    assert_close(js, ce.js_divergence(q, p))
    assert 0 <= js <= np.log(2)
    assert 0 <= ce.js_divergence(p, q, base=2) <= 1.0


def test_batched_along_axis():
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    assert ce.entropy(p).shape == (2,)
    assert_close(ce.entropy(p.T, axis=0), ce.entropy(p))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtypes(dtype):
    p = np.array([0.25, 0.75], dtype=dtype)
    h = ce.entropy(p)
    assert h.dtype == (np.float32 if dtype == np.float16 else dtype)
    assert_close(h, scipy.stats.entropy([0.25, 0.75]), dtype)


def test_extreme_but_valid_distributions():
    tiny = np.array([1 - 1e-300, 1e-300])
    assert np.isfinite(ce.entropy(tiny))
    assert np.isfinite(ce.kl_divergence(tiny, tiny[::-1]))
    assert_close(ce.kl_divergence(tiny, tiny[::-1]), (1 - 1e-300) * np.log((1 - 1e-300) / 1e-300), "float64")


def test_gaussian_closed_forms():
    assert_close(ce.gaussian_entropy(2.0), scipy.stats.norm(0, np.sqrt(2.0)).entropy())
    mp, vp, mq, vq = 0.3, 0.5, -1.0, 2.0
    # H(p, q) = -int p log q, numerically
    p, q = scipy.stats.norm(mp, np.sqrt(vp)), scipy.stats.norm(mq, np.sqrt(vq))
    numeric, _ = scipy.integrate.quad(lambda x: -p.pdf(x) * q.logpdf(x), -30, 30)
    assert_close(ce.gaussian_cross_entropy(mp, vp, mq, vq), numeric, "float64-reference")
    assert_close(ce.gaussian_cross_entropy(mp, vp, mq, vq),
                 ce.gaussian_entropy(vp) + ce.gaussian_kl(mp, vp, mq, vq))
    assert ce.gaussian_kl(mp, vp, mp, vp) == 0.0
    assert_close(ce.gaussian_entropy(1.0, base=2), 0.5 * np.log2(2 * np.pi * np.e))


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"p must sum to 1 along axis 0 .* sums to 0\.9\. Pass normalize=True"):
        ce.entropy([0.5, 0.4])
    with pytest.raises(ValueError, match=r"q must sum to 1"):
        ce.cross_entropy([0.5, 0.5], [0.5, 0.6])
    with pytest.raises(ValueError, match=r"p must be non-negative, but its smallest value is -0\.5"):
        ce.entropy([1.5, -0.5])
    with pytest.raises(ValueError, match=r"`p` and `q` must have the same shape, or shapes that broadcast .* but got "
                                         r"\(2,\) and \(3,\)"):
        ce.kl_divergence([0.5, 0.5], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match=r"base must be a positive number other than 1"):
        ce.entropy([1.0], base=1)
    with pytest.raises(ValueError, match=r"base must be a positive finite number, but got -2"):
        ce.entropy([1.0], base=-2)
    with pytest.raises(ValueError, match=r"p must be a distribution with at least one dimension"):
        ce.entropy(1.0)
    with pytest.raises(ValueError, match=r"sums to 0, which cannot be normalized"):
        ce.entropy([0.0, 0.0], normalize=True)
    with pytest.raises(ValueError, match=r"var must be a positive, finite variance"):
        ce.gaussian_entropy(-1.0)
    with pytest.raises(ValueError, match=r"var_q must be a positive, finite variance"):
        ce.gaussian_kl(0.0, 1.0, 0.0, 0.0)


def test_import_without_optional_dependencies(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'torch', 'sklearn', 'matplotlib', 'pandas', 'scipy', 'rich'}:\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import crossentropy as ce\n"
        "print(round(float(ce.cross_entropy([1,0,0,0], [0.775,0.116,0.039,0.070], base=2)), 4))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0.3677"


# ------------------------------------------------------------------ issue 21.9: p and q broadcast, as SciPy's
@pytest.mark.parametrize(("pshape", "qshape"), [((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 4), (3, 4)), ((3, 4), (1, 4))])
def test_pair_measures_broadcast_as_scipy(pshape, qshape):
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=pshape[:-1]) if len(pshape) > 1 else rng.dirichlet(np.ones(4))
    q = rng.dirichlet(np.ones(4), size=qshape[:-1]) if len(qshape) > 1 else rng.dirichlet(np.ones(4))
    assert_close(ce.kl_divergence(p, q), scipy.stats.entropy(p, q, axis=-1), "float64-reference")
    assert_close(ce.cross_entropy(p, q), scipy.stats.entropy(p, axis=-1) + scipy.stats.entropy(p, q, axis=-1),
                 "float64-reference")
    full = np.broadcast_shapes(p.shape, q.shape)
    assert_close(ce.js_divergence(p, q), ce.js_divergence(np.broadcast_to(p, full), np.broadcast_to(q, full)),
                 "exact")
