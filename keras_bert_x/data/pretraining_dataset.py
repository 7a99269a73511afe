"""Batches of pretraining examples from TFRecords (ours, google-research/bert's, Model Garden's).

Each element is a dict of int32 tensors (float32 weights) with the names our models use:
`input_word_ids`, `input_mask`, `input_type_ids`, `masked_lm_positions` [B, P],
`masked_lm_ids`, `masked_lm_weights` [B, P], `next_sentence_labels` [B] and `example_weights`
[B] (1 for a real example, 0 for padding).
"""

import math

import tensorflow as tf

from keras_bert_x.data.corpus import expand_inputs
from keras_bert_x.data.examples import V2_NAMES, feature_spec
from keras_bert_x.errors import BertInputError


def _first_record(path):
    """(first serialized record, compression) of a TFRecord file; plain or GZIP."""
    for compression in ("", "GZIP"):
        try:
            for record in tf.data.TFRecordDataset(path, compression_type=compression).take(1):
                return record.numpy(), compression
            raise BertInputError(f"{path}: TFRecord file holds no records")
        except tf.errors.DataLossError:
            continue
    raise BertInputError(f"{path}: not a TFRecord file (plain or GZIP)")


def inspect_records(path, max_seq_length, max_predictions_per_seq, nsp=True):
    """Checks the first record's features; returns (uses v2 names, compression)."""
    record, compression = _first_record(path)
    features = tf.train.Example.FromString(record).features.feature
    v2 = "input_word_ids" in features
    for name, spec in feature_spec(max_seq_length, max_predictions_per_seq, v2, nsp).items():
        if name not in features:
            raise BertInputError(f"{path}: feature '{name}' is missing")
        kind = features[name].WhichOneof("kind")
        values = getattr(features[name], kind).value if kind else []
        if len(values) != spec.shape[0]:
            hint = {"input_ids": "max_seq_length", "input_word_ids": "max_seq_length",
                    "masked_lm_positions": "max_predictions_per_seq"}.get(name)
            raise BertInputError(f"{path}: feature '{name}' has {len(values)} values, expected "
                                 f"{spec.shape[0]}" + (f" (check --{hint})" if hint else ""))
    return v2, compression


def _to_model_names(parsed, v2):
    out = {}
    for name, value in parsed.items():
        key = name if v2 else V2_NAMES.get(name, name)
        out[key] = tf.cast(value, tf.float32 if name == "masked_lm_weights" else tf.int32)
    if "next_sentence_labels" in out:
        out["next_sentence_labels"] = tf.reshape(out["next_sentence_labels"], [-1])
    else:  # MLM-only data: a label the loss ignores keeps one batch layout for every mode
        out["next_sentence_labels"] = tf.zeros_like(out["input_mask"][:, 0])
    out["example_weights"] = tf.ones_like(out["masked_lm_weights"][:, 0])
    return out


def _padding_example(max_seq_length, max_predictions_per_seq):
    """An example of zeros with weight 0: it pads evaluation batches and counts for nothing."""
    zeros = lambda n, dtype=tf.int32: tf.zeros([n], dtype)  # noqa: E731
    return {"input_word_ids": zeros(max_seq_length), "input_mask": zeros(max_seq_length),
            "input_type_ids": zeros(max_seq_length),
            "masked_lm_positions": zeros(max_predictions_per_seq),
            "masked_lm_ids": zeros(max_predictions_per_seq),
            "masked_lm_weights": zeros(max_predictions_per_seq, tf.float32),
            "next_sentence_labels": tf.constant(0), "example_weights": tf.constant(0.0)}


def count_records(files, compression):
    """Records per file (evaluation files are read once more, to size every pipeline alike)."""
    return [int(tf.data.TFRecordDataset(f, compression_type=compression).reduce(
        tf.constant(0, tf.int64), lambda n, _: n + 1)) for f in files]


def pretraining_dataset(file_patterns, batch_size, max_seq_length=128,
                        max_predictions_per_seq=20, is_training=True, input_context=None,
                        seed=None, shuffle_buffer=10000, skip_batches=0, nsp=True,
                        record_counts=None):
    """A `tf.data.Dataset` of pretraining batches.

    `batch_size` is per input pipeline (the per-replica batch under tf.distribute). With an
    `input_context`, files are split between input pipelines when there are enough of them,
    records otherwise, so that no two pipelines see the same example. Training repeats forever
    and shuffles (seeded by `seed`); with a seed the order is fixed, so `skip_batches` resumes
    exactly where a run stopped. Evaluation reads once, in order, and every replica gets the
    same number of full batches: the last ones are padded with weight-0 examples (as Model
    Garden does), so no batch has a new shape (a recompilation on TPU) and no worker waits for
    another. Sizing that needs the number of records per file (`record_counts`, counted when
    not given). `nsp=False` reads files without `next_sentence_labels` (MLM-only data).
    """
    files = expand_inputs(file_patterns)
    v2, compression = inspect_records(files[0], max_seq_length, max_predictions_per_seq, nsp)
    spec = feature_spec(max_seq_length, max_predictions_per_seq, v2, nsp)
    pipelines, pipeline_id = ((input_context.num_input_pipelines, input_context.input_pipeline_id)
                              if input_context else (1, 0))
    shard_files = pipelines > 1 and len(files) >= pipelines
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shard_files:
        dataset = dataset.shard(pipelines, pipeline_id)
    if is_training:
        dataset = dataset.shuffle(len(files), seed=seed).repeat()
    dataset = dataset.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=compression),
        cycle_length=min(len(files), 8), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=seed is not None or not is_training)
    if is_training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    if pipelines > 1 and not shard_files:
        # After the (seeded) shuffle: every pipeline sees the same stream and takes every n-th
        # record, so a global batch holds the same examples whatever the number of workers.
        dataset = dataset.shard(pipelines, pipeline_id)
    parse = lambda r: _to_model_names(tf.io.parse_example(r, spec), v2)  # noqa: E731
    if is_training:
        dataset = dataset.batch(batch_size, drop_remainder=True)
        if skip_batches:
            dataset = dataset.skip(skip_batches)  # before parsing: skipped batches cost only reading
        dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)

    counts = record_counts if record_counts is not None else count_records(files, compression)
    if shard_files:
        per_pipeline = [sum(counts[i::pipelines]) for i in range(pipelines)]
    else:
        per_pipeline = [len(range(i, sum(counts), pipelines)) for i in range(pipelines)]
    # A pipeline feeding several replicas (MirroredStrategy, a TPU host) gives each one batch
    # a step: a whole number of steps keeps every replica's last batch full.
    replicas = input_context.num_replicas_in_sync // pipelines if input_context else 1
    num_batches = max(math.ceil(n / batch_size) for n in per_pipeline)
    num_batches = math.ceil(num_batches / replicas) * replicas
    padding = tf.data.Dataset.from_tensors(
        _padding_example(max_seq_length, max_predictions_per_seq)).repeat()
    dataset = dataset.batch(batch_size).map(parse).unbatch().concatenate(padding)
    dataset = dataset.take(num_batches * batch_size).batch(batch_size, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)
