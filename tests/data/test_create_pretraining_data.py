"""create_pretraining_data: statistics, whole-word masking, determinism, interop, bad input."""

import os
import random
import subprocess
import sys

import numpy as np
import pytest

from keras_bert_x.data.create_pretraining_data import create_pretraining_data
from keras_bert_x.data.instances import MaskingConfig, Vocab
from keras_bert_x.data.pretraining_dataset import pretraining_dataset
from keras_bert_x.text.tokenizer import load_vocabulary
from tests.helpers import write_brown_subset

T, P = 128, 20


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """The first 200 documents of the bundled Brown corpus, as plain text."""
    return write_brown_subset(tmp_path_factory.mktemp("corpus") / "brown200.txt", 200)


def _generate(corpus, vocab_file, out, whole_word=False, seed=7, workers=0, dupe=2):
    config = MaskingConfig(T, P, do_whole_word_mask=whole_word)
    return create_pretraining_data([corpus], [str(out)], load_vocabulary(vocab_file), config,
                                   dupe_factor=dupe, random_seed=seed, num_workers=workers)


def _read_all(path):
    """Every example of a file (the evaluation reader, less its weight-0 padding)."""
    batches = list(pretraining_dataset(str(path), 4096, T, P, is_training=False))
    data = {k: np.concatenate([b[k].numpy() for b in batches]) for k in batches[0]}
    real = data["example_weights"] > 0
    return {k: v[real] for k, v in data.items()}


