"""Batches of pretraining examples from TFRecords (ours, google-research/bert's, Model Garden's).

Each element is a dict of int32 tensors (float32 weights) with the names our models use:
`input_word_ids`, `input_mask`, `input_type_ids`, `masked_lm_positions` [B, P],
`masked_lm_ids`, `masked_lm_weights` [B, P], `next_sentence_labels` [B].
"""

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


def inspect_records(path, max_seq_length, max_predictions_per_seq):
    """Checks the first record's features; returns (uses v2 names, compression)."""
    record, compression = _first_record(path)
    features = tf.train.Example.FromString(record).features.feature
    v2 = "input_word_ids" in features
    for name, spec in feature_spec(max_seq_length, max_predictions_per_seq, v2).items():
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
    out["next_sentence_labels"] = tf.reshape(out["next_sentence_labels"], [-1])
    return out


def pretraining_dataset(file_patterns, batch_size, max_seq_length=128,
                        max_predictions_per_seq=20, is_training=True, input_context=None,
                        seed=None, shuffle_buffer=10000, skip_batches=0):
    """A `tf.data.Dataset` of pretraining batches.

    `batch_size` is per input pipeline (the per-replica batch under tf.distribute). With an
    `input_context`, files are split between input pipelines when there are enough of them,
    records otherwise, so that no two pipelines see the same example. Training repeats forever
    and shuffles (seeded by `seed`); evaluation reads once, in order, keeping the last batch.
    With a seed the order is fixed, so `skip_batches` resumes exactly where a run stopped.
    """
    files = expand_inputs(file_patterns)
    v2, compression = inspect_records(files[0], max_seq_length, max_predictions_per_seq)
    spec = feature_spec(max_seq_length, max_predictions_per_seq, v2)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    shard_records = False
    if input_context and input_context.num_input_pipelines > 1:
        if len(files) >= input_context.num_input_pipelines:
            dataset = dataset.shard(input_context.num_input_pipelines,
                                    input_context.input_pipeline_id)
        else:
            shard_records = True
    if is_training:
        dataset = dataset.shuffle(len(files), seed=seed).repeat()
    dataset = dataset.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=compression),
        cycle_length=min(len(files), 8), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=seed is not None or not is_training)
    if is_training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    if shard_records:
        # After the (seeded) shuffle: every pipeline sees the same stream and takes every n-th
        # record, so a global batch holds the same examples whatever the number of workers.
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    dataset = dataset.batch(batch_size, drop_remainder=is_training)
    if skip_batches:
        dataset = dataset.skip(skip_batches)  # before parsing: skipped batches cost only reading
    dataset = dataset.map(lambda r: _to_model_names(tf.io.parse_example(r, spec), v2),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
