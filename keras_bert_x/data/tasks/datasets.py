"""tf.data pipelines over in-memory fine-tuning features, for one device or tf.distribute.

Every epoch is a seeded permutation of all examples, padded with weight-0 examples to whole
global batches: each example is seen once an epoch (as in Hugging Face's trainer, whose last
batch is partial), no batch has a new shape (TPUs recompile on one), and the loss, normalised
by the global weight, is the same as a partial batch's. With several input pipelines the
permuted stream is dealt round-robin, so a global step holds the same examples whatever the
number of workers, and `skip_batches` resumes exactly where a run stopped.
"""

import math

import numpy as np
import tensorflow as tf


def _replicas(input_context):
    if input_context is None:
        return 1, 1, 0
    return (input_context.num_replicas_in_sync, input_context.num_input_pipelines,
            input_context.input_pipeline_id)


def _gather(features):
    """index batch -> feature batch; index -1 is a padding example (weight 0). The batch keeps
    its indices as `example_index`: predictions gathered from several workers come back
    interleaved, and are put in order by it."""
    tensors = {k: tf.constant(v) for k, v in features.items()}

    def gather(indices):
        safe = tf.maximum(indices, 0)
        batch = {k: tf.gather(v, safe) for k, v in tensors.items()}
        batch["example_weights"] = batch["example_weights"] * tf.cast(indices >= 0, tf.float32)
        batch["example_index"] = tf.cast(indices, tf.int32)
        return batch

    return gather


def steps_per_epoch(num_examples, global_batch):
    return math.ceil(num_examples / global_batch)


def train_dataset(features, batch_size, seed=0, input_context=None, skip_batches=0):
    """Endless batches of `batch_size` (per replica) drawn epoch by epoch from `features`
    ({name: array [N, ...]}, with `example_weights`). The permutations are stateless TF ops
    (`index_shuffle` of (seed, epoch)), so the pipeline runs wherever tf.data runs (TPU
    hosts included: no Python generator) and restarts the same."""
    replicas, pipelines, pipeline_id = _replicas(input_context)
    n = len(features["example_weights"])
    padded = steps_per_epoch(n, batch_size * replicas) * batch_size * replicas

    def epoch(number):
        key = tf.stack([tf.constant(seed, tf.int64), number])
        positions = tf.data.Dataset.range(padded)
        return positions.map(lambda i: tf.where(
            i < n, tf.random.experimental.index_shuffle(tf.minimum(i, n - 1), key, n - 1),
            tf.constant(-1, tf.int64)))

    dataset = tf.data.Dataset.range(2 ** 62).flat_map(epoch)
    if pipelines > 1:
        dataset = dataset.shard(pipelines, pipeline_id)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    if skip_batches:
        dataset = dataset.skip(skip_batches)
    return dataset.map(_gather(features)).prefetch(tf.data.AUTOTUNE)


def eval_dataset(features, batch_size, input_context=None):
    """Every example once, in order, then weight-0 padding to whole global batches."""
    replicas, pipelines, pipeline_id = _replicas(input_context)
    n = len(features["example_weights"])
    padded = steps_per_epoch(n, batch_size * replicas) * batch_size * replicas
    order = np.full(padded, -1, np.int64)
    order[:n] = np.arange(n)
    dataset = tf.data.Dataset.from_tensor_slices(order)
    if pipelines > 1:
        dataset = dataset.shard(pipelines, pipeline_id)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.map(_gather(features)).prefetch(tf.data.AUTOTUNE)