@pytest.fixture(scope="module", params=[False, True], ids=["token", "whole_word"])
def generated(request, small_corpus, vocab_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "data.tfrecord"
    summary = _generate(small_corpus, vocab_file, out, whole_word=request.param)
    return request.param, summary, _read_all(out), load_vocabulary(vocab_file)


def test_masking_and_nsp_statistics(generated):
    _, summary, data, tokens = generated
    vocab = Vocab(tokens)
    n = len(data["next_sentence_labels"])
    assert n >= 10_000 and n == summary.instances
    weights, positions = data["masked_lm_weights"], data["masked_lm_positions"]
    real = data["input_mask"].sum()
    masked = weights.sum()
    assert 0.14 <= masked / real <= 0.16, masked / real
    assert (weights.sum(1) <= P).all() and (weights.sum(1) >= 1).all()

    rows = np.repeat(np.arange(n), P).reshape(n, P)
    chosen = weights > 0
    shown = data["input_word_ids"][rows[chosen], positions[chosen]]
    original = data["masked_lm_ids"][chosen]
    as_mask = np.mean(shown == vocab.mask_id)
    unchanged = np.mean(shown == original)
    randomized = 1 - as_mask - unchanged
    assert abs(as_mask - 0.8) <= 0.01 and abs(unchanged - 0.1) <= 0.01 and abs(randomized - 0.1) <= 0.01
    assert abs(data["next_sentence_labels"].mean() - 0.5) <= 0.02
    # Never [CLS], [SEP] or padding.
    assert not np.isin(original, [vocab.cls_id, vocab.sep_id, 0]).any()
    lengths = data["input_mask"].sum(1)
    assert (positions[chosen] < np.repeat(lengths, P).reshape(n, P)[chosen]).all()
    assert (positions[chosen] > 0).all()


def test_whole_word_mode_never_splits_a_word(generated):
    whole_word, _, data, tokens = generated
    vocab = Vocab(tokens)
    ids = data["input_word_ids"].copy()
    n = len(ids)
    masked_flags = np.zeros_like(ids, bool)
    rows = np.repeat(np.arange(n), P).reshape(n, P)
    chosen = data["masked_lm_weights"] > 0
    ids[rows[chosen], data["masked_lm_positions"][chosen]] = data["masked_lm_ids"][chosen]
    masked_flags[rows[chosen], data["masked_lm_positions"][chosen]] = True
    # A "##" piece continues the word before it: both must share one masked/unmasked fate.
    # (Truncation can leave a "##" piece right after [CLS]/[SEP]: it is a word of its own.)
    suffix = vocab.is_suffix[ids] & (data["input_mask"] > 0)
    after_special = np.isin(ids[:, :-1], [vocab.cls_id, vocab.sep_id])
    split = suffix[:, 1:] & ~after_special & (masked_flags[:, 1:] != masked_flags[:, :-1])
    if whole_word:
        assert not split.any()
    else:
        assert split.any()  # token-level masking does split words (the test can tell)


def test_same_seed_same_bytes_any_worker_count(small_corpus, vocab_file, tmp_path):
    _generate(small_corpus, vocab_file, tmp_path / "a", seed=3, workers=1, dupe=1)
    _generate(small_corpus, vocab_file, tmp_path / "b", seed=3, workers=2, dupe=1)
    _generate(small_corpus, vocab_file, tmp_path / "c", seed=4, workers=2, dupe=1)
    a, b, c = ((tmp_path / x).read_bytes() for x in "abc")
    assert a == b
    assert a != c
    da, dc = _read_all(tmp_path / "a"), _read_all(tmp_path / "c")
    assert not np.array_equal(da["masked_lm_positions"][:100], dc["masked_lm_positions"][:100])


def _model_garden_write(corpus, vocab_file, out):
    from official.nlp.data import create_pretraining_data as mg
    from official.nlp.tools import tokenization

    tokenizer = tokenization.FullTokenizer(vocab_file=vocab_file, do_lower_case=True)
    instances = mg.create_training_instances(
        [corpus], tokenizer, mg.get_processor_text_fn(False, True), T, 1, 0.1, 0.15, P,
        random.Random(1))
    mg.write_instance_to_example_files(instances[:300], tokenizer, T, P, [str(out)], False, False)
    return instances[:300], tokenizer


def test_reads_model_garden_files(small_corpus, vocab_file, tmp_path):
    instances, tokenizer = _model_garden_write(small_corpus, vocab_file, tmp_path / "mg.tfrecord")
    data = _read_all(tmp_path / "mg.tfrecord")
    assert len(data["input_word_ids"]) == 300
    first = instances[0]
    ids = tokenizer.convert_tokens_to_ids(first.tokens)
    np.testing.assert_array_equal(data["input_word_ids"][0, :len(ids)], ids)
    np.testing.assert_array_equal(data["input_type_ids"][0, :len(ids)], first.segment_ids)
    np.testing.assert_array_equal(data["masked_lm_positions"][0, :len(first.masked_lm_positions)],
                                  first.masked_lm_positions)
    assert data["next_sentence_labels"][0] == int(first.is_random_next)


def test_model_garden_loader_reads_ours(small_corpus, vocab_file, tmp_path):
    from official.nlp.data import pretrain_dataloader

    _generate(small_corpus, vocab_file, tmp_path / "ours.tfrecord", dupe=1)
    ours = _read_all(tmp_path / "ours.tfrecord")
    params = pretrain_dataloader.BertPretrainDataConfig(
        input_path=str(tmp_path / "ours.tfrecord"), global_batch_size=8, is_training=False,
        seq_length=T, max_predictions_per_seq=P)
    batch = next(iter(pretrain_dataloader.BertPretrainDataLoader(params).load()))
    np.testing.assert_array_equal(batch["input_word_ids"].numpy(), ours["input_word_ids"][:8])
    np.testing.assert_array_equal(batch["masked_lm_ids"].numpy(), ours["masked_lm_ids"][:8])
    np.testing.assert_array_equal(batch["next_sentence_labels"].numpy().ravel(),
                                  ours["next_sentence_labels"][:8])


def _cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "keras_bert_x.data.create_pretraining_data",
                           "--noprogress", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_skips_non_utf8_lines_and_reports(vocab_file, tmp_path):
    corpus = tmp_path / "mixed.txt"
    corpus.write_bytes(b"First sentence here.\nSecond one, \xff\xfe broken.\nThird sentence.\n\n"
                       b"Another document starts.\nAnd it ends.\n")
    run = _cli("--input_file", corpus, "--output_file", tmp_path / "out.tfrecord",
               "--vocab_file", vocab_file, "--dupe_factor", 2)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "1 non-UTF-8 lines skipped" in run.stdout
    assert (tmp_path / "out.tfrecord").stat().st_size > 0


@pytest.mark.parametrize("case", ["missing", "empty", "bad_vocab", "exists"])
def test_cli_bad_input(vocab_file, small_corpus, tmp_path, case):
    corpus, vocab, out = small_corpus, vocab_file, tmp_path / "out.tfrecord"
    if case == "missing":
        corpus, expected = tmp_path / "nope*.txt", "no input file matches"
    elif case == "empty":
        corpus, expected = tmp_path / "empty.txt", "input file is empty"
        corpus.write_text("")
    elif case == "bad_vocab":
        vocab, expected = tmp_path / "vocab.txt", "lacks the reserved token(s) [MASK]"
        vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    else:
        out.write_bytes(b"precious")
        expected = "exists"
    run = _cli("--input_file", corpus, "--output_file", out, "--vocab_file", vocab)
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode == 1 and len(errors) == 1 and expected in errors[0], run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    if case == "exists":
        assert out.read_bytes() == b"precious"
    else:
        assert not out.exists()
