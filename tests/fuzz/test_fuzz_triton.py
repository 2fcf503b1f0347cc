"""Fuzz area: the Triton row kernel (``crossentropy.kernels.triton.rows.softmax_rows``, in Triton's interpreter on
CPU) against ``rules.rows.softmax_rows`` run on the same float32 values, on rows sprinkled with the extremes of
float32 (max, tiny, subnormal, +-inf, NaN), with random options.

Invariant: loss, lse, gradient, entropy, p_target and argmax agree, at the float32 tier where finite, and exactly in
their infinities and NaNs. Classes found here: shifted logits that overflow (``z - m = -inf`` times ``e = 0``) in
the entropy sum.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from conftest import assert_close
from fuzzkit import area, count, extremes, moderate, rng_for, sprinkle

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
if not (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"):
    pytest.skip("no CUDA device, and Triton was imported without TRITON_INTERPRET=1", allow_module_level=True)

from crossentropy.kernels.triton import rows  # noqa: E402
from crossentropy.rules.options import SoftmaxOptions  # noqa: E402
from crossentropy.rules.rows import softmax_rows  # noqa: E402
from crossentropy.rules.targets import coefficients  # noqa: E402
from crossentropy.torch._xp import TORCH  # noqa: E402

BLOCK = 32


def _case(rng):
    n, vocab = int(rng.integers(1, 4)), int(rng.integers(1, 3 * BLOCK))
    x = sprinkle(rng, moderate(rng, (n, vocab), np.float32, scale=float(rng.choice([3.0, 1e3, 1e30]))),
                 extremes(np.float32), rate=float(rng.choice([0.0, 0.05, 0.3])))
    target = rng.integers(0, vocab, n)
    target[rng.random(n) < 0.2] = -100
    options = {"w": torch.from_numpy(rng.random(vocab)) if rng.random() < 0.3 else None,
               "options": SoftmaxOptions(label_smoothing=float(rng.choice([0.0, 0.1])), ignore_index=-100)}
    run = {"z_loss": float(rng.choice([0.0, 1e-3])), "softcap": rng.choice([None, 30.0]),
           "stats": bool(rng.random() < 0.5)}
    return torch.from_numpy(x), torch.from_numpy(target), options, run


def test_fuzz_triton_rows():
    a = area("triton rows")
    since = len(a.failures)
    rng = rng_for("triton rows")
    for i in range(count(0.02, least=4, most=400)):
        x, target, options, run = _case(rng)
        label = f"case {i}: x={x.tolist()}, target={target.tolist()}, {options}, {run}"
        a.cases += 1
        coef = coefficients(TORCH, target, x.shape[-1], options["options"], w=options["w"], dtype=torch.float32)
        scale = torch.ones(x.shape[0])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                got = rows.softmax_rows(x, coef, dtype=torch.float32, row_scale=scale, block=BLOCK, **run)
                ref = softmax_rows(TORCH, x.clone(), coef, row_scale=scale, **run)
            for name in ("loss", "lse", "grad", "entropy", "p_target"):
                if getattr(ref, name) is not None:
                    assert_close(getattr(got, name), getattr(ref, name), "float32", name)
            if run["stats"]:
                assert torch.equal(got.predicted, ref.predicted), "argmax"
        except AssertionError as exc:
            a.fail(label, str(exc))
    a.check(since)
