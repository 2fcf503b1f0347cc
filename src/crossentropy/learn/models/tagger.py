"""A small PyTorch token tagger (named-entity recognition and other IOB tagging), trained with
``crossentropy.torch.cross_entropy`` over padded batches, padding ignored through ``ignore_index``.

Each token is read as three embeddings (its lower-cased word, its character shape such as ``Xx`` or ``dd.d``, and
its lower-cased 3-letter suffix), a bidirectional LSTM runs over the sentence (packed: padding never enters it), and
a linear layer gives one logit per tag. Needs the ``torch`` extra.

``train_tagger`` fits and evaluates a tagger on CoNLL data, ``write_tagger_run`` writes the run directory of
``crossentropy train --task tagging`` (``metrics.json``, ``model.npz`` + ``model.json``, ``loss_curve.png``), and
``tag_file`` tags a CoNLL or plain-text file with a saved tagger.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ...core.textio import DEFAULT_ENCODING
from ...core.weights import class_weights
from ...rules.errors import InputValueError
from ..choices import TRAIN_DEFAULTS
from ..io.conll import ConllCorpus, read_conll, read_text, write_conll
from ..io.modelfiles import FORMAT, load_weights, number_list, output_directory, read_model_files
from ..metrics.tagging import TaggingReport, check_iob_columns, evaluate_tagging
from .base import check_params
from .training import (
    IGNORE,
    TORCH_CONSTRAINTS,
    fit_network,
    torch_loss,
    torch_optimizer,
    torch_threads,
)

PAD, UNK = 0, 1  # reserved ids of every vocabulary
SUFFIX = 3


def word_shape(token: str) -> str:
    """Upper-case letters become ``X``, lower-case ``x``, digits ``d``; other characters stay; runs longer than two
    are cut to two.

    >>> [word_shape(t) for t in ["Peter", "EU", "1996-08-22", "van", "U.S."]]
    ['Xxx', 'XX', 'dd-dd-dd', 'xx', 'X.X.']
    """
    shape = "".join("X" if c.isupper() else "x" if c.islower() else "d" if c.isdigit() else c for c in token)
    return re.sub(r"(.)\1{2,}", r"\1\1", shape)


def _features(token: str) -> tuple[str, str, str]:
    lower = token.lower()
    return lower, word_shape(token), lower[-SUFFIX:]


class TaggerNetwork(nn.Module):
    """Word, shape and suffix embeddings, concatenated; a BiLSTM; dropout; a linear layer to the tags."""

    def __init__(self, sizes: tuple[int, int, int], n_tags: int, *, embedding_dim: int = 64, hidden_size: int = 64,
                 dropout: float = 0.25):
        super().__init__()
        dims = (embedding_dim, embedding_dim // 4, embedding_dim // 2)
        self.embeddings = nn.ModuleList(nn.Embedding(n, d, padding_idx=PAD) for n, d in zip(sizes, dims, strict=True))
        self.lstm = nn.LSTM(sum(dims), hidden_size, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(2 * hidden_size, n_tags)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``ids`` (batch, 3, time) of word, shape and suffix ids, ``lengths`` (batch,); logits (batch, tags,
        time), the class dim 1 as ``cross_entropy`` takes it."""
        x = torch.cat([emb(ids[:, i]) for i, emb in enumerate(self.embeddings)], dim=-1)
        packed = pack_padded_sequence(self.dropout(x), lengths, batch_first=True, enforce_sorted=False)
        hidden, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=ids.shape[-1])
        return self.output(self.dropout(hidden)).transpose(1, 2)


@dataclass
class _Batch:
    ids: torch.Tensor  # (batch, 3, time)
    lengths: torch.Tensor  # (batch,)
    targets: torch.Tensor | None  # (batch, time), IGNORE on padding


