"""Reading text files for the data loaders (CSV, TSV, CoNLL, plain text): one place that turns a missing file, a
directory, an unknown codec or bytes that do not decode into an ``InputValueError`` naming the file; and the
library's one CSV reader (``read_csv_cells``), which ``learn.io.data`` and ``core.perplexity`` share."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

from ..rules.errors import InputValueError

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
                              f"encoding, such as `encoding='latin-1'`.") from None
    except OSError as exc:
        raise InputValueError(f"cannot read {name} from {path}: {exc.strerror or exc}") from None


def read_csv_cells(path, name: str, *, encoding: str = DEFAULT_ENCODING, delimiter: str = ",") -> list[list[str]]:
    """The cells of the CSV file at ``path`` (``delimiter="\\t"``: TSV) as stripped strings, one list per line that
    is not blank, every one as wide as the first: a shorter line is padded with empty cells, a longer one is an
    ``InputValueError``; an empty file gives ``[]``. Quoting is the ``csv`` module's (Excel's dialect).

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text('label, "a, b"\\n\\ncat\\n')
    >>> read_csv_cells(path, "labels")
    [['label', 'a, b'], ['cat', '']]
    """
    text = read_text_file(path, name, encoding=encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
    rows: list[list[str]] = []
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):  # a blank line
                continue
            if rows and len(row) > len(rows[0]):
                raise InputValueError(f"{name} {path}: line {reader.line_num} has {len(row)} fields, but the first "
                                      f"line has {len(rows[0])}; quote the fields that hold the delimiter "
                                      f"{delimiter!r}.")
            rows.append([cell.strip() for cell in row] + [""] * (len(rows[0]) - len(row) if rows else 0))
    except csv.Error as exc:
        raise InputValueError(f"cannot read {name} from {path}: line {reader.line_num}: {exc}") from None
    return rows
