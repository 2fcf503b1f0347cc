"""The ``crossentropy`` command: a thin shell over the library.

    crossentropy train --data digits            train, evaluate and explain; write a run directory
    crossentropy train --task tagging --data F  train a token tagger on a CoNLL file
    crossentropy predict --model RUN --data F   a saved model's predictions for the rows of a table
    crossentropy eval --proba P --labels Y      evaluate another model's predictions
    crossentropy eval --conll FILE              token and entity reports of tagged text (gold, predicted)
    crossentropy calibrate --logits Z --labels Y   fit a temperature (temperature scaling)
    crossentropy info --p 1,0 --q 0.7,0.3       entropy, cross-entropy and KL of two distributions
    crossentropy perplexity NLL.npy --text T    perplexity, bits per token and per byte of per-token NLLs
    crossentropy bench [--quick]                run the benchmark suite

Bad input (the library's ``InputError``) and command-line mistakes become one line on stderr and exit status 2;
anything else is a bug and shows its traceback. Warnings print as one line each. Existing files are never
overwritten without ``--force``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import re
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np

from . import __version__
from .core._inputs import unit_name
from .core.information import cross_entropy, entropy, kl_divergence
from .core.jsonio import to_json
from .core.textio import DEFAULT_ENCODING, check_file
from .rules.errors import InputError

LEARN_MODULES = {"sklearn", "scipy", "pandas", "matplotlib", "rich", "pyarrow"}


# What each neural task trains, and the options that would be ignored there.
REFUSED_WITH_TASK = {
    "tagging": (("--model", "--target", "--log-dir"), "it trains a BiLSTM tagger on the CoNLL file's last column, "
                                                       "without TensorBoard logging"),
    "text": (("--model", "--log-dir"), "it trains a fastText-style classifier of one text column, without "
                                      "TensorBoard logging"),
}


# The library's messages name a parameter in backticks (`labels_column`, `encoding='latin-1'`); the command shows
# each as its flag: the parameter's name with dashes (labels_column: --labels-column), or this table's flag where
# the two names differ.
FLAG_OF = {"learning_rate": "--lr", "max_epochs": "--epochs", "text_columns": "--text", "text_column": "--text",
           "categorical_columns": "--categorical", "drop_columns": "--drop", "n_bytes": "--bytes",
           "overwrite": "--force", "y_true": "--labels"}
PARAMETER = re.compile(r"`(\w+)(?:=([^`]*))?`")


def as_flags(message: str, args=None) -> str:
    """``message`` with each backticked parameter shown as the command's flag, ``name=value`` as ``--flag value``
    (``--flag`` alone for True); a parameter the command (``args``, when given) has no flag for keeps its name.

    >>> as_flags("give its encoding, such as `encoding='latin-1'`; or pass `labels_column`")
    'give its encoding, such as --encoding latin-1; or pass --labels-column'
    """
    def flag(match) -> str:
        name, value = match.groups()
        option = FLAG_OF.get(name, "--" + name.replace("_", "-"))
        if args is not None and not hasattr(args, option[2:].replace("-", "_")):
            return name if value is None else f"{name}={value}"
        return option if value in (None, "True") else f"{option} {value.strip(chr(39) + chr(34))}"
    return PARAMETER.sub(flag, message)


class UsageError(Exception):
    """A command-line mistake, reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):  # a prefix of an option is a typo, not the option: --dat is refused
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):  # argparse prints usage over several lines; keep it to one
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _positive(kind):
    """An argparse type: a number of ``kind`` that is > 0 (0 is refused, never replaced by a default)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, but got {text!r}") from None
        if not value > 0 or not np.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a positive {kind.__name__}, but got {text!r}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _log_base(text: str) -> float:
    """An argparse type: a logarithm base, any number > 0 other than 1 (2: bits, 10: hartleys)."""
    value = _positive(float)(text)
    if value == 1:
        raise argparse.ArgumentTypeError("a log base must not be 1 (use 2 for bits, or leave it out for nats)")
    return value


@contextlib.contextmanager
def _needs_learn(command: str):
    """Turn a missing scikit-learn/pandas/... (a core-only install) into one line that says what to install."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in LEARN_MODULES:
            raise
        raise UsageError(f"crossentropy {command} needs the learn extra ({exc.name} is not installed): "
                         f"pip install 'crossentropy[learn]'") from None


def _floats(text: str) -> np.ndarray:
    try:
        return np.array([float(v) for v in text.split(",")], dtype=np.float64)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.5,0.5, but got {text!r}") \
            from None


# ------------------------------------------------------------------------------------------------ info
def cmd_info(args) -> int:
    kw = {"base": args.base, "normalize": args.normalize}
    h_p = float(entropy(args.p, **kw))
    h_pq = float(cross_entropy(args.p, args.q, **kw))
    kl = float(kl_divergence(args.p, args.q, **kw))
    unit = unit_name(args.base)
    if args.json:
        print(to_json({"entropy": h_p, "cross_entropy": h_pq, "kl_divergence": kl, "unit": unit, "base": args.base}))
        return 0
    print(f"H(P)      = {h_p:.4f} {unit}")
    print(f"H(P, Q)   = {h_pq:.4f} {unit}")
    print(f"KL(P||Q)  = {kl:.4f} {unit}")
    print(f"identity  H(P, Q) = H(P) + KL(P||Q):  {h_pq:.4f} = {h_p:.4f} + {kl:.4f}")
    return 0


