"""Files in and out: table and prediction readers, table preprocessing, text features, CoNLL, and model persistence
with its registry of model formats."""
