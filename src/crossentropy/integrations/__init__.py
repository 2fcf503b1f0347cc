"""Bridges from crossentropy's losses into the trainers people use (``crossentropy.integrations.transformers``).

Each submodule imports its framework when it is itself imported; ``import crossentropy`` and
``import crossentropy.torch`` import none of them.
"""