# ------------------------------------------------------------------------------------------------ perplexity
def cmd_perplexity(args) -> int:
    from .core.perplexity import perplexity_report

    report = perplexity_report(args.file, column=args.column, logprobs=True if args.logprobs else None,
                               n_bytes=args.bytes, text=args.text, ci=args.ci)
    if args.json:
        print(to_json(report))
        return 0
    print(f"tokens          {report['tokens']}")
    for key in ("perplexity", "bits_per_token", "bits_per_byte"):
        value = report[key]
        band = report.get("ci", {}).get(key)
        interval = f"  [{band[0]:.6g}, {band[1]:.6g}] ({report['ci']['level']:g} CI)" if band else ""
        print(f"{key.replace('_', ' '):16s}{'n/a (give --bytes or --text)' if value is None else f'{value:.6g}'}"
              f"{interval}")
    return 0


# ------------------------------------------------------------------------------------------------ output dirs
def _new_run_dir(args) -> tuple[Path, bool]:
    """``--out`` (refused if it exists and is not empty, unless --force), or a fresh
    ``runs/<data>-<model>-<timestamp>`` with a numeric suffix if that exists; and whether it was created here."""
    if args.out:
        out = Path(args.out)
        inputs = (("--data", args.data), ("--test", args.test))
        _refuse_inputs([out], inputs)
        for flag, path in inputs:
            if path is not None and os.path.exists(path) and out.resolve() in Path(path).resolve().parents:
                raise UsageError(f"--out {out} holds {flag} {path}, which this command reads; choose another --out "
                                 f"(--force never writes over an input)")
        if out.is_dir() and any(out.iterdir()) and not args.force:  # a file: refused by _writable_dir
            raise UsageError(f"--out {out} already exists and is not empty; choose a new directory, or pass --force "
                             f"to write into it")
    else:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path("runs") / f"{Path(args.data).stem}-{args.model}-{stamp}"
        out, n = base, 1
        while out.exists():
            n += 1
            out = base.with_name(f"{base.name}-{n}")
    created = not out.exists()
    return _writable_dir(out), created


def _writable_dir(out: Path, flag: str = "--out") -> Path:
    """Create ``out`` (the directory of ``flag``) if needed and prove it writable, before any work is done."""
    if os.path.lexists(out) and not out.is_dir():
        raise UsageError(f"{flag} {out} is a file, not a directory; {flag} names the directory to write: choose "
                         f"a new one")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".crossentropy-write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return out


def _refuse_inputs(outputs, files=(), runs=()) -> None:
    """Refuse to write any of ``outputs`` that is a file the command reads (``files``: (flag, path) pairs) or lies
    inside a run directory it reads (``runs``: (flag, directory) pairs), with ``--force`` or without. Paths compare
    as real paths (links and ``..`` resolved; ``os.path.samefile`` for hard links)."""
    for out in outputs:
        target = Path(out).resolve()
        for flag, path in files:
            if path is not None and (target == Path(path).resolve() or _same_file(out, path)):
                raise UsageError(f"--out {out} is {flag} {path}, which this command reads; choose another --out "
                                 f"(--force never replaces an input)")
        for flag, path in runs:
            if path is not None and Path(path).resolve() in (target, *target.parents):
                raise UsageError(f"--out {out} is inside {flag} {path}, which this command reads; choose another "
                                 f"--out (--force never writes into an input)")


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # either does not exist (yet)
        return False


def _refuse_existing(directory: Path, names: list[str], force: bool) -> None:
    """Refuse to touch files (or links, even dangling ones) already there, unless ``force``; with ``force``, a
    link is removed, so the new file replaces the link instead of being written through it."""
    clash = [n for n in names if os.path.lexists(directory / n)]
    if clash and not force:
        raise UsageError(f"{directory} already holds {', '.join(clash)}; choose another --out or pass --force")
    for n in clash:
        if (directory / n).is_symlink():
            (directory / n).unlink()


# ------------------------------------------------------------------------------------------------ train
def _progress(quiet: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("epochs"),
                    TextColumn("{task.fields[losses]}"), TimeElapsedColumn(), disable=quiet, transient=False)


def _epoch_display(progress, total: int):
    """A training callback ``(epoch, train_loss, validation_loss)`` that advances a bar of ``progress``."""
    task = progress.add_task("train", total=total, losses="")

    def on_epoch(epoch, train_loss, val_loss):
        shown = f"train {train_loss:.4f}" + (f"  val {val_loss:.4f}" if val_loss is not None else "")
        progress.update(task, completed=epoch, losses=shown + " nats")
    return on_epoch


