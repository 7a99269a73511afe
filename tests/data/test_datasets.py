"""The two training inputs: TFRecord batches (sharded for tf.distribute) and dynamic masking."""

import numpy as np
import pytest
import tensorflow as tf

import keras_bert_x as kbx
from keras_bert_x.data.create_pretraining_data import create_pretraining_data
from keras_bert_x.data.dynamic_masking import dynamic_masking_dataset
from keras_bert_x.data.instances import MaskingConfig, Vocab
from keras_bert_x.data.pretraining_dataset import pretraining_dataset
from keras_bert_x.text.tokenizer import load_vocabulary
from tests.helpers import write_brown_subset

T, P = 64, 10
KEYS = {"input_word_ids", "input_mask", "input_type_ids", "masked_lm_positions", "masked_lm_ids",
        "masked_lm_weights", "next_sentence_labels", "example_weights"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_brown_subset(tmp_path_factory.mktemp("c") / "brown40.txt", 40)


@pytest.fixture(scope="module")
def shards(corpus, vocab_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("records")
    files = [str(out / f"part-{i}.tfrecord") for i in range(4)]
    create_pretraining_data([corpus], files, load_vocabulary(vocab_file), MaskingConfig(T, P),
                            dupe_factor=1, gzip_compress=True)
    return files


def test_tfrecord_batches_have_model_names_and_dtypes(shards):
    batch = next(iter(pretraining_dataset(shards, 8, T, P, seed=1)))
    assert set(batch) == KEYS
    assert batch["input_word_ids"].shape == (8, T) and batch["input_word_ids"].dtype == tf.int32
    assert batch["masked_lm_weights"].dtype == tf.float32
    assert batch["next_sentence_labels"].shape == (8,)


def test_input_pipelines_see_disjoint_examples(shards):
    def examples(pipelines, pipeline_id, files):
        ctx = tf.distribute.InputContext(pipelines, pipeline_id, pipelines)
        ds = pretraining_dataset(files, 1, T, P, is_training=False, input_context=ctx)
        return {tuple(b["input_word_ids"].numpy()[0]) for b in ds if b["example_weights"][0] > 0}

    everything = examples(1, 0, shards)
    for files in (shards, shards[:1]):  # by file (4 files), by record (1 file)
        a, b = examples(2, 0, files), examples(2, 1, files)
        assert a and b and not a & b
        assert a | b == examples(1, 0, files) <= everything


@pytest.mark.parametrize("num_files,replicas", [(4, 2), (1, 2), (4, 6)])
def test_evaluation_batches_are_full_and_alike_on_every_pipeline(shards, num_files, replicas):
    """The last batches are padded with weight-0 examples (no new shape for TPUs), and every
    replica gets the same number of batches (no worker waits for another): two pipelines
    feeding one replica each, or (MirroredStrategy, a TPU host) three replicas each."""
    files = shards[:num_files]
    total = sum(1 for f in files for _ in tf.data.TFRecordDataset(f, compression_type="GZIP"))
    per_pipeline = []
    for pipeline in range(2):
        ctx = tf.distribute.InputContext(2, pipeline, replicas)
        dataset = pretraining_dataset(files, 7, T, P, is_training=False, input_context=ctx)
        # Static shapes: what jit_compile and a TPU need (a ragged last batch would retrace).
        assert all(spec.shape[0] == 7 for spec in dataset.element_spec.values())
        batches = list(dataset)
        assert all(b["input_word_ids"].shape == (7, T) for b in batches)
        weights = np.concatenate([b["example_weights"].numpy() for b in batches])
        masked = np.concatenate([b["masked_lm_weights"].numpy() for b in batches])
        assert set(np.unique(weights)) <= {0.0, 1.0} and (masked[weights == 0] == 0).all()
        assert (np.diff(weights) <= 0).all()  # real examples first, padding only at the end
        per_pipeline.append((len(batches), int(weights.sum())))
    assert per_pipeline[0][0] == per_pipeline[1][0]
    assert per_pipeline[0][0] % (replicas // 2) == 0  # whole steps for every replica
    assert per_pipeline[0][1] + per_pipeline[1][1] == total


def test_mlm_only_data_needs_no_next_sentence_labels(tmp_path):
    names = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids")
    feature = {n: tf.train.Feature(int64_list=tf.train.Int64List(value=[1] * (
        P if n.startswith("masked") else T))) for n in names}
    feature["masked_lm_weights"] = tf.train.Feature(float_list=tf.train.FloatList(value=[1.] * P))
    with tf.io.TFRecordWriter(str(tmp_path / "mlm.tfrecord")) as writer:
        for _ in range(4):
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())
    with pytest.raises(kbx.BertInputError, match="feature 'next_sentence_labels' is missing"):
        pretraining_dataset(str(tmp_path / "mlm.tfrecord"), 2, T, P)
    batch = next(iter(pretraining_dataset(str(tmp_path / "mlm.tfrecord"), 2, T, P, nsp=False)))
    assert set(batch) == KEYS and batch["next_sentence_labels"].numpy().tolist() == [0, 0]


def test_wrong_sequence_length_is_named(shards):
    with pytest.raises(kbx.BertInputError, match="feature 'input_ids' has 64 values, expected 128"):
        pretraining_dataset(shards, 8, 128, P)


@pytest.mark.parametrize("whole_word", [False, True])
def test_dynamic_masking(corpus, vocab_file, whole_word):
    tf.random.set_seed(0)
    config = MaskingConfig(T, P, do_whole_word_mask=whole_word)
    ds = dynamic_masking_dataset(corpus, vocab_file, 32, config, seed=3)
    batches = [{k: v.numpy() for k, v in b.items()} for b in ds.take(40)]
    assert set(batches[0]) == KEYS and batches[0]["input_word_ids"].shape == (32, T)
    data = {k: np.concatenate([b[k] for b in batches]) for k in KEYS}
    vocab = Vocab(load_vocabulary(vocab_file))
    n = len(data["input_mask"])
    chosen = data["masked_lm_weights"] > 0
    rows = np.repeat(np.arange(n), P).reshape(n, P)
    originals = data["masked_lm_ids"][chosen]
    shown = data["input_word_ids"][rows[chosen], data["masked_lm_positions"][chosen]]
    assert not np.isin(originals, [vocab.cls_id, vocab.sep_id, 0]).any()
    fraction = chosen.sum() / data["input_mask"].sum()
    assert 0.10 <= fraction <= 0.16, fraction
    assert 0.75 <= np.mean(shown == vocab.mask_id) <= 0.85
    assert 0.4 <= data["next_sentence_labels"].mean() <= 0.6
    # Everywhere but the chosen positions the input is the real text: restore and compare.
    restored = data["input_word_ids"].copy()
    restored[rows[chosen], data["masked_lm_positions"][chosen]] = originals
    untouched = np.ones_like(restored, bool)
    untouched[rows[chosen], data["masked_lm_positions"][chosen]] = False
    assert (data["input_word_ids"][untouched] == restored[untouched]).all()
    assert not np.isin(data["input_word_ids"][untouched & (data["input_mask"] > 0)],
                       [vocab.mask_id]).any()
    if whole_word:
        masked = ~untouched
        suffix = vocab.is_suffix[restored] & (data["input_mask"] > 0)
        after_special = np.isin(restored[:, :-1], [vocab.cls_id, vocab.sep_id])
        assert not (suffix[:, 1:] & ~after_special & (masked[:, 1:] != masked[:, :-1])).any()


def _unmasked(batch):
    """The batch's token ids with the original tokens put back at the masked positions."""
    ids = batch["input_word_ids"].copy()
    rows, cols = np.nonzero(batch["masked_lm_weights"] > 0)
    ids[rows, batch["masked_lm_positions"][rows, cols]] = batch["masked_lm_ids"][rows, cols]
    return ids


@pytest.mark.parametrize("whole_word", [False, True])
def test_random_replacements_are_ordinary_tokens(corpus, vocab_file, whole_word):
    """tf-text draws them from the whole vocabulary ([CLS], [SEP], [MASK], [unusedN] ...);
    as in our create_pretraining_data, we never put those in the input."""
    vocab = Vocab(load_vocabulary(vocab_file))
    ds = dynamic_masking_dataset(corpus, vocab_file, 32,
                                 MaskingConfig(T, P, do_whole_word_mask=whole_word), seed=5)
    replaced = []
    for batch in ds.take(40):
        b = {k: v.numpy() for k, v in batch.items()}
        rows, cols = np.nonzero(b["masked_lm_weights"] > 0)
        shown = b["input_word_ids"][rows, b["masked_lm_positions"][rows, cols]]
        originals = b["masked_lm_ids"][rows, cols]
        replaced.extend(shown[(shown != originals) & (shown != vocab.mask_id)])
    assert len(replaced) > 500
    assert np.isin(replaced, vocab.random_ids).all()


def test_mlm_only_text_gives_single_segments(corpus, vocab_file):
    vocab = Vocab(load_vocabulary(vocab_file))
    ds = dynamic_masking_dataset(corpus, vocab_file, 16, MaskingConfig(T, P), seed=2, nsp=False)
    for batch in ds.take(5):
        b = {k: v.numpy() for k, v in batch.items()}
        ids = _unmasked(b)
        assert (b["input_type_ids"] == 0).all() and (b["next_sentence_labels"] == 0).all()
        lengths = b["input_mask"].sum(axis=1)
        assert (ids[:, 0] == vocab.cls_id).all()
        assert (ids[np.arange(len(ids)), lengths - 1] == vocab.sep_id).all()
        assert ((ids == vocab.sep_id).sum(axis=1) == 1).all()
    assert lengths.mean() > T / 2  # sentences are packed, not one per sequence


def test_dynamic_masking_resumes_where_it_stopped(corpus, vocab_file):
    config = MaskingConfig(T, P)
    fresh = list(dynamic_masking_dataset(corpus, vocab_file, 8, config, seed=4).take(7))
    resumed = next(iter(dynamic_masking_dataset(corpus, vocab_file, 8, config, seed=4,
                                                skip_batches=6)))
    want, got = ({k: v.numpy() for k, v in b.items()} for b in (fresh[6], resumed))
    np.testing.assert_array_equal(_unmasked(want), _unmasked(got))
    np.testing.assert_array_equal(want["next_sentence_labels"], got["next_sentence_labels"])


def test_dynamic_masks_change_between_epochs(corpus, vocab_file, tmp_path):
    """The same sentence pair gets different masks each time it comes round."""
    single = tmp_path / "one_doc.txt"
    single.write_text("The cat sat on the mat today.\nIt was warm and sunny outside.\n")
    ds = dynamic_masking_dataset(str(single), vocab_file, 1, MaskingConfig(T, P, short_seq_prob=0),
                                 shuffle_buffer=1)
    masks = {tuple(b["masked_lm_positions"].numpy()[0]) for b in ds.take(30)}
    assert len(masks) > 3


def test_missing_feature_is_named(tmp_path):
    example = tf.train.Example(features=tf.train.Features(feature={
        "input_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=[1] * T))}))
    with tf.io.TFRecordWriter(str(tmp_path / "bad.tfrecord")) as writer:
        writer.write(example.SerializeToString())
    with pytest.raises(kbx.BertInputError, match="feature 'input_mask' is missing"):
        pretraining_dataset(str(tmp_path / "bad.tfrecord"), 8, T, P)


def test_dynamic_masking_pads_each_step_to_its_length_bucket(corpus, vocab_file):
    """Short sequences (document ends, short_seq_prob) cost a short bucket; the two replica
    batches of a step share one width; the masks stay inside the real tokens."""
    from keras_bert_x.text.packing import length_buckets

    buckets = length_buckets("auto", T)
    ds = dynamic_masking_dataset(corpus, vocab_file, 2, MaskingConfig(T, P), seed=3,
                                 input_context=tf.distribute.InputContext(1, 0, 2),
                                 length_buckets=buckets)
    batches = [{k: v.numpy() for k, v in b.items()} for b in ds.take(200)]
    widths = [b["input_word_ids"].shape[1] for b in batches]
    assert set(widths) <= set(buckets) and len(set(widths)) > 1
    assert all(a == b for a, b in zip(widths[::2], widths[1::2]))  # one width per step
    for first, second in zip(batches[::2], batches[1::2]):
        longest = max(first["input_mask"].sum(1).max(), second["input_mask"].sum(1).max())
        width = first["input_word_ids"].shape[1]
        assert longest <= width and (width == 16 or longest > width - 16)
    for b in batches:
        rows, cols = np.nonzero(b["masked_lm_weights"] > 0)
        assert (b["input_mask"][rows, b["masked_lm_positions"][rows, cols]] == 1).all()
