"""Batches on real lengths: grouping by length, bucket padding, and what the loop relies on
(every example once an epoch, the same global steps whatever the replicas and pipelines,
exact resume, determinism)."""

import numpy as np
import pytest
import tensorflow as tf

import keras_bert_x as kbx
from keras_bert_x.data.tasks.datasets import (TaskFeatures, eval_dataset, padding_report,
                                              train_dataset)
from keras_bert_x.text.packing import length_buckets

T = 64
BUCKETS = length_buckets("auto", T)


def _features(n, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.minimum(rng.geometric(1 / 18, n) + 2, T)  # short and uneven, as real text
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int32)
    ids = np.where(mask > 0, rng.integers(5, 999, (n, T)), 0).astype(np.int32)
    labels = np.where(mask > 0, rng.integers(0, 3, (n, T)), -1).astype(np.int32)
    return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": np.zeros_like(ids),
            "labels": labels, "example_weights": np.ones(n, np.float32)}


def _steps(features, count, replicas=2, pipelines=1, skip=0, buckets=BUCKETS, seed=3):
    """`count` global steps (replicas x 4 examples) as one dict each, and their widths."""
    streams = [iter(train_dataset(features, 4, seed=seed, skip_batches=skip, buckets=buckets,
                                  input_context=tf.distribute.InputContext(pipelines, p,
                                                                           replicas)))
               for p in range(pipelines)]
    out = []
    for _ in range(count):
        parts = [next(streams[r % pipelines]) for r in range(replicas)]
        widths = {int(b["input_word_ids"].shape[1]) for b in parts}
        assert len(widths) == 1, "every replica of a step takes the same width"
        out.append({k: np.concatenate([b[k].numpy() for b in parts]) for k in parts[0]})
    return out


def test_features_keep_real_lengths_and_pad_back_exactly():
    arrays = _features(50)
    features = TaskFeatures.from_arrays(arrays)
    assert features.tokens["input_word_ids"].size == arrays["input_mask"].sum()
    for name in ("input_word_ids", "input_mask", "labels"):
        np.testing.assert_array_equal(features.padded(name), arrays[name])


def test_bucketed_epoch_covers_every_example_once_padded_to_the_smallest_bucket():
    arrays = _features(203)
    per_epoch = 26  # ceil(203 / 8)
    steps = _steps(arrays, 2 * per_epoch)
    lengths = arrays["input_mask"].sum(1)
    for epoch in (steps[:per_epoch], steps[per_epoch:]):
        real = np.concatenate([s["example_index"][s["example_index"] >= 0] for s in epoch])
        assert sorted(real) == list(range(203))
        for s in epoch:
            width, index = s["input_word_ids"].shape[1], s["example_index"]
            longest = lengths[index[index >= 0]].max()
            assert width in BUCKETS and longest <= width and (width == 16 or longest > width - 16)
            rows = index >= 0  # the real positions are the example's own, then padding
            np.testing.assert_array_equal(s["input_word_ids"][rows],
                                          arrays["input_word_ids"][index[rows], :width])
            np.testing.assert_array_equal(s["labels"][rows], arrays["labels"][index[rows], :width])
    assert not np.array_equal(steps[0]["example_index"], steps[per_epoch]["example_index"])
    fixed = sum(s["input_word_ids"].size for s in _steps(arrays, per_epoch, buckets=None))
    assert sum(s["input_word_ids"].size for s in steps[:per_epoch]) < 0.6 * fixed


def test_grouping_sorts_within_mega_batches_like_group_by_length():
    """1,000 examples, global batch 8: 125 batches, mega-batches of 31 batches (HF's rule,
    len // (batch * 4)), so most steps hold examples of nearly one length."""
    arrays = _features(1000)
    lengths = arrays["input_mask"].sum(1)
    steps = _steps(arrays, 125)
    spread = [np.ptp(lengths[s["example_index"][s["example_index"] >= 0]]) for s in steps]
    assert np.median(spread) <= 2
    widths = [s["input_word_ids"].shape[1] for s in steps]
    assert widths != sorted(widths) and widths != sorted(widths, reverse=True)  # shuffled