@contextlib.contextmanager
def _run_directory(args):
    """A new run directory (``_new_run_dir``), removed again if the run fails: a failed run leaves nothing behind."""
    out, created = _new_run_dir(args)
    with _removed_on_failure(out, created):
        yield out


@contextlib.contextmanager
def _removed_on_failure(directory: Path, created: bool):
    """``directory``, removed again (when ``created`` here) if the block fails."""
    try:
        yield directory
    except BaseException:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        raise


def _train_tagging(args) -> int:
    from .learn.io.conll import read_conll

    train_data = read_conll(args.data, encoding=args.encoding)
    test_data = read_conll(args.test, encoding=args.encoding) if args.test else None
    args.model = "tagger"  # names the run directory
    with _run_directory(args) as out:
        return _train_tagger_into(args, train_data, test_data, out)


def _train_tagger_into(args, train_data, test_data, out: Path) -> int:
    from .learn.models.tagger import TokenTagger, train_tagger, write_tagger_run
    from .learn.tracking import run_versions

    held_out = f"test: {args.test}" if args.test else f"holding out {args.test_size:g} of the sentences"
    print(f"{train_data.name}: {len(train_data.sentences)} sentences, {train_data.n_tokens} tokens; {held_out}; "
          f"BiLSTM tagger, loss {args.loss}; writing to {out}")
    with _progress(args.quiet) as progress:
        on_epoch = _epoch_display(progress, args.epochs or TokenTagger().epochs)
        result = train_tagger(train_data, test_data, test_size=args.test_size, callback=on_epoch,
                              **_train_options(args))
    print(f"\ntrained on {result.n_train} sentences in {result.train_seconds:.2f} s; test set: {result.n_test} "
          f"sentences\n")
    print(result.report.to_text())
    written = write_tagger_run(out, result, metadata={"data": str(args.data), "test": args.test,
                                                      "versions": run_versions(torch=True),
                                                      "command": ["crossentropy", *args.argv]})
    print(f"\nwrote {', '.join(written)} to {out}")
    return 0


def cmd_train(args) -> int:
    for flag, path in (("--data", args.data), ("--test", args.test)):  # fail fast, before the heavy imports
        if path is not None and Path(path).suffix:
            check_file(path, flag)
    if args.task in REFUSED_WITH_TASK:
        refused, why = REFUSED_WITH_TASK[args.task]
        given = [flag for flag in refused if getattr(args, flag[2:].replace("-", "_")) is not None]
        if given:
            raise UsageError(f"crossentropy train: {', '.join(given)} cannot be combined with --task {args.task} "
                             f"({why})")
    if args.task == "tagging":
        return _train_tagging(args)
    with _needs_learn("train"):
        from .learn.io.data import load_dataset
        from .learn.workflow import DEFAULT_MODEL, check_trainable

        data = load_dataset(args.data, args.target, encoding=args.encoding)
        test = load_dataset(args.test, args.target, "--test", encoding=args.encoding) if args.test else None
        if args.task == "text":
            return _train_text(args, data, test)
        args.model = args.model or DEFAULT_MODEL
        note = check_trainable(data, args.model, args.test_size, test=test, **_train_options(args),
                               **_table_options(args))
    _check_log_dir(args.log_dir)
    with _run_directory(args) as out, _tensorboard(args.log_dir) as tensorboard:
        return _train(args, data, out, tensorboard, test, note)


def _table_options(args) -> dict:
    return {"text_columns": args.text, "categorical_columns": args.categorical, "drop_columns": args.drop,
            "max_features": args.max_features}


def _train_text(args, data, test) -> int:
    from .learn.models.text_model import FastTextClassifier, check_text_data, train_text_classifier, write_text_run
    from .learn.tracking import run_versions

    column = check_text_data(data, args.text, test)
    args.model = "fasttext"  # names the run directory
    with _run_directory(args) as out:
        held_out = f"test: {args.test}" if args.test else f"holding out {args.test_size:g} of the rows"
        print(f"{data.name}: {len(data.y)} texts (column {column!r}), {len(np.unique(data.y))} classes; {held_out}; "
              f"fastText-style classifier, loss {args.loss}; writing to {out}")
        with _progress(args.quiet) as progress:
            on_epoch = _epoch_display(progress, args.epochs or FastTextClassifier().epochs)
            result = train_text_classifier(data, test, text_column=column, test_size=args.test_size, seed=args.seed,
                                           callback=on_epoch, **{k: v for k, v in _train_options(args).items()
                                                                 if k != "seed"})
        _print_result(args, result)
        metrics = {**result.report.to_dict(), **result.explanation, "hardest_examples": result.hardest,
                   "dataset": data.name, "model": "fasttext", "train_seconds": result.train_seconds,
                   "n_train": result.n_train, "n_test": result.n_test, "epochs": result.model.n_iter_,
                   "best_epoch": result.model.best_epoch_,
                   "loss_curve": result.model.loss_curve_, "validation_loss_curve": result.model.validation_loss_curve_,
                   "versions": run_versions(torch=True), "command": ["crossentropy", *args.argv]}
        (out / "metrics.json").write_text(to_json(metrics, indent=2))
        written = write_text_run(out, result, metadata={"dataset": data.name, "features": [column]})
        print(f"\nwrote {', '.join(['metrics.json', *written])} to {out}")
    return 0


