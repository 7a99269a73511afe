"""python -m keras_bert_x.text.vocab: learns a usable WordPiece vocabulary, refuses bad input."""

import gzip
import os
import subprocess
import sys

from keras_bert_x.data.corpus import BUNDLED_CORPUS
from keras_bert_x.text import RESERVED_TOKENS, BertTokenizer


def _vocab_cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "keras_bert_x.text.vocab", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


def test_learns_vocabulary_that_tokenizes_the_corpus(tmp_path):
    lines = gzip.open(BUNDLED_CORPUS, "rt", encoding="utf-8").read().splitlines()[:3000]
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n")
    run = _vocab_cli("--input", tmp_path / "corpus.txt", "--vocab_size", 600,
                     "--output", tmp_path / "vocab.txt")
    assert run.returncode == 0, run.stderr[-2000:]
    tokens = (tmp_path / "vocab.txt").read_text().splitlines()
    assert tuple(tokens[:5]) == RESERVED_TOKENS
    assert 300 <= len(tokens) <= 600 and len(set(tokens)) == len(tokens)
    assert any(t.startswith("##") for t in tokens) and "the" in tokens

    tok = BertTokenizer(str(tmp_path / "vocab.txt"))
    ids = tok.tokenize(lines[:500]).flat_values.numpy()
    unk_rate = (ids == tokens.index("[UNK]")).mean()
    assert unk_rate < 0.01, unk_rate  # every character seen is in the vocabulary

    again = _vocab_cli("--input", tmp_path / "corpus.txt", "--output", tmp_path / "vocab.txt")
    assert again.returncode == 1 and "exists" in again.stderr
    assert (tmp_path / "vocab.txt").read_text().splitlines() == tokens


def test_missing_input_is_one_error_line(tmp_path):
    run = _vocab_cli("--input", tmp_path / "none*.txt", "--output", tmp_path / "v.txt")
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode == 1 and len(errors) == 1 and "no input file matches" in errors[0]
    assert not (tmp_path / "v.txt").exists()
