"""File-system helpers shared by savers and command lines: nothing is half-written."""

import contextlib
import os
import shutil
import sys
import tempfile
import threading

from keras_bert_x.errors import BertInputError


@contextlib.contextmanager
def atomic_output_dir(path, overwrite=False, replaceable=None,
                      replaceable_kind="keras_bert_x model directory (no config.json of ours)"):
    """Yields a fresh temporary directory beside `path`; moves it to `path` only on success.

    An existing non-empty `path` is refused unless `overwrite`, and even then unless
    `replaceable(path)` says it is a directory we wrote, a `replaceable_kind` (`overwrite`
    deletes it: a mistyped path must not take a user's folder with it). If anything raises inside the block, the
    temporary directory is removed and `path` is left exactly as it was.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise BertInputError(f"{path}: output exists and is not a directory")
        if os.listdir(path) and not overwrite:
            raise BertInputError(f"{path}: output directory is not empty (pass overwrite to replace it)")
        if os.listdir(path) and replaceable is not None and not replaceable(path):
            raise BertInputError(f"{path}: output directory is not empty and is not a "
                                 f"{replaceable_kind}; refusing to replace it")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
    try:
        yield tmp
        if os.path.exists(path):
            old = tmp + ".old"
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old)
        else:
            os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def native_logs_held():
    """Holds back what native code (the TFLite converter's MLIR passes, LiteRT's delegate)
    writes to stderr, which TF_CPP_MIN_LOG_LEVEL does not reach: shown if the block raises an
    error, where it may explain it; always with KERAS_BERT_X_NATIVE_LOGS=1. It redirects the
    process's fd 2, so one block at a time (a lock), and Python's stderr is held too."""
    if os.environ.get("KERAS_BERT_X_NATIVE_LOGS") == "1":
        yield
        return
    with _STDERR_LOCK, tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        except Exception:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def read_vocab(path):
    """The tokens of a WordPiece `vocab.txt`, one per line, in id order."""
    try:
        with open(path, encoding="utf-8") as f:
            return tuple(line.rstrip("\n").rstrip("\r") for line in f)
    except UnicodeDecodeError as e:
        raise BertInputError(f"{path}: vocab file is not UTF-8 ({e})") from None


def write_vocab(path, tokens):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in tokens)