def _print_result(args, result) -> None:
    """The report, the hardest test examples and, for text, the n-grams that push each class most."""
    from .learn.metrics.explain import format_hardest

    report = result.report
    print(report.to_text(base=args.base))
    print(f"{'accuracy':26s}{report.accuracy:.4f}\n")
    print("hardest test examples (highest cross-entropy):")
    print(format_hardest(result.hardest))
    for label, grams in result.explanation.get("top_ngrams", {}).items():
        print(f"n-grams that push {label!s:>10s} most: " + ", ".join(f"{g['ngram']} ({g['score']:+.2f})"
                                                                      for g in grams[:8]))


def _train_options(args) -> dict:
    """The training options as the library's parameters (``NO_CLASS_WEIGHT`` is None)."""
    return {"loss": args.loss, "label_smoothing": args.label_smoothing, "optimizer": args.optimizer,
            "class_weight": None if args.class_weight == NO_CLASS_WEIGHT else args.class_weight,
            "learning_rate": args.lr, "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed}


def _train(args, data, out: Path, tensorboard, test, note: str) -> int:
    from .learn.models.persist import save_model
    from .learn.tracking import run_versions
    from .learn.workflow import epoch_budget, train

    total = epoch_budget(args.model, args.epochs)
    print(f"{data.name}: {data.X.shape[0]} samples, {data.X.shape[1]} features, {len(np.unique(data.y))} classes; "
          f"model {args.model}, loss {args.loss}; writing to {out}")
    note = as_flags(note, args)
    print(note)
    with _progress(args.quiet) as progress:
        task = progress.add_task("train", total=total, losses="")

        def on_epoch(epoch, train_loss, val_loss):
            shown = f"train {train_loss:.4f}" + (f"  val {val_loss:.4f}" if val_loss is not None else "")
            progress.update(task, completed=epoch, losses=shown + " nats")
            if tensorboard is not None:
                tensorboard.epoch(epoch, train_loss, val_loss)

        result = train(data, model=args.model, test_size=args.test_size, test=test, callback=on_epoch,
                       **_train_options(args), **_table_options(args))
    clf = result.classifier
    report = result.report
    stopped = f" (early stop at epoch {clf.n_iter_}, best validation loss {clf.best_loss_:.4f})" \
        if args.model != "cnn" and clf.n_iter_ < total else ""
    print(f"\ntrained on {result.n_train} samples in {result.train_seconds:.2f} s{stopped}; "
          f"test set: {result.n_test} samples\n")
    _print_result(args, result)
    metrics = {**report.to_dict(), **result.explanation, "hardest_examples": result.hardest, "columns": note,
               "dataset": data.name, "model": args.model,
               "train_seconds": result.train_seconds, "epochs": int(clf.n_iter_), "n_train": result.n_train,
               "n_test": result.n_test, "loss_curve": list(clf.loss_curve_),
               "validation_loss_curve": list(clf.validation_loss_curve_),
               "versions": run_versions(torch=args.model == "cnn"), "command": ["crossentropy", *args.argv]}
    (out / "metrics.json").write_text(to_json(metrics, indent=2))
    if tensorboard is not None:
        tensorboard.final(metrics, int(clf.n_iter_))
        tensorboard.close()
    save_model(result.model, out, metadata={"dataset": data.name, "features": data.feature_names})
    written = ["metrics.json", "model.npz", "model.json"] + [p.name for p in report.plot(out, estimator=clf)]
    print(f"\nwrote {', '.join(written)} to {out}" + (f"; TensorBoard scalars to {args.log_dir}" if args.log_dir
                                                          else ""))
    return 0


def _check_log_dir(log_dir) -> None:
    """``--log-dir`` refused before any work: a missing extra, or a path that is not a directory."""
    if log_dir is None:
        return
    from .learn.tracking import summary_writer_class

    try:
        summary_writer_class()
    except ImportError as exc:
        raise UsageError(f"--log-dir: {exc}") from None
    if os.path.lexists(log_dir) and not os.path.isdir(log_dir):
        raise UsageError(f"--log-dir {log_dir} exists and is not a directory; pass a directory for the TensorBoard "
                         f"logs")


@contextlib.contextmanager
def _tensorboard(log_dir):
    """The TensorBoard log for ``--log-dir`` (None without it), created after the run directory (so that it may lie
    inside ``--out``) and removed again, when created here, if the run fails."""
    if log_dir is None:
        yield None
        return
    from .learn.tracking import TensorBoardLog

    created = not os.path.lexists(log_dir)
    with _removed_on_failure(Path(log_dir), created):
        yield TensorBoardLog(_writable_dir(Path(log_dir), "--log-dir"))


# ------------------------------------------------------------------------------------------------ predict
def cmd_predict(args) -> int:
    if args.out is not None:
        _refuse_inputs([args.out], [("--data", args.data)], [("--model", args.model)])
    with _needs_learn("predict"):
        from .learn.models.persist import load_model
        from .learn.workflow import predict_file

        model = load_model(args.model)
        if type(model).__name__ == "TokenTagger":  # a tagger run: CoNLL (or plain text) in, CoNLL out
            from .learn.io.conll import format_conll
            from .learn.models.tagger import tag_file

            sentences = tag_file(model, args.data, encoding=args.encoding)
            text, what = format_conll(sentences), f"{len(sentences)} tagged sentences"
        else:
            table = predict_file(model, args.data, encoding=args.encoding)
            text, what = table.to_csv(index=False), f"{len(table)} predictions"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    if os.path.lexists(out) and not args.force:
        raise UsageError(f"--out {out} already exists; choose a new file, or pass --force to replace it")
    _refuse_existing(out.parent, [out.name], force=True)  # with --force: a link is replaced, not written through
    try:
        with open(out, "w" if args.force else "x", newline="") as handle:  # "x": never overwrite
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write --out {out}: {exc.strerror or exc}") from None
    print(f"wrote {what} to {out}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------------ eval
def _eval_conll(args) -> int:
    from .learn.metrics.tagging import evaluate_conll

    unused = [flag for flag, value in (("--proba", args.proba), ("--labels", args.labels), ("--logits", args.logits),
                                       ("--labels-column", args.labels_column), ("--per-class", args.per_class),
                                       ("--out", args.out), ("--base", args.base)) if value]
    if unused:
        raise UsageError(f"crossentropy eval: {', '.join(unused)} cannot be combined with --conll")
    report = evaluate_conll(args.conll, scheme=args.scheme, encoding=args.encoding)
    print(to_json(report.to_dict()) if args.json else report.to_text())
    return 0


def cmd_eval(args) -> int:
    if args.conll:
        return _eval_conll(args)
    flag, source = ("--logits", args.logits) if args.logits else ("--proba", args.proba)
    if source is None or args.labels is None:
        raise UsageError("crossentropy eval: --proba (or --logits) and --labels are required (or --conll FILE for "
                         "tagging)")
    names = ["reliability.png", "confusion_matrix.png"] + (["reliability_per_class.png"] if args.per_class else [])
    if args.out:  # before reading: --force never replaces an input
        _refuse_inputs([Path(args.out) / n for n in names], [(flag, source), ("--labels", args.labels)])
    with _needs_learn("eval"):
        from .learn.io.data import load_predictions
        from .learn.metrics.calibration import apply_temperature
        from .learn.metrics.evaluate import evaluate, labels_from_columns

        scores, columns, labels = load_predictions(source, args.labels, labels_column=args.labels_column, name=flag,
                                                   encoding=args.encoding)
        scores = _numbers(scores, flag, source)
        if args.logits:
            scores = apply_temperature(1.0, logits=scores)  # softmax, or sigmoid of a 1-D binary logit
        classes = None
        if columns is not None and scores.ndim == 2:
            classes = labels_from_columns(columns, labels, flag)
        report = evaluate(labels, scores, labels=classes)
    if args.out:
        out = Path(args.out)
        _refuse_existing(out, names, args.force)
        _writable_dir(out)
    if args.json:
        print(to_json(report.to_dict()))
    else:
        print(report.to_text(base=args.base))
        print(f"{'accuracy':26s}{report.accuracy:.4f}")
    if args.out:
        paths = report.plot(args.out, per_class=args.per_class)
        print(f"wrote {', '.join(p.name for p in paths)} to {args.out}", file=sys.stderr if args.json else sys.stdout)
    return 0


# ------------------------------------------------------------------------------------------------ calibrate
def cmd_calibrate(args) -> int:
    with _needs_learn("calibrate"):
        from .learn.io.data import PREDICTED, load_array, load_predictions, write_probabilities
        from .learn.metrics.calibration import apply_temperature, calibrate
        from .learn.metrics.evaluate import labels_from_columns

    flag, source = ("--logits", args.logits) if args.logits else ("--proba", args.proba)
    scores, columns, labels = load_predictions(source, args.labels, labels_column=args.labels_column, name=flag,
                                               encoding=args.encoding)
    classes = labels_from_columns(columns, labels, flag) if columns is not None and scores.ndim == 2 else None
    if (args.apply is None) != (args.out is None):
        raise UsageError("--apply and --out go together: --apply FILE --out FILE writes FILE's calibrated "
                         "probabilities")
    if args.out:
        _refuse_inputs([args.out], [(flag, source), ("--labels", args.labels), ("--apply", args.apply)])
    if args.out and Path(args.out).exists() and not args.force:
        raise UsageError(f"--out {args.out} already exists; choose a new file, or pass --force to overwrite it")
    if args.out and Path(args.out).suffix.lower() not in (".csv", ".npy"):
        raise UsageError(f"--out {args.out}: use a .csv or .npy file name")
    kind = "logits" if args.logits else "proba"
    result = calibrate(labels, labels=classes, **{kind: _numbers(scores, flag, source)})
    if args.apply:
        other, names = load_array(args.apply, "--apply", ignore=(PREDICTED,), encoding=args.encoding)
        other = _numbers(other, "--apply", args.apply)
        if other.ndim != scores.ndim or (other.ndim == 2 and other.shape[1] != scores.shape[1]):
            raise UsageError(f"--apply {args.apply} has shape {other.shape}, but {flag} {source} has "
                             f"{scores.shape[1] if scores.ndim == 2 else 1} column(s) per row; give it the same")
        if names is not None and other.ndim == 2:  # columns by name, as for --proba; unknown names are refused
            order = labels_from_columns(names, labels, "--apply")
            if set(order) != set(result.labels):
                raise UsageError(f"--apply {args.apply} has columns {names}, but the classes are "
                                 f"{[str(c) for c in result.labels]}; name each column by one of them")
            other = other[:, [order.index(c) for c in result.labels]]
        _writable_dir(Path(args.out).parent)
        write_probabilities(apply_temperature(result.temperature, **{kind: other}), result.labels, args.out)
    if args.json:
        print(to_json(result.to_dict()))
    else:
        print(result.to_text())
    if args.out:
        print(f"wrote calibrated probabilities of {args.apply} to {args.out}", file=sys.stderr if args.json
              else sys.stdout)
    return 0


def _numbers(array: np.ndarray, flag: str, source: str) -> np.ndarray:
    if array.dtype.kind not in "fiu":
        raise UsageError(f"{flag} must hold numbers, but {source} holds {array.dtype} values")
    return array.astype(np.float64)


# ------------------------------------------------------------------------------------------------ bench
def cmd_bench(args) -> int:
    import subprocess

    folder = Path(__file__).resolve().parents[2] / "benchmarks"
    if not (folder / "bench_core.py").exists():
        raise UsageError("the benchmark suite ships with the source checkout (benchmarks/); run this from a clone")
    runs = [["bench_core.py", "--quick"], ["bench_learn.py", "--rounds", "1"], ["bench_linear.py", "--quick"],
            ["bench_text.py", "--quick"]] \
        if args.quick else [["bench_core.py"], ["bench_learn.py"], ["bench_linear.py"], ["bench_text.py"]]
    for script in runs:
        print(f"== {' '.join(script)}", flush=True)
        code = subprocess.run([sys.executable, *script], cwd=folder).returncode
        if code:
            return code
    return 0


# ------------------------------------------------------------------------------------------------ parser
# The parser is built from the library's own names and defaults (crossentropy.learn.choices, a module that loads
# neither scikit-learn nor torch); an option left out is None, "the library's default", where that default depends
# on the model (epochs, learning rate, batch size).
NO_CLASS_WEIGHT = "none"  # the command line's spelling of class_weight=None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="crossentropy", description="Cross-entropy done right: train, evaluate, explain.")
    parser.add_argument("--version", action="version", version=f"crossentropy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_train, _add_eval, _add_calibrate, _add_predict, _add_info, _add_perplexity, _add_bench):
        add(sub)
    return parser


def _add_train(sub) -> None:
    from .learn.choices import DATASETS, TASKS, TRAIN_DEFAULTS

    train = sub.add_parser("train", help="train a classifier with cross-entropy, then report and explain it",
                           description=f"Train on a bundled data set or a CSV/Parquet file, evaluate on a held-out "
                                       f"{TRAIN_DEFAULTS['test_size']:.0%}, and write metrics.json, the model (npz "
                                       f"+ json) and plots.")
    train.add_argument("--task", choices=TASKS, default=TRAIN_DEFAULTS["task"],
                       help="text: a fastText-style neural classifier of one text column (needs torch); tagging: a "
                            "token tagger on CoNLL files (--data train.conll [--test test.conll])")
    train.add_argument("--data", default=TRAIN_DEFAULTS["data"],
                       help=f"{', '.join(DATASETS)}, or a .csv/.tsv/.parquet path (default: %(default)s); with "
                            f"--task tagging, a .conll file")
    train.add_argument("--test", metavar="FILE", help="held-out file to evaluate on, instead of --test-size of "
                                                      "--data (a table, or CoNLL for --task tagging)")
    train.add_argument("--target", help="the label column, for a CSV/Parquet file")
    train.add_argument("--text", metavar="COL", action="append",
                       help="treat this column as free text (TF-IDF of word and character n-grams); repeatable")
    train.add_argument("--categorical", metavar="COL", action="append",
                       help="treat this column as categorical (one-hot), whatever it looks like; repeatable")
    train.add_argument("--drop", metavar="COL", action="append", help="leave this column out; repeatable")
    train.add_argument("--max-features", type=_positive(int), default=TRAIN_DEFAULTS["max_features"], metavar="N",
                       help="the most n-grams kept per text column (default: %(default)s)")
    _add_training_options(train, TRAIN_DEFAULTS)
    train.add_argument("--base", type=_log_base, help="log base to report cross-entropy in first (2: bits)")
    train.add_argument("--out", help="run directory (default: runs/<data>-<model>-<timestamp>)")
    train.add_argument("--force", action="store_true", help="write into an existing, non-empty --out")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--log-dir", metavar="DIR",
                       help="write TensorBoard scalars here (needs the tensorboard extra; classification only)")
    _encoding_option(train)
    train.set_defaults(func=cmd_train)


def _add_training_options(train, defaults: dict) -> None:
    """The model and its training: each choice list and default is the library's."""
    from .learn.choices import CLASS_WEIGHTS, DEFAULT_MODEL, LOSSES, MODELS, OPTIMIZERS

    train.add_argument("--model", choices=MODELS,
                       help=f"softmax regression, an MLP, or a small CNN for digits (needs torch); default: "
                            f"{DEFAULT_MODEL}; not with --task tagging")
    train.add_argument("--loss", choices=LOSSES, default=defaults["loss"],
                       help="the training loss: cross_entropy, or focal (down-weights easy examples); default: "
                            "%(default)s")
    train.add_argument("--label-smoothing", type=float, default=defaults["label_smoothing"], metavar="E",
                       help="mix the one-hot targets with the uniform distribution: (1 - E) one-hot + E / K "
                            "(default: %(default)s)")
    train.add_argument("--class-weight", choices=(NO_CLASS_WEIGHT, *CLASS_WEIGHTS),
                       default=defaults["class_weight"] or NO_CLASS_WEIGHT,
                       help="per-class loss weights: none, balanced (inverse class frequency), or effective_number "
                            "(class-balanced loss); default: %(default)s")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults["optimizer"],
                       help="the optimizer (default: %(default)s)")
    train.add_argument("--lr", type=_positive(float), help="learning rate (default: the model's own for its "
                                                           "optimizer)")
    train.add_argument("--epochs", type=_positive(int), help="maximum epochs (default: the model's own)")
    train.add_argument("--batch-size", type=_positive(int), help="mini-batch size (default: the model's own)")
    train.add_argument("--seed", type=int, default=defaults["seed"],
                       help="random seed of the split, the initial weights and the batches (default: %(default)s)")
    train.add_argument("--test-size", type=float, default=defaults["test_size"],
                       help="held-out share (default: %(default)s)")


def _add_eval(sub) -> None:
    from .learn.choices import SCHEMES, TAGGING_DEFAULTS

    ev = sub.add_parser("eval", help="evaluate predicted probabilities against labels",
                        description="Report cross-entropy (nats and bits), accuracy, Brier score, ECE, the confusion "
                                    "matrix and the classification report for another model's predictions.")
    scores = ev.add_mutually_exclusive_group()
    scores.add_argument("--proba", metavar="FILE", help="N x K probabilities, or N for binary (.csv, .tsv, .npy, "
                                                        ".parquet); a header names each column's class ('predicted', "
                                                        "as crossentropy predict writes it, is skipped)")
    scores.add_argument("--logits", metavar="FILE", help="instead: N x K logits, or N for binary; softmax (sigmoid "
                                                         "if 1-D) makes them probabilities")
    ev.add_argument("--labels", help="N true labels (.csv, .npy, .parquet)")
    ev.add_argument("--labels-column", help="the column of --labels that holds the labels, when it has several")
    ev.add_argument("--conll", metavar="FILE", help="instead: a CoNLL file whose last two columns are the gold and "
                                                    "predicted tags; prints the token and entity reports")
    ev.add_argument("--scheme", choices=SCHEMES, default=TAGGING_DEFAULTS["scheme"],
                    help="the tag scheme of --conll (default: %(default)s)")
    ev.add_argument("--json", action="store_true", help="print the metrics as JSON")
    ev.add_argument("--out", help="write reliability.png and confusion_matrix.png here")
    ev.add_argument("--force", action="store_true", help="overwrite plots already in --out")
    ev.add_argument("--per-class", action="store_true", help="also write reliability_per_class.png to --out")
    ev.add_argument("--base", type=_log_base, help="log base to report cross-entropy in first (2: bits)")
    _encoding_option(ev)
    ev.set_defaults(func=cmd_eval)


def _add_calibrate(sub) -> None:
    cal = sub.add_parser("calibrate", help="fit a temperature to a model's outputs (temperature scaling)",
                         description="Fit the temperature T minimising the cross-entropy of softmax(logits / T) "
                                     "(from probabilities: logits = log p) against the labels; print T, and log "
                                     "loss and ECE before and after. --apply writes another file's calibrated "
                                     "probabilities.")
    scores = cal.add_mutually_exclusive_group(required=True)
    scores.add_argument("--logits", help="N x K logits, or N for binary (.csv, .npy, .parquet)")
    scores.add_argument("--proba", help="N x K probabilities, or N for binary P(positive)")
    cal.add_argument("--labels", required=True, help="N true labels (.csv, .tsv, .npy, .parquet)")
    cal.add_argument("--labels-column", help="the column of --labels that holds the labels, when it has several")
    cal.add_argument("--json", action="store_true", help="print the result as JSON")
    cal.add_argument("--apply", help="logits or probabilities (the same kind as above) to calibrate with T")
    cal.add_argument("--out", help="where --apply writes probabilities (.csv with class-label columns, or .npy)")
    cal.add_argument("--force", action="store_true", help="overwrite --out (never a file this command reads)")
    _encoding_option(cal)
    cal.set_defaults(func=cmd_calibrate)


def _add_predict(sub) -> None:
    pr = sub.add_parser("predict", help="a saved model's predictions for the rows of a table",
                        description="Apply the model of a run directory (written by 'crossentropy train') to a "
                                    "CSV/Parquet table, matching its columns by name (extra columns are ignored), "
                                    "and write a CSV: a 'predicted' column, then one probability column per class. "
                                    "A tagger run (train --task tagging) tags a CoNLL or plain-text (.txt) file "
                                    "and writes CoNLL: the input's columns plus the predicted tag.")
    pr.add_argument("--model", required=True, help="a run directory holding model.json and model.npz")
    pr.add_argument("--data", required=True, help="a .csv, .tsv or .parquet table with the model's feature columns; "
                                                  "for a tagger run, a .conll file or a .txt file (one sentence per "
                                                  "line)")
    pr.add_argument("--out", help="the CSV to write (default: standard output)")
    pr.add_argument("--force", action="store_true", help="overwrite --out if it exists (never --data, nor a file "
                                                         "in --model)")
    _encoding_option(pr)
    pr.set_defaults(func=cmd_predict)


def _add_info(sub) -> None:
    info = sub.add_parser("info", help="entropy, cross-entropy and KL divergence of two distributions",
                          description="Print H(P), H(P,Q) and KL(P||Q) and check H(P,Q) = H(P) + KL(P||Q).")
    info.add_argument("--p", type=_floats, required=True, help="true distribution, e.g. 1,0,0,0")
    info.add_argument("--q", type=_floats, required=True, help="predicted distribution, e.g. 0.7,0.1,0.1,0.1")
    info.add_argument("--base", type=_log_base, help="log base: 2 for bits (default: e, nats)")
    info.add_argument("--normalize", action="store_true", help="rescale P and Q to sum to 1")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)


