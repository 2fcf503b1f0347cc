"""The library's own exceptions for bad input.

Every check at a public entry raises one of these. They subclass the built-in ``ValueError`` and ``TypeError``,
so ``except ValueError`` keeps working, and the command-line tool catches exactly ``InputError`` (and its own usage
errors): anything else is a bug and shows its traceback.
"""

from __future__ import annotations


class InputError(Exception):
    """Base class of the bad-input errors: the message names the argument, what was expected and what came."""


class InputValueError(InputError, ValueError):
    """An argument has the right type but a wrong value or shape."""


class InputTypeError(InputError, TypeError):
    """An argument has the wrong type or dtype."""
