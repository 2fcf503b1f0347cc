"""Fuzz area: causal_lm_loss (crossentropy.integrations.transformers) against transformers' ForCausalLMLoss on
random shapes, ignore rates (all-ignored micro-batches included), token counts (None, a number, a tensor, 0),
given shift_labels, extreme logits and bad arguments.

Invariants: only InputError escapes, and a bad argument is named; with finite logits the value and the logits'
gradient equal ForCausalLMLoss's (float32, where it computes) except where nothing is counted (no valid target, or
num_items_in_batch = 0): there ours is 0 with a zero gradient and transformers' is NaN or inf (the documented
difference); with infinite or NaN logits, a NaN comes only from NaN input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tol
from fuzzkit import area, call, count, extremes, rng_for, sprinkle

transformers = pytest.importorskip("transformers")
from transformers.loss.loss_utils import ForCausalLMLoss  # noqa: E402

from crossentropy.integrations.transformers import causal_lm_loss  # noqa: E402

BAD = {"labels": lambda y: y.float(), "shift_labels": lambda y: y[..., :-1].contiguous(),
       "num_items_in_batch": lambda y: -3}


def _case(rng, mode):
    b, t, v = (int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(2, 9)))
    logits = (rng.standard_normal((b, t, v)) * 3).astype(np.float32)
    if mode == "extreme":
        logits = sprinkle(rng, logits, extremes(np.float32), 0.2)
    labels = rng.integers(0, v, (b, t))
    labels[rng.random((b, t)) < rng.choice([0.0, 0.3, 1.0])] = -100
    kw = {"num_items_in_batch": [None, int(rng.integers(0, 9)), torch.tensor(int(rng.integers(0, 9)))][
        int(rng.integers(3))]}
    if rng.random() < 0.3:
        shift = rng.integers(0, v, (b, t))
        shift[rng.random((b, t)) < 0.3] = -100
        kw["shift_labels"] = torch.from_numpy(shift)
    return torch.from_numpy(logits), torch.from_numpy(labels), v, kw


def _loss_and_grad(logits, labels, vocab, kw):
    x = logits.clone().requires_grad_()
    loss = causal_lm_loss(x, labels, vocab, **kw)
    loss.backward()
    return loss.detach().numpy(), x.grad.numpy()


def test_fuzz_causal_lm_loss_against_transformers():
    a = area("transformers causal_lm_loss")
    since = len(a.failures)
    for i in range(count(0.02, least=30)):
        rng = rng_for("transformers", i)
        mode = ("finite", "extreme", "bad")[i % 3]
        logits, labels, v, kw = _case(rng, mode)
        bad = None
        if mode == "bad":
            bad = list(BAD)[int(rng.integers(len(BAD)))]
            target = kw.get("shift_labels", labels) if bad == "shift_labels" else labels
            if bad == "shift_labels":
                kw["shift_labels"] = BAD[bad](target)
            elif bad == "labels":  # labels are read only without shift_labels, as in transformers
                labels = BAD[bad](labels)
                kw.pop("shift_labels", None)
            else:
                kw[bad] = BAD[bad](labels)
        label = f"causal_lm_loss(logits={logits.tolist()}, labels={labels.tolist()}, vocab_size={v}, {kw})"
        result = call(a, label, lambda args=(logits, labels, v, kw): _loss_and_grad(*args), bad=bad,
                      finite=mode == "finite", nan_ok=bool(torch.isnan(logits).any()))
        if mode != "finite" or isinstance(result, Exception):
            continue
        loss, grad = result
        targets = kw.get("shift_labels", torch.nn.functional.pad(labels, (0, 1), value=-100)[..., 1:])
        n = kw["num_items_in_batch"]
        if int((targets != -100).sum()) == 0 or (n is not None and int(n) == 0):
            if loss != 0 or np.any(grad != 0):
                a.fail(label, f"nothing counted: loss {loss}, gradient {grad}, expected 0")
            continue
        y = logits.clone().requires_grad_()
        ref = ForCausalLMLoss(y, labels, v, **{k: (w.contiguous() if torch.is_tensor(w) else w)
                                               for k, w in kw.items()})
        ref.backward()
        for got, want in ((loss, ref.detach().numpy()), (grad, y.grad.numpy())):
            if not np.allclose(got, want, **tol(np.float32)):
                a.fail(label, f"ours {got} != transformers {want}")
                break
    a.check(since)
