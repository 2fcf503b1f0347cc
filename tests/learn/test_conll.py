"""The CoNLL reader and writer: the common layout, CoNLL-2003's four columns, CRLF, -DOCSTART-, and every malformed
input naming the file and line."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossentropy.learn.io.conll import format_conll, parse_conll, read_conll, read_text, write_conll
from crossentropy.learn.samples.ner import generate
from crossentropy.rules.errors import InputValueError

SAMPLE = Path(__file__).parent / "data" / "sample.conll"

CONLL2003 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
to TO B-VP O
boycott VB I-VP O
British JJ B-NP B-MISC
lamb NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

"""


def test_conll2003_layout():
    corpus = parse_conll(CONLL2003, name="eng.train")
    assert corpus.n_columns == 4 and corpus.n_tokens == 11 and len(corpus.sentences) == 2
    assert corpus.tokens[0][:3] == ["EU", "rejects", "German"]
    assert corpus.column(-1) == [["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"], ["B-PER", "I-PER"]]
    assert corpus.lines[1] == [13, 14]  # 1-based line numbers of each row


def test_crlf_trailing_whitespace_extra_blank_lines_and_docstart_between_documents():
    text = "A B-PER  \r\nb O\t\r\n\r\n\r\n-DOCSTART- O\r\n\r\nC I-LOC\r\n   \r\n"
    corpus = parse_conll(text)
    assert corpus.sentences == [[("A", "B-PER"), ("b", "O")], [("C", "I-LOC")]]
    # no blank line before -DOCSTART- still ends the sentence; no trailing newline is fine
    assert parse_conll("a O\n-DOCSTART- O\nb O").tokens == [["a"], ["b"]]


def test_shipped_sample_loads_and_matches_its_generator():
    corpus = read_conll(SAMPLE)
    assert corpus.sentences == [[tuple(r) for r in s] for s in generate(12, seed=7)]


@pytest.mark.parametrize("text,line,words", [
    ("a B-PER\nb\nc O\n", 2, "expected 2 columns like line 1, but found 1"),          # a missing tag column
    ("a NN B-PER\nb NN O\n\nc O\n", 4, "expected 3 columns like line 1, but found 2"),  # ragged, after a blank line
    ("a NN B-PER\nb NN O O\n", 2, "expected 3 columns like line 1, but found 4"),
    ("\n-DOCSTART-\nword\n", 3, "expected at least 2 whitespace-separated columns"),   # no tag column at all
])
def test_malformed_lines_are_named(text, line, words):
    with pytest.raises(InputValueError, match=f"bad.conll, line {line}: {words}"):
        parse_conll(text, name="bad.conll")


def test_min_columns_and_empty_files(tmp_path):
    with pytest.raises(InputValueError, match="at least 3 whitespace-separated columns \\(token, gold, predicted\\)"):
        parse_conll("a B-PER\n", min_columns=3, what="token, gold, predicted")
    for text in ("", "\n\n", "-DOCSTART- -X- O\n\n"):
        (tmp_path / "empty.conll").write_text(text)
        with pytest.raises(InputValueError, match="empty.conll holds no tokens"):
            read_conll(tmp_path / "empty.conll")
    with pytest.raises(InputValueError, match="no such file"):
        read_conll(tmp_path / "missing.conll")
    (tmp_path / "latin1.conll").write_bytes("caf\xe9 O\n".encode("latin-1"))
    with pytest.raises(InputValueError, match="is not UTF-8"):
        read_conll(tmp_path / "latin1.conll")
    (tmp_path / "blank.txt").write_text(" \n\n")
    with pytest.raises(InputValueError, match="holds no text"):
        read_text(tmp_path / "blank.txt")


def test_read_text_one_sentence_per_line(tmp_path):
    (tmp_path / "in.txt").write_text("Peter flew to Paris .\r\n\n  Acme Corp   fell .  \n")
    assert read_text(tmp_path / "in.txt") == [["Peter", "flew", "to", "Paris", "."], ["Acme", "Corp", "fell", "."]]


def test_writer_round_trips_and_never_overwrites(tmp_path):
    sentences = generate(5, seed=1)
    path = write_conll(tmp_path / "out.conll", sentences)
    assert read_conll(path).sentences == sentences
    before = path.read_text()
    with pytest.raises(InputValueError, match="already exists"):
        write_conll(path, sentences[:1])
    assert path.read_text() == before
    write_conll(path, sentences[:1], overwrite=True)
    assert read_conll(path).sentences == sentences[:1]


token = st.text(alphabet=st.characters(blacklist_categories=("Z", "C")), min_size=1, max_size=6).filter(
    lambda t: t != "-DOCSTART-")


@given(st.integers(1, 4).flatmap(lambda k: st.lists(
    st.lists(st.tuples(*[token] * k), min_size=1, max_size=5), min_size=1, max_size=5)))
def test_format_then_parse_is_identity(sentences):
    corpus = parse_conll(format_conll(sentences), min_columns=1)
    assert corpus.sentences == sentences and corpus.n_columns == len(sentences[0][0])


def test_a_utf8_byte_order_mark_is_skipped(tmp_path):
    """Issue 21 #29: Notepad and Excel's "CSV UTF-8" start files with a BOM; -DOCSTART- is still recognised."""
    (tmp_path / "bom.conll").write_bytes("\ufeff-DOCSTART- -X- O\n\nEU B-ORG\nrejects O\n".encode())
    corpus = read_conll(tmp_path / "bom.conll")
    assert corpus.sentences == [[("EU", "B-ORG"), ("rejects", "O")]] and corpus.n_columns == 2
    (tmp_path / "bom.txt").write_bytes("\ufeffPeter flew .\n".encode())
    assert read_text(tmp_path / "bom.txt") == [["Peter", "flew", "."]]


def test_encoding_is_a_parameter_and_named_when_the_bytes_do_not_decode(tmp_path):
    """Issue 21 #31: a Latin-1 file gives a clean InputValueError naming the encoding; encoding= reads it."""
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 Z\xfcrich .\n".encode("latin-1"))
    with pytest.raises(InputValueError, match="is not UTF-8 text .*encoding='latin-1'"):
        read_text(tmp_path / "latin1.txt")
    assert read_text(tmp_path / "latin1.txt", encoding="latin-1") == [["Café", "Zürich", "."]]
    (tmp_path / "latin1.conll").write_bytes("caf\xe9 O\n".encode("latin-1"))
    assert read_conll(tmp_path / "latin1.conll", encoding="latin-1").tokens == [["café"]]
    with pytest.raises(InputValueError, match="encoding 'no-such-codec' is not a text encoding"):
        read_text(tmp_path / "latin1.txt", encoding="no-such-codec")
    with pytest.raises(InputValueError, match="is a directory"):
        read_conll(tmp_path)
