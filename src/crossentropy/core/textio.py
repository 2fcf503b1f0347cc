"""Reading text files for the data loaders (CSV, TSV, CoNLL, plain text): one place that turns a missing file, a
directory, an unknown codec or bytes that do not decode into an ``InputValueError`` naming the file."""

from __future__ import annotations

import codecs
from pathlib import Path

from ..rules.errors import InputValueError

ENCODING_HINT = "encoding='latin-1'"  # how a message names the option (the CLI spells it --encoding)
DEFAULT_ENCODING = "utf-8-sig"  # UTF-8, with a byte-order mark (Notepad, Excel's "CSV UTF-8") dropped


def check_file(path, name: str) -> Path:
    """``path`` as a ``Path``, once it is known to be an existing file that is not a directory (``name`` says which
    input it is, for messages)."""
    path = Path(path)
    if not path.exists():
        raise InputValueError(f"no such file for {name}: {path}")
    if path.is_dir():
        raise InputValueError(f"{name} {path} is a directory; pass a file.")
    return path


def read_text_file(path, name: str, *, encoding: str = DEFAULT_ENCODING) -> str:
    """The text of the file at ``path`` (``name`` says which input it is, for messages), decoded with
    ``encoding``; universal newlines.

    >>> read_text_file("no/such/file.csv", "data")
    Traceback (most recent call last):
    ...
    crossentropy.rules.errors.InputValueError: no such file for data: no/such/file.csv
    """
    path = check_file(path, name)
    try:
        codec = codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise InputValueError(f"encoding {encoding!r} is not a text encoding Python knows; use e.g. utf-8, latin-1 "
                              f"or cp1252.") from None
    try:
        return path.read_text(encoding=encoding)
    except UnicodeError as exc:
        where = f" at byte {exc.start}" if isinstance(exc, UnicodeDecodeError) else ""
        shown = "UTF-8" if codec.startswith("utf-8") else encoding
        raise InputValueError(f"{name} {path} is not {shown} text ({getattr(exc, 'reason', exc)}{where}); give its "
                              f"encoding, such as {ENCODING_HINT}.") from None
    except OSError as exc:
        raise InputValueError(f"cannot read {name} from {path}: {exc.strerror or exc}") from None
