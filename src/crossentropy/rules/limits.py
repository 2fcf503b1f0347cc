"""The two rules for infinite values (docs/semantics.md, semantics 1 and 8).

* The masked product: ``0 * x = 0`` for every ``x``, infinite included. A zero target coefficient on a ``-inf``
  logit costs nothing, where plain multiplication would give ``0 * inf = NaN``.
* The infinite-logit limit rule: softmax is the limit of finite logits moving to ``+-inf`` at the same rate. So a
  row whose max ``m`` is infinite is shifted to ``0`` where ``z == m`` and ``-inf`` elsewhere: the ``+inf``
  entries share the mass equally, and a row that is all ``-inf`` is uniform. NaN propagates. ``logsumexp`` and
  ``log_softmax`` of rows follow it.
"""

from __future__ import annotations


def masked_product(xp, a, x, out=None):
    """``a * x`` with ``0 * x = 0`` even where ``x`` is infinite; into ``out`` when given (it may be ``a`` or ``x``).

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> masked_product(NUMPY, np.array([0.0, 2.0]), np.array([-np.inf, 3.0])).tolist()
    [0.0, 6.0]
    """
    return xp.mul_where(a, x, a != 0, out)


def row_max(xp, z):
    """The max along the last axis, kept; ``-inf`` for an empty axis (the max of nothing, so that its log-sum-exp
    is ``log 0 = -inf`` and its softmax is empty)."""
    if z.shape[-1] == 0:
        return xp.zeros(tuple(z.shape[:-1]) + (1,), z.dtype, like=z) - xp.inf
    return xp.amax(z, keepdims=True)


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
        m = row_max(xp, z)
    at_limit = xp.isinf(m)
    if xp.checkable(m) and not xp.any(at_limit):
        return xp.sub(z, m, out), m
    limit = at_limit & (z == m)  # before the subtraction: out may be z itself
    return xp.fill_where_(xp.sub(z, m, out), limit, 0.0), m


def logsumexp(xp, z):
    """``log(sum(exp(z)))`` along the last axis (kept), ``max(z) + log(sum(exp(z - max(z))))`` under the limit rule
    (a row that is all ``-inf`` gives ``-inf``).

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> logsumexp(NUMPY, np.array([[1000.0, 1000.0], [-np.inf, -np.inf]])).tolist()
    [[1000.6931471805599], [-inf]]
    """
    s, m = shift_by_max(xp, z)
    return m + xp.log(xp.sum(xp.exp_(s), keepdims=True))


def log_softmax(xp, z, out=None):
    """``z - logsumexp(z)`` along the last axis under the limit rule, never ``log(softmax(z))``; ``out`` receives
    it and may be ``z`` itself. Rows with a finite max need no rule and go to the backend's own kernel
    (``xp.log_softmax``) as they are; otherwise (or where values cannot be read on the host) the rows are shifted
    by the rule first, so their max is 0.

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> np.round(log_softmax(NUMPY, np.array([[0.0, np.log(3.0)], [-np.inf, -np.inf]])), 6).tolist()
    [[-1.386294, -0.287682], [-0.693147, -0.693147]]
    """
    m = row_max(xp, z)
    if not (xp.checkable(m) and not xp.any(xp.isinf(m))):
        z, _ = shift_by_max(xp, z, out=out, m=m)
        out = z
    return xp.log_softmax(z, out)