def _add_perplexity(sub) -> None:
    ppl = sub.add_parser("perplexity", help="perplexity, bits per token and bits per byte of per-token NLLs",
                         description="Read per-token negative log-likelihoods in nats (or log-probs) from a .npy, "
                                     ".csv or .jsonl file and print tokens, perplexity, bits per token and bits per "
                                     "byte (with --bytes or --text).")
    ppl.add_argument("file", help="per-token NLLs or log-probs (.npy, .csv, .jsonl)")
    ppl.add_argument("--logprobs", action="store_true", help="the file holds log-probs (<= 0), not NLLs")
    ppl.add_argument("--column", help="the CSV column / JSONL key to read (default: nll, logprob, or the only one)")
    group = ppl.add_mutually_exclusive_group()
    group.add_argument("--bytes", type=int, metavar="N", help="the UTF-8 byte count of the scored text")
    group.add_argument("--text", metavar="FILE", help="the scored text (UTF-8): its bytes are counted")
    ppl.add_argument("--ci", type=float, metavar="LEVEL", help="add an analytic confidence interval, e.g. 0.95")
    ppl.add_argument("--json", action="store_true", help="print JSON")
    ppl.set_defaults(func=cmd_perplexity)


def _add_bench(sub) -> None:
    bench = sub.add_parser("bench", help="run the benchmark suite (benchmarks/)",
                           description="Run bench_core, bench_learn and bench_linear; --quick for small sizes.")
    bench.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    bench.set_defaults(func=cmd_bench)


