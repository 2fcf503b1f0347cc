"""Estimators: the NumPy MLP (`estimator`) and its base, the torch models (CNN, BiLSTM tagger, fastText-style text
classifier) with their one shared training loop, and the optimizers. Models import `io/` and `metrics/`, never the
workflow."""
