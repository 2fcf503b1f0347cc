"""The rules layer: the cross-entropy semantics written once, for every backend (see docs/design.md)."""
