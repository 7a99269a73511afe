"""tf.data pipelines over in-memory fine-tuning features, for one device or tf.distribute.

Every epoch is a seeded permutation of all examples, padded with weight-0 examples to whole
global batches: each example is seen once an epoch (as in Hugging Face's trainer, whose last
batch is partial), and the loss, normalised by the global weight, is the same as a partial
batch's. With several input pipelines the permuted stream is dealt round-robin, so a global
step holds the same examples whatever the number of workers, and `skip_batches` resumes
exactly where a run stopped.

Token features are kept at their real length (`TaskFeatures`). With length buckets a batch
is padded to the smallest bucket that holds its longest example, not to max_seq_length, and
training batches are grouped by length as Hugging Face's `group_by_length` does: the epoch's
permutation is cut into mega-batches of many global batches, each sorted by length, cut into
global batches, and the batches shuffled (seeded). Every replica of a global step gets the same
width, so shapes stay few (one per bucket: XLA and TPUs compile once per bucket).
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

# Hugging Face's LengthGroupedSampler: mega-batches of up to 50 batches, fewer for small sets.
MEGABATCH_BATCHES = 50
# Padding value of a token feature when its padded positions disagree (labels: ignored).
_PAD_DEFAULTS = {"labels": -1}


def _replicas(input_context):
    if input_context is None:
        return 1, 1, 0
    return (input_context.num_replicas_in_sync, input_context.num_input_pipelines,
            input_context.input_pipeline_id)


@dataclasses.dataclass
class TaskFeatures:
    """Fine-tuning features at their real lengths: token features (`[N, (length)]`, stored flat
    with row splits), per-example features (`[N, ...]`), and what padding puts back."""
    tokens: dict        # name -> flat values of every example's real positions
    row_splits: np.ndarray
    examples: dict      # name -> np.ndarray [N, ...]
    pad_values: dict    # token feature name -> value at padded positions
    max_seq_length: int

    @classmethod
    def from_arrays(cls, arrays):
        """From `{name: array}` padded to max_seq_length (what the task readers give); the
        real length of a row is its `input_mask` sum (masks are 1 then 0)."""
        if isinstance(arrays, cls):
            return arrays
        if "input_mask" not in arrays:  # no token features: nothing to cut
            n = len(arrays["example_weights"])
            return cls({}, np.zeros(n + 1, np.int64), dict(arrays), {}, 0)
        mask = np.asarray(arrays["input_mask"])
        t = mask.shape[1]
        lengths = mask.sum(axis=1).astype(np.int64)
        keep = mask.astype(bool)
        tokens, examples, pads = {}, {}, {}
        for name, value in arrays.items():
            value = np.asarray(value)
            if value.ndim == 2 and value.shape[1] == t:
                tokens[name] = value[keep]
                padded = np.unique(value[~keep])
                pads[name] = padded[0].item() if len(padded) == 1 else _PAD_DEFAULTS.get(name, 0)
            else:
                examples[name] = value
        splits = np.concatenate([[0], np.cumsum(lengths)])
        return cls(tokens, splits, examples, pads, t)

    def __len__(self):
        return len(self.examples["example_weights"])

    @property
    def lengths(self):
        return np.diff(self.row_splits)

    def padded(self, name, width=None):
        """A token feature as an array [N, width] (max_seq_length by default)."""
        width = width or self.max_seq_length
        out = np.full((len(self), width), self.pad_values[name], self.tokens[name].dtype)
        lengths = self.lengths
        out[np.arange(width)[None, :] < lengths[:, None]] = self.tokens[name]
        return out


def resolve_buckets(features, buckets):
    """None (fixed max_seq_length) or the buckets, for features that have token features."""
    if not buckets or not features.tokens or tuple(buckets) == (features.max_seq_length,):
        return None
    return tuple(int(b) for b in buckets)


def _gather(features, batch_size, fixed_width):
    """(indices, width) -> feature batch; index -1 is a padding example (weight 0). The batch
    keeps its indices as `example_index`: predictions gathered from several workers come back
    interleaved, and are put in order by it."""
    examples = {k: tf.constant(v) for k, v in features.examples.items()}
    splits = tf.constant(features.row_splits)
    tokens = {k: tf.RaggedTensor.from_row_splits(tf.constant(v), splits)
              for k, v in features.tokens.items()}

    def gather(indices, widths):
        safe = tf.maximum(indices, 0)
        batch = {k: tf.gather(v, safe) for k, v in examples.items()}
        # Static when fixed (today's [B, max_seq_length]); else this batch's bucket.
        width = fixed_width or widths[0]
        for name, ragged in tokens.items():
            rows = tf.gather(ragged, safe)  # a padding example's rows are cut to the width
            dense = rows.to_tensor(default_value=tf.cast(features.pad_values[name], rows.dtype),
                                   shape=[batch_size, width])
            batch[name] = tf.ensure_shape(dense, [batch_size, fixed_width or None])
        batch["example_weights"] = batch["example_weights"] * tf.cast(indices >= 0, tf.float32)
        batch["example_index"] = tf.cast(indices, tf.int32)
        return batch

    return gather


def steps_per_epoch(num_examples, global_batch):
    return math.ceil(num_examples / global_batch)


def _widths(order, lengths, global_batch, buckets):
    """The bucket of every global batch of `order` ([batches * G], -1 = padding example),
    repeated for each of its examples."""
    real = tf.where(order >= 0, tf.gather(lengths, tf.maximum(order, 0)), 0)
    longest = tf.reduce_max(tf.reshape(real, [-1, global_batch]), axis=1)
    table = tf.constant(buckets, tf.int64)
    fits = tf.expand_dims(longest, 1) <= tf.expand_dims(table, 0)
    width = tf.gather(table, tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32))
    return tf.repeat(width, global_batch)


def epoch_order(n, lengths, global_batch, seed, epoch, buckets=None):
    """(example indices, width of each one's batch) of one epoch, a tensor each [B * G].

    A stateless permutation of (seed, epoch); with `buckets`, grouped by length in mega-batches
    and its global batches shuffled by (seed, -1 - epoch), a key no epoch's permutation uses.
    """
    batches = steps_per_epoch(n, global_batch)
    padded = batches * global_batch
    epoch = tf.cast(epoch, tf.int64)
    key = tf.stack([tf.constant(seed, tf.int64), epoch])
    order = tf.random.experimental.index_shuffle(tf.range(n, dtype=tf.int64), key, n - 1)
    order = tf.concat([order, tf.fill([padded - n], tf.constant(-1, tf.int64))], 0)
    if buckets is None:
        return order, tf.zeros([padded], tf.int64)
    lengths = tf.constant(lengths, tf.int64)
    real = tf.where(order >= 0, tf.gather(lengths, tf.maximum(order, 0)), 0)
    mega = global_batch * max(1, min(batches // 4, MEGABATCH_BATCHES))
    group = tf.range(padded, dtype=tf.int64) // mega
    # Ascending group, then longest first within it; stable, so the permutation breaks ties.
    sort_key = group * (max(buckets) + 1) - real  # real <= max(buckets) = max_seq_length
    order = tf.gather(order, tf.argsort(sort_key, stable=True))
    if batches > 1:
        shuffled = tf.random.experimental.index_shuffle(
            tf.range(batches, dtype=tf.int64), tf.stack([key[0], -1 - epoch]), batches - 1)
        order = tf.reshape(tf.gather(tf.reshape(order, [batches, global_batch]), shuffled), [-1])
    return order, _widths(order, lengths, global_batch, buckets)


def train_dataset(features, batch_size, seed=0, input_context=None, skip_batches=0,
                  buckets=None):
    """Endless batches of `batch_size` (per replica) drawn epoch by epoch from `features`
    (a `TaskFeatures` or {name: array [N, ...]}, with `example_weights`). The permutations are
    stateless TF ops, so the pipeline runs wherever tf.data runs (TPU hosts included: no
    Python generator) and restarts the same. `buckets`: lengths to pad batches to (grouped by
    length); None pads every batch to max_seq_length."""
    features = TaskFeatures.from_arrays(features)
    buckets = resolve_buckets(features, buckets)
    replicas, pipelines, pipeline_id = _replicas(input_context)
    n, global_batch = len(features), batch_size * replicas
    lengths = features.lengths

    def epoch(number):
        return tf.data.Dataset.from_tensor_slices(
            epoch_order(n, lengths, global_batch, seed, number, buckets))

    dataset = tf.data.Dataset.range(2 ** 62).flat_map(epoch)
    if pipelines > 1:
        dataset = dataset.shard(pipelines, pipeline_id)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    if skip_batches:
        dataset = dataset.skip(skip_batches)
    gather = _gather(features, batch_size, None if buckets else features.max_seq_length)
    return dataset.map(gather).prefetch(tf.data.AUTOTUNE)


def eval_order(features, global_batch, buckets=None):
    """(indices, widths) of an evaluation: every example once — longest first with buckets,
    in order without — then weight-0 padding to whole global batches."""
    n = len(features)
    padded = steps_per_epoch(n, global_batch) * global_batch
    order = np.full(padded, -1, np.int64)
    if buckets is None:
        order[:n] = np.arange(n)
        return order, np.zeros(padded, np.int64)
    order[:n] = np.argsort(-features.lengths, kind="stable")
    widths = _widths(tf.constant(order), tf.constant(features.lengths, tf.int64),
                     global_batch, buckets)
    return order, widths.numpy()


def eval_dataset(features, batch_size, input_context=None, buckets=None):
    """Every example once (length-sorted with `buckets`: `example_index` puts predictions back
    in order), then weight-0 padding to whole global batches."""
    features = TaskFeatures.from_arrays(features)
    buckets = resolve_buckets(features, buckets)
    replicas, pipelines, pipeline_id = _replicas(input_context)
    dataset = tf.data.Dataset.from_tensor_slices(
        eval_order(features, batch_size * replicas, buckets))
    if pipelines > 1:
        dataset = dataset.shard(pipelines, pipeline_id)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    gather = _gather(features, batch_size, None if buckets else features.max_seq_length)
    return dataset.map(gather).prefetch(tf.data.AUTOTUNE)


def padding_report(features, global_batch, seed=0, buckets=None):
    """One log line: the positions an epoch computes, with and without the buckets, against
    its real tokens."""
    features = TaskFeatures.from_arrays(features)
    buckets = resolve_buckets(features, buckets)
    n = len(features)
    real = int(features.lengths.sum())
    fixed = steps_per_epoch(n, global_batch) * global_batch * features.max_seq_length
    if not real:
        return None
    line = f"fixed length {features.max_seq_length}: {1 - real / fixed:.0%} padding"
    if buckets is None:
        return f"length buckets off; an epoch computes {fixed:,} positions ({line})"
    _, widths = epoch_order(n, features.lengths, global_batch, seed, 0, buckets)
    bucketed = int(tf.reduce_sum(widths))
    name = "each batch at its longest" if buckets == tuple(range(1, buckets[-1] + 1)) \
        else f"length buckets {buckets[0]}..{buckets[-1]} ({len(buckets)})"
    return (f"{name}: an epoch computes "
            f"{bucketed:,} positions for {real:,} real tokens, {1 - real / bucketed:.0%} padding "
            f"({line}, {fixed:,} positions)")