def test_steps_do_not_depend_on_replicas_or_pipelines_and_resume_exactly():
    arrays = _features(90)
    one = _steps(arrays, 14, replicas=2, pipelines=1)
    two = _steps(arrays, 14, replicas=2, pipelines=2)
    for a, b in zip(one, two):
        assert sorted(a["example_index"]) == sorted(b["example_index"])
        assert a["input_word_ids"].shape == b["input_word_ids"].shape
    resumed = _steps(arrays, 4, skip=20)  # after 10 steps of 2 replica batches
    for a, b in zip(one[10:], resumed):
        np.testing.assert_array_equal(a["example_index"], b["example_index"])
    again = _steps(arrays, 14)
    assert all(np.array_equal(a["example_index"], b["example_index"]) for a, b in zip(one, again))
    other_seed = _steps(arrays, 14, seed=4)
    assert not all(np.array_equal(a["example_index"], b["example_index"])
                   for a, b in zip(one, other_seed))


def test_evaluation_is_length_sorted_and_complete():
    arrays = _features(45)
    batches = list(eval_dataset(arrays, 8, buckets=BUCKETS))
    widths = [b["input_word_ids"].shape[1] for b in batches]
    assert widths == sorted(widths, reverse=True) and len(widths) == 6
    seen = np.concatenate([b["example_index"].numpy() for b in batches])
    assert sorted(seen[seen >= 0]) == list(range(45))


def test_padding_report_states_both_figures():
    line = padding_report(_features(300), 32, buckets=BUCKETS)
    assert line.startswith("length buckets 16..64 (4): an epoch computes ")
    assert "fixed length 64" in line and "% padding" in line
    assert padding_report(_features(300), 32).startswith("length buckets off")


def test_auto_is_the_longest_unless_shapes_are_compiled():
    assert length_buckets("auto", 64) == (16, 32, 48, 64)  # XLA, TPU, a served SavedModel
    assert length_buckets("auto", 64, compiled=False) == length_buckets("longest", 64) \
        == tuple(range(1, 65))
    line = padding_report(_features(300), 32, buckets=length_buckets("longest", 64))
    assert line.startswith("each batch at its longest: an epoch computes ")
    computed = lambda report: int(report.split(" computes ")[1].split()[0].replace(",", ""))  # noqa
    assert computed(line) < computed(padding_report(_features(300), 32, buckets=BUCKETS))


def test_bad_bucket_lists_are_one_clear_error():
    assert length_buckets("none", 128) == (128,) and length_buckets("32,64", 128) == (32, 64, 128)
    for bad in ("32,abc", "0,64", "256"):
        with pytest.raises(kbx.BertInputError, match="--length_buckets"):
            length_buckets(bad, 128)


def test_bucketed_batches_give_the_same_per_example_losses(tiny_config):
    """Dropout 0: a model's per-example loss does not depend on how far its batch was padded."""
    tiny_config = kbx.BertConfig(**{**tiny_config.to_dict(), "hidden_dropout_prob": 0.0,
                                    "attention_probs_dropout_prob": 0.0})
    model = kbx.BertTokenClassifier(kbx.BertEncoder(tiny_config), num_labels=3)
    arrays = _features(40)
    arrays["input_word_ids"] %= tiny_config.vocab_size
    arrays = {k: v[:, :32] if v.ndim == 2 else v for k, v in arrays.items()}

    def losses(buckets):
        out = {}
        for batch in eval_dataset(arrays, 8, buckets=buckets):
            logits = model({k: batch[k] for k in ("input_word_ids", "input_mask",
                                                  "input_type_ids")})
            per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(
                tf.maximum(batch["labels"], 0), logits) * tf.cast(batch["labels"] >= 0, tf.float32)
            for i, loss in zip(batch["example_index"].numpy(), tf.reduce_sum(per_token, 1)):
                if i >= 0:
                    out[int(i)] = float(loss)
        return np.array([out[i] for i in range(40)])

    fixed = losses(None)
    np.testing.assert_allclose(losses(length_buckets("auto", 32)), fixed, rtol=1e-5)
    np.testing.assert_allclose(losses(length_buckets("longest", 32)), fixed, rtol=1e-5)
