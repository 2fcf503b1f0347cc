"""Read and write CoNLL-format files: one token per line, whitespace-separated columns with the tag in the last
column, a blank line between sentences, ``-DOCSTART-`` lines skipped. CRLF line ends, trailing whitespace and a
UTF-8 byte-order mark are tolerated. CoNLL-2003 files (``token POS chunk NER``) load as they are.

Malformed input (an empty file, a line with too few columns, a column count that changes within the file) raises
``InputValueError`` naming the file and the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...core.textio import DEFAULT_ENCODING, read_text_file
from ...rules.errors import InputValueError

DOCSTART = "-DOCSTART-"


@dataclass
class ConllCorpus:
    """The sentences of a CoNLL file: each sentence is a list of rows, each row a tuple of ``n_columns`` strings.

    ``lines[i][j]`` is the 1-based line number of row ``j`` of sentence ``i``, for error messages.
    """

    name: str
    sentences: list[list[tuple[str, ...]]]
    lines: list[list[int]]
    n_columns: int

    def column(self, index: int) -> list[list[str]]:
        """Column ``index`` (0 is the token, -1 the last tag column) of every sentence."""
        return [[row[index] for row in sentence] for sentence in self.sentences]

    @property
    def tokens(self) -> list[list[str]]:
        return self.column(0)

    @property
    def n_tokens(self) -> int:
        return sum(len(s) for s in self.sentences)


def parse_conll(text: str, *, name: str = "<string>", min_columns: int = 2, what: str = "a token and a tag"
                ) -> ConllCorpus:
    """Parse CoNLL ``text``; ``name`` appears in error messages. Every token line must have the same number of
    columns, at least ``min_columns`` (``what`` says what they hold, for the message).

    >>> corpus = parse_conll("-DOCSTART- -X- O\\n\\nEU B-ORG\\nrejects O\\n\\nPeter B-PER\\n")
    >>> corpus.tokens, corpus.column(-1)
    ([['EU', 'rejects'], ['Peter']], [['B-ORG', 'O'], ['B-PER']])
    """
    sentences: list[list[tuple[str, ...]]] = []
    lines: list[list[int]] = []
    sentence: list[tuple[str, ...]] = []
    numbers: list[int] = []
    n_columns = first_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        row = tuple(line.split())
        if not row or row[0] == DOCSTART:
            if sentence:
                sentences.append(sentence)
                lines.append(numbers)
            sentence, numbers = [], []
            continue
        if n_columns is None:
            n_columns, first_line = len(row), number
            if n_columns < min_columns:
                raise InputValueError(
                    f"{name}, line {number}: expected at least {min_columns} whitespace-separated columns "
                    f"({what}), but found {n_columns}: {line.strip()!r}. Put the tag in the last column.")
        elif len(row) != n_columns:
            raise InputValueError(
                f"{name}, line {number}: expected {n_columns} columns like line {first_line}, but found {len(row)}: "
                f"{line.strip()!r}. Every token line needs the same columns ({what} last); fix or remove the line.")
        sentence.append(row)
        numbers.append(number)
    if sentence:
        sentences.append(sentence)
        lines.append(numbers)
    if not sentences:
        raise InputValueError(f"{name} holds no tokens; a CoNLL file has one token per line, columns separated by "
                              f"whitespace, and a blank line between sentences.")
    return ConllCorpus(name, sentences, lines, n_columns)


def read_conll(path, *, min_columns: int = 2, what: str = "a token and a tag", encoding: str = DEFAULT_ENCODING
               ) -> ConllCorpus:
    """Read the CoNLL file at ``path``, decoded with ``encoding`` (UTF-8 by default); see ``parse_conll``."""
    text = read_text_file(path, "the CoNLL file", encoding=encoding)
    return parse_conll(text, name=str(path), min_columns=min_columns, what=what)


def read_text(path, *, encoding: str = DEFAULT_ENCODING) -> list[list[str]]:
    """Plain text for tagging, decoded with ``encoding``: one sentence per non-blank line, tokens split on
    whitespace."""
    text = read_text_file(path, "the text file", encoding=encoding)
    sentences = [line.split() for line in text.splitlines() if line.strip()]
    if not sentences:
        raise InputValueError(f"{path} holds no text; put one sentence per line.")
    return sentences


def format_conll(sentences) -> str:
    """CoNLL text of ``sentences`` (lists of rows, each row a tuple of columns): columns joined by a space, a blank
    line after each sentence.

    >>> print(format_conll([[("EU", "B-ORG"), ("rejects", "O")]]), end="")
    EU B-ORG
    rejects O
    <BLANKLINE>
    """
    return "".join("".join(" ".join(row) + "\n" for row in sentence) + "\n" for sentence in sentences)


def write_conll(path, sentences, *, overwrite: bool = False) -> Path:
    """Write ``sentences`` to ``path`` as CoNLL; an existing file is refused unless ``overwrite``."""
    path = Path(path)
    try:
        with path.open("w" if overwrite else "x", encoding="utf-8") as f:
            f.write(format_conll(sentences))
    except FileExistsError:
        raise InputValueError(f"{path} already exists; choose another output file (or pass `overwrite=True` to replace "
                              f"it).") from None
    return path
