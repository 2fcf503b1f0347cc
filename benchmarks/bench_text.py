"""Memory of CrossEntropyClassifier on sparse input (issue 25): a 10^5 x 10^5 CSR matrix with 0.1% density
(10^7 non-zeros, 120 MB as CSR; 80 GB if densified) trains one epoch and predicts, with softmax and an MLP.

Prints the peak of the allocations that fit + predict_proba make on top of X (tracemalloc, which sees NumPy's
buffers; X itself, held before, is excluded) and its ratio to the floor of Adam training: the weights, their
gradient and Adam's two moments (4 x the weights). Densifying X would add 80 GB.

    python benchmarks/bench_text.py            # 10^5 x 10^5
    python benchmarks/bench_text.py --quick    # 10^4 x 10^4
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
from scipy import sparse

from crossentropy.learn import CrossEntropyClassifier


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 10_000 if args.quick else 100_000
    rng = np.random.default_rng(0)
    nnz_per_row = n // 1000
    indices = rng.integers(0, n, size=n * nnz_per_row)
    X = sparse.csr_matrix((rng.random(n * nnz_per_row), indices, np.arange(0, n * nnz_per_row + 1, nnz_per_row)),
                          shape=(n, n))
    score = np.asarray(X[:, : n // 2].sum(axis=1)).ravel()
    y = (score > np.median(score)).astype(int)
    data_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    print(f"X: {n} x {n}, {X.nnz} non-zeros ({X.nnz / n / n:.2%}); CSR {data_bytes / 1e6:.0f} MB, dense would be "
          f"{n * n * 8 / 1e9:.0f} GB")
    for hidden in [(), (16,)]:
        clf = CrossEntropyClassifier(hidden, max_epochs=1, batch_size=1000, random_state=0)
        weights = n * (hidden[0] if hidden else 1) * 8
        tracemalloc.start()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X, y)
        clf.predict_proba(X)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        floor = 4 * weights
        print(f"hidden={hidden!s:6s} fit(1 epoch)+predict {seconds:6.1f} s  peak allocations beyond X "
              f"{peak / 1e6:7.1f} MB = {peak / floor:.2f} x floor (4 x weights = {floor / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
