"""Free text as features: tokenization, word and character n-grams, and TF-IDF with a vocabulary that a saved
model keeps as plain JSON (no pickle).

Tokenization (``tokenize``) is built for real text: Unicode is NFKC-normalized and case-folded, a URL becomes the
token ``xxurl``, an e-mail address ``xxemail`` and a number ``xxnum``; words are runs of letters, digits, marks and
apostrophes inside a word (``don't`` stays one token); punctuation is dropped; every character of a script written
without spaces (Chinese, Japanese kana and kanji, Thai) is a word of its own, so that word bigrams of such text are
character bigrams.

``ngrams`` gives each text's word n-grams (``w:`` prefix, 1 and 2 words by default, so ``not good`` is a feature)
and character n-grams (``c:`` prefix, 2 to 4 characters by default) of each space-padded word, or of each run of
unspaced script, so that ``满意`` inside ``我很满意`` is found without a word segmenter.

``TfidfText`` turns texts into a sparse CSR matrix, one row per text:

    x[d, t] = (1 + log count(t, d)) * idf(t),   idf(t) = log((1 + n) / (1 + df(t))) + 1

(scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``), the word block and the character block each scaled to unit
L2 norm and then by ``1/sqrt(2)``, so a text's row has norm 1 (``1/sqrt(2)`` when it has n-grams of one kind
only, 0 when it has none in the vocabulary). The vocabulary keeps
the ``max_features`` n-grams found in most training texts (ties by the n-gram, in sorted order).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

import numpy as np

from ...rules.errors import InputValueError

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
NUMBER = re.compile(r"(?<!\w)[+-]?\d+(?:[.,]\d+)*(?!\w)")
UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f"  # kana, CJK ideographs, Thai
WORD = re.compile(rf"[{UNSPACED}]+|[^\W_]+(?:['’][^\W_]+)*")
UNSPACED_RUN = re.compile(rf"^[{UNSPACED}]+$")


def normalize(text: str) -> str:
    """NFKC-normalized, case-folded text with URLs, e-mail addresses and numbers replaced by placeholder words.

    >>> normalize("Ｇreat!! see https://x.io/a?b=1 — 4.5 stars, mail a@b.com")
    'great!! see xxurl — xxnum stars, mail xxemail'
    """
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    text = URL.sub(" xxurl ", text)
    text = EMAIL.sub(" xxemail ", text)
    text = NUMBER.sub(" xxnum ", text)
    return re.sub(r"\s+", " ", text).strip().replace("’", "'")


def runs(text: str) -> list[str]:
    """The words and unspaced-script runs of normalized ``text`` (punctuation dropped).

    >>> runs("Not bad, I'd say: 我很满意!")
    ['not', 'bad', "i'd", 'say', '我很满意']
    """
    return WORD.findall(normalize(text))


def tokenize(text: str) -> list[str]:
    """Word tokens: ``runs`` with each run of unspaced script split into its characters.

    >>> tokenize("Don't buy it: 2 stars. 质量很差")
    ["don't", 'buy', 'it', 'xxnum', 'stars', '质', '量', '很', '差']
    """
    return _split(runs(text))


def _split(pieces: list[str]) -> list[str]:
    out: list[str] = []
    for run in pieces:
        out.extend(run) if UNSPACED_RUN.match(run) else out.append(run)
    return out


def ngrams(text: str, word_ngram_range=(1, 2), char_ngram_range=(2, 4)) -> tuple[list[str], list[str]]:
    """The word n-grams (``"w:"`` + words joined by a space) and character n-grams (``"c:"`` + characters of a
    space-padded word or unspaced run) of ``text``, in order, repeats kept.

    >>> words, chars = ngrams("Not good", (1, 2), (3, 3))
    >>> words
    ['w:not', 'w:good', 'w:not good']
    >>> chars[:3]
    ['c: no', 'c:not', 'c:ot ']
    """
    pieces = runs(text)
    tokens = _split(pieces)
    words = []
    for n in range(word_ngram_range[0], word_ngram_range[1] + 1):
        words += ["w:" + " ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    chars = []
    for run in pieces:
        padded = f" {run} "
        for n in range(char_ngram_range[0], char_ngram_range[1] + 1):
            chars += ["c:" + padded[i:i + n] for i in range(len(padded) - n + 1)]
    return words, chars


def display_ngram(feature: str) -> str:
    """A feature name for people: a word n-gram as its words, a character n-gram in brackets, spaces as ``_``.

    >>> display_ngram("w:not good"), display_ngram("c: go")
    ('not good', '[_go]')
    """
    return feature[2:] if feature.startswith("w:") else f"[{feature[2:].replace(' ', '_')}]"


def _check_range(value, name: str) -> tuple[int, int]:
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    if not ok or not 1 <= value[0] <= value[1]:
        raise InputValueError(f"{name} must be a pair (min_n, max_n) of ints with 1 <= min_n <= max_n, but got "
                              f"{value!r}.")
    return int(value[0]), int(value[1])


class TfidfText:
    """TF-IDF of word and character n-grams (module doc), fitted on a list of texts.

    >>> tfidf = TfidfText(max_features=30).fit(["good film", "bad film", "not good"])
    >>> X = tfidf.transform(["good, good film!", ""])
    >>> X.shape, round(float(X[0].multiply(X[0]).sum()), 6), X[1].nnz
    ((2, 30), 1.0, 0)
    """

    def __init__(self, *, max_features: int = 20000, word_ngram_range=(1, 2), char_ngram_range=(2, 4)):
        if isinstance(max_features, bool) or not isinstance(max_features, (int, np.integer)) or max_features < 1:
            raise InputValueError(f"max_features must be a positive int, but got {max_features!r}.")
        self.max_features = int(max_features)
        self.word_ngram_range = _check_range(word_ngram_range, "word_ngram_range")
        self.char_ngram_range = _check_range(char_ngram_range, "char_ngram_range")

    def _grams(self, text: str) -> tuple[list[str], list[str]]:
        return ngrams(text, self.word_ngram_range, self.char_ngram_range)

    def fit(self, texts) -> TfidfText:
        texts = [str(t) for t in texts]
        if not texts:
            raise InputValueError("TfidfText.fit needs at least one text.")
        df: Counter = Counter()
        for text in texts:
            words, chars = self._grams(text)
            df.update(set(words) | set(chars))
        kept = sorted(df.items(), key=lambda item: (-item[1], item[0]))[:self.max_features]
        self.vocabulary_ = sorted(term for term, _ in kept)
        self.idf_ = np.array([math.log((1 + len(texts)) / (1 + df[t])) + 1 for t in self.vocabulary_])
        self._index()
        return self

    def _index(self) -> None:
        self.index_ = {t: i for i, t in enumerate(self.vocabulary_)}
        self.is_word_ = np.array([t.startswith("w:") for t in self.vocabulary_], dtype=bool)

    def transform(self, texts):
        """A CSR matrix (len(texts), len(vocabulary_)) of float64 TF-IDF values."""
        from scipy import sparse

        indptr, indices, data, nnz = [0], [], [], 0
        for text in texts:
            words, chars = self._grams("" if text is None else text)
            for block in (words, chars):
                counts = Counter(self.index_[g] for g in block if g in self.index_)
                if not counts:
                    continue
                cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                vals = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) \
                    * self.idf_[cols]
                indices.append(cols)
                data.append(vals / np.linalg.norm(vals) / math.sqrt(2.0))
                nnz += len(cols)
            indptr.append(nnz)
        matrix = sparse.csr_matrix(
            (np.concatenate(data) if data else np.zeros(0), np.concatenate(indices) if indices else np.zeros(0, int),
             np.array(indptr)), shape=(len(indptr) - 1, len(self.vocabulary_)))
        matrix.sort_indices()
        return matrix

    def feature_names(self) -> list[str]:
        return list(self.vocabulary_)

    # ------------------------------------------------------------------------------------------- persistence
    def to_state(self) -> tuple[dict, np.ndarray]:
        """JSON-safe settings and vocabulary, and the idf array."""
        return {"max_features": self.max_features, "word_ngram_range": list(self.word_ngram_range),
                "char_ngram_range": list(self.char_ngram_range), "vocabulary": list(self.vocabulary_)}, self.idf_

    @classmethod
    def from_state(cls, state: dict, idf) -> TfidfText:
        """Rebuild from ``to_state``'s output; anything inconsistent is an ``InputValueError``."""
        vocabulary = state.get("vocabulary") if isinstance(state, dict) else None
        if not isinstance(vocabulary, list) or not all(isinstance(t, str) and t[:2] in ("w:", "c:")
                                                       for t in vocabulary):
            raise InputValueError("the saved text features have no valid vocabulary (a list of n-grams).")
        if len(set(vocabulary)) != len(vocabulary):
            raise InputValueError("the saved text vocabulary names an n-gram twice; save the model again.")
        if idf is None or np.shape(idf) != (len(vocabulary),) or not np.isfinite(idf).all() or (idf < 1).any():
            raise InputValueError(f"the saved idf must be {len(vocabulary)} finite values >= 1 (got shape "
                                  f"{np.shape(idf)}); save the model again.")
        try:
            self = cls(max_features=state.get("max_features"), word_ngram_range=state.get("word_ngram_range"),
                       char_ngram_range=state.get("char_ngram_range"))
        except InputValueError as exc:
            raise InputValueError(f"the saved text settings are invalid: {exc}") from None
        self.vocabulary_, self.idf_ = vocabulary, np.asarray(idf, dtype=np.float64)
        self._index()
        return self