class TokenTagger(BaseEstimator):
    """A BiLSTM tagger trained with this library's cross-entropy (or its focal loss).

    ``fit(sentences, tags)`` takes lists of token lists and of tag lists. It holds out ``validation_fraction`` of the
    sentences, reports the validation loss each epoch (``callback(epoch, train_loss, validation_loss)``) and keeps
    the weights of the best epoch. ``class_weight`` ("balanced" or "effective_number") weighs the tags,
    ``label_smoothing`` smooths the targets, and ``word_dropout`` replaces that share of training words by the
    unknown word, so that unseen words are tagged from their shape and suffix. Fitting and prediction run on
    ``num_threads`` torch threads (None: torch's setting); a model this small runs fastest on one.
    """

    PARAMS = ("epochs", "learning_rate", "batch_size", "optimizer", "weight_decay", "loss", "gamma", "label_smoothing",
              "class_weight", "embedding_dim", "hidden_size", "dropout", "word_dropout", "validation_fraction",
              "random_state", "num_threads")
    _parameter_constraints: dict = {
        **TORCH_CONSTRAINTS,
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "word_dropout": [Interval(Real, 0, 1, closed="left")],
    }


    def __init__(self, *, epochs=20, learning_rate=5e-3, batch_size=16, optimizer="adam", weight_decay=0.0,
                 loss="cross_entropy", gamma=2.0, label_smoothing=0.0, class_weight=None, embedding_dim=64,
                 hidden_size=64, dropout=0.25, word_dropout=0.4, validation_fraction=0.1, random_state=0,
                 num_threads=1, callback=None):
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.loss = loss
        self.gamma = gamma
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.word_dropout = word_dropout
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.num_threads = num_threads
        self.callback = callback

    def get_params(self, deep: bool = True) -> dict:
        """The parameters that ``save`` writes (all but ``callback``)."""
        return {name: getattr(self, name) for name in self.PARAMS}

    # -------------------------------------------------------------------------------------------- encoding
    def _encode(self, sentences, tags=None) -> _Batch:
        lengths = [len(s) for s in sentences]
        ids = np.full((len(sentences), 3, max(lengths)), PAD, dtype=np.int64)
        targets = np.full((len(sentences), max(lengths)), IGNORE, dtype=np.int64)
        for i, sentence in enumerate(sentences):
            for j, token in enumerate(sentence):
                ids[i, :, j] = [vocab.get(f, UNK) for vocab, f in zip(self.index_, _features(token), strict=True)]
            if tags is not None:
                targets[i, :len(sentence)] = [self.tag_index_[t] for t in tags[i]]
        return _Batch(torch.from_numpy(ids), torch.tensor(lengths),
                      None if tags is None else torch.from_numpy(targets))

    # -------------------------------------------------------------------------------------------- training
    def _check_data(self, sentences, tags):
        if len(sentences) != len(tags):
            raise InputValueError(f"sentences and tags must have the same length, but got {len(sentences)} sentences "
                                  f"and {len(tags)} tag sequences.")
        for i, (s, t) in enumerate(zip(sentences, tags, strict=True)):
            if len(s) != len(t) or not s:
                raise InputValueError(f"sentence {i} has {len(s)} tokens and {len(t)} tags; each sentence needs one "
                                      f"tag per token and at least one token.")

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, sentences, tags) -> TokenTagger:
        with torch_threads(self.num_threads):
            return self._fit(sentences, tags)

    def _fit(self, sentences, tags) -> TokenTagger:
        sentences, tags = [list(s) for s in sentences], [list(t) for t in tags]
        self._check_data(sentences, tags)
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        order = rng.permutation(len(sentences))
        n_val = int(len(sentences) * self.validation_fraction) if len(sentences) >= 10 else 0
        train_idx, val_idx = order[n_val:], order[:n_val]
        counts = [Counter(f[k] for i in train_idx for token in sentences[i] for f in [_features(token)])
                  for k in range(3)]
        self.vocabularies_ = [["<pad>", "<unk>", *sorted(c)] for c in counts]
        self.index_ = [{w: i for i, w in enumerate(v)} for v in self.vocabularies_]
        self.tags_ = sorted({t for seq in tags for t in seq})
        self.tag_index_ = {t: i for i, t in enumerate(self.tags_)}
        weight = None
        if self.class_weight is not None:
            flat = np.array([self.tag_index_[t] for i in train_idx for t in tags[i]])
            weight = torch.as_tensor(class_weights(flat, n_classes=len(self.tags_), method=self.class_weight),
                                     dtype=torch.float32)
        self.network_ = self._build()
        opt = torch_optimizer(self.optimizer, self.network_.parameters(), self.learning_rate, self.weight_decay)

        def batches():
            for start in range(0, len(train_idx), self.batch_size):
                chosen = train_idx[start:start + self.batch_size]
                batch = self._encode([sentences[i] for i in chosen], [tags[i] for i in chosen])
                drop = (torch.rand(batch.ids[:, 0].shape) < self.word_dropout) & (batch.ids[:, 0] != PAD)
                batch.ids[:, 0].masked_fill_(drop, UNK)  # the word and its suffix unknown; the shape kept
                batch.ids[:, 2].masked_fill_(drop, UNK)
                yield (batch.ids, batch.lengths), batch.targets, int(batch.lengths.sum())
            rng.shuffle(train_idx)

        val = self._encode([sentences[i] for i in val_idx], [tags[i] for i in val_idx]) if n_val else None
        self.loss_curve_, self.validation_loss_curve_, self.best_loss_, _ = fit_network(
            self.network_, opt, lambda logits, targets: self.batch_loss(logits, targets, weight), batches,
            epochs=self.epochs, validation=None if val is None else ((val.ids, val.lengths), val.targets),
            callback=self.callback)
        self.n_iter_ = self.epochs
        return self

    def batch_loss(self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        """The training loss of one batch: ``training.torch_loss`` (this library's cross-entropy or focal loss,
        padding ignored), which a subclass may replace (``benchmarks/bench_tagger.py`` trains with PyTorch's)."""
        return torch_loss(self, logits, targets, weight)

    def _build(self) -> TaggerNetwork:
        return TaggerNetwork(tuple(len(v) for v in self.vocabularies_), len(self.tags_),
                             embedding_dim=self.embedding_dim, hidden_size=self.hidden_size, dropout=self.dropout)

    # -------------------------------------------------------------------------------------------- prediction
    def predict(self, sentences, *, batch_size: int = 256) -> list[list[str]]:
        """The most likely tag of each token of each sentence (lists of tokens); empty sentences stay empty."""
        if not hasattr(self, "network_"):
            raise InputValueError("this TokenTagger is not fitted yet; call fit(sentences, tags) first.")
        sentences = [list(s) for s in sentences]
        out: list[list[str]] = [[] for _ in sentences]
        kept = [i for i, s in enumerate(sentences) if s]
        self.network_.eval()
        with torch.no_grad(), torch_threads(self.num_threads):
            for start in range(0, len(kept), batch_size):
                chosen = kept[start:start + batch_size]
                batch = self._encode([sentences[i] for i in chosen])
                best = self.network_(batch.ids, batch.lengths).argmax(dim=1).numpy()
                for row, i in enumerate(chosen):
                    out[i] = [self.tags_[k] for k in best[row, :len(sentences[i])]]
        return out

    # -------------------------------------------------------------------------------------------- persistence
    def save(self, directory, *, metadata: dict | None = None) -> tuple[Path, Path]:
        """Write ``model.npz`` (the network's weights) and ``model.json`` (vocabularies, tags, parameters) into
        ``directory`` (an existing directory)."""
        directory = output_directory(directory)
        npz, meta = directory / "model.npz", directory / "model.json"
        np.savez(npz, **{name: t.detach().cpu().numpy() for name, t in self.network_.state_dict().items()})
        info = {"format": FORMAT, "version": 1, "kind": type(self).__name__, "params": self.get_params(),
                "tags": self.tags_, "vocabularies": self.vocabularies_, "loss_curve": self.loss_curve_,
                "validation_loss_curve": self.validation_loss_curve_, "metadata": metadata or {}}
        meta.write_text(json.dumps(info, indent=1))
        return npz, meta

    @classmethod
    def load(cls, directory) -> TokenTagger:
        """A tagger saved by ``save``; no pickle is read (``np.load(..., allow_pickle=False)``). Every field is
        checked (types, ranges, the vocabularies, and each array's name, shape, dtype and finiteness against the
        network the parameters build): a tampered or damaged file is an ``InputValueError``."""
        info, arrays = read_model_files(directory)
        if info.get("kind") != cls.__name__:
            raise InputValueError(f"{Path(directory) / 'model.json'} is not a saved tagger (kind "
                                  f"{info.get('kind')!r:.40}); pass a directory that TokenTagger.save wrote (a tagging "
                                  f"run's directory).")
        params, tags, vocabularies = (info.get(key) for key in ("params", "tags", "vocabularies"))
        if not isinstance(params, dict) or set(params) != set(cls.PARAMS):
            got = sorted(params) if isinstance(params, dict) else params
            raise InputValueError(f"model.json params must be exactly {list(cls.PARAMS)}, but got {got!r:.120}; "
                                  f"save the tagger again.")
        flags = [name for name, value in params.items() if isinstance(value, bool)]  # JSON true/false: no param's
        if flags:
            raise InputValueError(f"model.json params {flags[0]!r} must be a number, not true/false; save the tagger "
                                  f"again.")
        if not isinstance(tags, list) or not tags or not _distinct_strings(tags):
            raise InputValueError("model.json's tags must be a list of distinct strings; save the tagger again.")
        if not isinstance(vocabularies, list) or len(vocabularies) != 3 or not all(
                isinstance(v, list) and v[:2] == ["<pad>", "<unk>"] and _distinct_strings(v) for v in vocabularies):
            raise InputValueError("model.json's vocabularies must be three lists of distinct strings (words, shapes, "
                                  "suffixes), each starting with '<pad>', '<unk>'; save the tagger again.")
        tagger = check_params(cls(**params), "model.json params: ")
        tagger.tags_, tagger.vocabularies_ = tags, vocabularies
        tagger.tag_index_ = {t: i for i, t in enumerate(tags)}
        tagger.index_ = [{w: i for i, w in enumerate(v)} for v in vocabularies]
        tagger.loss_curve_, tagger.validation_loss_curve_ = (number_list(info, key)
                                                             for key in ("loss_curve", "validation_loss_curve"))
        # The two arrays that fix the network's sizes are checked before it is built, so nothing is allocated blindly.
        for name, shape in (("embeddings.0.weight", (len(vocabularies[0]), tagger.embedding_dim)),
                            ("lstm.weight_hh_l0", (4 * tagger.hidden_size, tagger.hidden_size))):
            if name not in arrays or arrays[name].shape != shape:
                raise InputValueError(f"model.npz does not hold the weights of this tagger: {name!r} has shape "
                                      f"{arrays[name].shape if name in arrays else None}, but the tagger needs "
                                      f"{shape}; save the tagger again.")
        tagger.network_ = tagger._build()
        load_weights(tagger.network_, arrays, "this tagger")
        tagger.n_iter_ = len(tagger.loss_curve_)
        return tagger


def _distinct_strings(values: list) -> bool:
    return all(isinstance(v, str) for v in values) and len(set(values)) == len(values)


# ------------------------------------------------------------------------------------------------ workflow
@dataclass
class TaggerResult:
    tagger: TokenTagger
    report: TaggingReport
    train_seconds: float
    n_train: int
    n_test: int


def train_tagger(train: ConllCorpus, test: ConllCorpus | None = None, *,
                 test_size: float = TRAIN_DEFAULTS["test_size"], seed: int = TRAIN_DEFAULTS["seed"],
                 **options) -> TaggerResult:
    """Fit a ``TokenTagger`` on ``train`` (tokens in the first column, IOB tags in the last) and evaluate it on
    ``test``, or, without one, on a random ``test_size`` share of the sentences of ``train``."""
    for corpus in (train, test) if test is not None else (train,):
        check_iob_columns(corpus, {-1: "last-column"})
    tokens, tags = train.tokens, train.column(-1)
    if test is not None:
        test_tokens, test_tags = test.tokens, test.column(-1)
    else:
        if not 0 < test_size < 1:
            raise InputValueError(f"test_size must be in (0, 1), but got {test_size}.")
        order = np.random.default_rng(seed).permutation(len(tokens))
        n_test = max(1, round(len(tokens) * test_size))
        if n_test >= len(tokens):
            raise InputValueError(f"{train.name} has {len(tokens)} sentence(s); holding out {test_size:g} of them "
                                  f"leaves none to train on. Pass held-out sentences as `test`, or more sentences.")
        test_tokens, test_tags = [tokens[i] for i in order[:n_test]], [tags[i] for i in order[:n_test]]
        tokens, tags = [tokens[i] for i in order[n_test:]], [tags[i] for i in order[n_test:]]
    options = {k: v for k, v in options.items() if v is not None}
    tagger = TokenTagger(random_state=seed, **options)
    start = time.perf_counter()
    tagger.fit(tokens, tags)
    seconds = time.perf_counter() - start
    report = evaluate_tagging(test_tags, tagger.predict(test_tokens))
    return TaggerResult(tagger, report, seconds, len(tokens), len(test_tokens))


def write_tagger_run(directory, result: TaggerResult, *, metadata: dict | None = None) -> list[str]:
    """Write ``metrics.json`` (both reports, sizes, time, loss curves), ``model.npz`` + ``model.json`` and
    ``loss_curve.png`` into ``directory``; return the names written."""
    from .. import plots

    directory = Path(directory)
    tagger = result.tagger
    metrics = {**result.report.to_dict(), "model": "tagger", "train_seconds": result.train_seconds,
               "n_train": result.n_train, "n_test": result.n_test, "epochs": tagger.n_iter_, "tags": tagger.tags_,
               "loss_curve": tagger.loss_curve_, "validation_loss_curve": tagger.validation_loss_curve_,
               **(metadata or {})}
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2))
    tagger.save(directory, metadata=metadata)
    loss_name = "focal loss" if getattr(tagger, "loss", None) == "focal" else "cross-entropy"
    plot = plots.save(plots.loss_curve(tagger.loss_curve_, tagger.validation_loss_curve_, loss_name=loss_name),
                      directory / "loss_curve.png")
    return ["metrics.json", "model.npz", "model.json", plot.name]


