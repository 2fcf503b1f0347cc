"""Public, documented sample data generators (template NER sentences, synthetic text classification)."""
