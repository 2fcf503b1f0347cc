"""Memory of CrossEntropyClassifier on sparse input (issue 25): a 10^5 x 10^5 CSR matrix with 0.1% density
(10^7 non-zeros, 120 MB as CSR; 80 GB if densified) trains one epoch and predicts, with softmax and an MLP.

Prints the peak of Python allocations (tracemalloc, which sees NumPy's buffers) during fit + predict_proba, and
its ratio to the physical floor: the CSR matrix plus the weights (what any implementation must hold).

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
        floor = data_bytes + weights
        print(f"hidden={hidden!s:6s} fit(1 epoch)+predict {seconds:6.1f} s  peak allocations {peak / 1e6:7.0f} MB  "
              f"= {peak / floor:.2f} x floor (CSR + weights {floor / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
