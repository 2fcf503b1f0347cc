"""The two rules for infinite values (docs/semantics.md, semantics 1 and 8).

* The masked product: ``0 * x = 0`` for every ``x``, infinite included. A zero target coefficient on a ``-inf``
  logit costs nothing, where plain multiplication would give ``0 * inf = NaN``.
* The infinite-logit limit rule: softmax is the limit of finite logits moving to ``+-inf`` at the same rate. So a
  row whose max ``m`` is infinite is shifted to ``0`` where ``z == m`` and ``-inf`` elsewhere: the ``+inf``
  entries share the mass equally, and a row that is all ``-inf`` is uniform. NaN propagates.
"""

from __future__ import annotations


def masked_product(xp, a, x):
    """``a * x`` with ``0 * x = 0`` even where ``x`` is infinite.

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> masked_product(NUMPY, np.array([0.0, 2.0]), np.array([-np.inf, 3.0])).tolist()
    [0.0, 6.0]
    """
    return xp.mul_where(a, x, a != 0)


def shift_by_max(xp, z, out=None, m=None):
    """``(s, m)``: ``s = z - m`` with ``m = max(z)`` along the last axis (kept), under the limit rule.

    ``m`` may be given (the max over every shard of a vocabulary-parallel row). ``out`` receives ``s`` and may be
    ``z`` itself. Where values can be read on the host, only inputs with an
    infinite row max pay for the rule; elsewhere (CUDA, ``torch.compile``) it is one masked fill, with no sync.

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> shift_by_max(NUMPY, np.array([[np.inf, 1.0, np.inf], [-np.inf, -np.inf, -np.inf]]))[0].tolist()
    [[0.0, -inf, 0.0], [0.0, 0.0, 0.0]]
    """
    if m is None:
        m = xp.amax(z, keepdims=True)
    at_limit = xp.isinf(m)
    if xp.checkable(m) and not xp.any(at_limit):
        return xp.sub(z, m, out), m
    limit = at_limit & (z == m)  # before the subtraction: out may be z itself
    return xp.fill_where_(xp.sub(z, m, out), limit, 0.0), m
