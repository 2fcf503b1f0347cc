"""CrossEntropyClassifier against scikit-learn's MLPClassifier on digits, side by side in one process: fit time
(median of interleaved rounds), test accuracy and test log loss, both in a StandardScaler pipeline with a 75/25
stratified split (random_state=0).

    python benchmarks/bench_learn.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from _common import append_csv
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from crossentropy.learn import CrossEntropyClassifier


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    makers = {"CrossEntropyClassifier()": lambda: CrossEntropyClassifier(random_state=0),
              "MLPClassifier(max_iter=500)": lambda: MLPClassifier(random_state=0, max_iter=500)}
    times = {name: [] for name in makers}
    models = {}
    for _ in range(args.rounds):
        for name, make in makers.items():
            model = make_pipeline(StandardScaler(), make())
            start = time.perf_counter()
            model.fit(X_train, y_train)
            times[name].append(time.perf_counter() - start)
            models[name] = model
    print(f"digits, 75/25 stratified split, StandardScaler pipeline; fit time median of {args.rounds} rounds")
    print(f"  {'model':28s} {'fit s':>7s} {'vs MLP':>7s} {'epochs':>7s} {'accuracy':>9s} {'log loss':>9s}")
    base = sorted(times["MLPClassifier(max_iter=500)"])[args.rounds // 2]
    rows = []
    for name, model in models.items():
        fit = sorted(times[name])[args.rounds // 2]
        acc = model.score(X_test, y_test)
        loss = log_loss(y_test, model.predict_proba(X_test))
        epochs = model[-1].n_iter_
        print(f"  {name:28s} {fit:7.3f} {fit / base:6.2f}x {epochs:7d} {acc:9.4f} {loss:9.4f}")
        rows.append({"model": name, "fit_s": f"{fit:.4f}", "fit_vs_mlp": f"{fit / base:.3f}", "epochs": epochs,
                     "accuracy": f"{acc:.4f}", "log_loss": f"{loss:.4f}", "rounds": args.rounds})
    print(f"appended {len(rows)} rows to {append_csv('bench_learn', rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