def _encoding_option(parser) -> None:
    parser.add_argument("--encoding", metavar="ENC", default=DEFAULT_ENCODING,
                        help=f"the text encoding of CSV, TSV, CoNLL and .txt inputs, such as latin-1 or cp1252 "
                             f"(default: {DEFAULT_ENCODING}, UTF-8 with or without a byte-order mark)")


def _one_line_warnings(args):
    """A ``warnings.showwarning`` that prints each warning as one line, its parameters as ``args``'s flags."""
    def show(message, category, filename, lineno, file=None, line=None):
        first = (str(message).strip().splitlines() or [""])[0]
        print(f"crossentropy: warning: {as_flags(first, args)} ({category.__name__})", file=file or sys.stderr)
    return show


def main(argv: list[str] | None = None) -> int:
    prog, args = "crossentropy", None
    try:
        args, extra = build_parser().parse_known_args(argv)
        prog = f"crossentropy {args.command}"  # every later message names the command
        if extra:
            raise UsageError(f"{prog}: unrecognized arguments: {' '.join(extra)} (see --help)")
        args.argv = list(sys.argv[1:] if argv is None else argv)
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(args)
            # a dependency's deprecation notice is for developers, not for the command's user (Python hides it
            # outside __main__ too): e.g. an older matplotlib calling pyparsing's parseString
            warnings.simplefilter("ignore", DeprecationWarning)
            return args.func(args)
    except (UsageError, InputError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        message = as_flags(message, args)  # the library's parameters, as the command's flags
        print(message if message.startswith("crossentropy") else f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crossentropy: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