def tag_file(model, path, out=None, *, overwrite: bool = False, encoding: str = DEFAULT_ENCODING
             ) -> list[list[tuple[str, ...]]]:
    """Tag ``path`` with ``model``, a fitted ``TokenTagger`` (such as ``persist.load_model`` returns for a tagger
    run) or the run directory of a saved one. A ``.txt`` file is plain text (one sentence per line), anything else
    CoNLL (tokens in the first column), either decoded with ``encoding``. Returns the sentences as CoNLL rows, each
    row the input's columns (or the token) plus the predicted tag, so tagging a gold-tagged CoNLL file gives the
    layout of ``crossentropy eval --conll``. With ``out``, also writes them there (an existing file only if
    ``overwrite``)."""
    tagger = model if isinstance(model, TokenTagger) else TokenTagger.load(model)
    path = Path(path)
    if path.suffix.lower() == ".txt":
        rows = [[(token,) for token in sentence] for sentence in read_text(path, encoding=encoding)]
    else:
        rows = read_conll(path, min_columns=1, what="a token first", encoding=encoding).sentences
    predicted = tagger.predict([[row[0] for row in sentence] for sentence in rows])
    tagged = [[(*row, tag) for row, tag in zip(sentence, tags, strict=True)]
              for sentence, tags in zip(rows, predicted, strict=True)]
    if out is not None:
        write_conll(out, tagged, overwrite=overwrite)
    return tagged
