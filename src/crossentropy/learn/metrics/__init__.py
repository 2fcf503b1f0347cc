"""Evaluation: reports, expected calibration error and temperature calibration, tagging reports, explanations.
Metrics import `io/` only (and the library core); no model."""
