"""Packing token ids into BERT inputs with dense ops only (TFLite-convertible).

tf-text's `combine_segments` and `RoundRobinTrimmer` bring RaggedGather into the graph, which
TFLite cannot run; here every step is a gather, comparison or select on dense [B, T] tensors.
"""

import tensorflow as tf

from keras_bert_x.errors import BertInputError

BUCKET_STEP = 16  # default bucket spacing: a server or XLA compiles max_seq_length / 16 shapes


def length_buckets(spec, max_seq_length, compiled=True):
    """The padded lengths a batch may take, ascending and ending at `max_seq_length`.

    `spec`: "auto", "longest" (every length: each batch padded to its longest, as Hugging
    Face's dynamic padding), "none" or None (`max_seq_length` only: fixed length), a
    comma-separated string or a sequence of lengths (`max_seq_length` is added if missing).
    "auto" is multiples of 16 where every new shape costs a compilation (`compiled`: a served
    SavedModel's warm-up, XLA, a TPU), else "longest": TensorFlow's CPU and GPU kernels run any
    shape as it comes, so rounding up would only compute padding (at 64 tokens on MR, 26%
    more positions than the longest).
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("none", "")):
        return (max_seq_length,)
    name = spec.strip().lower() if isinstance(spec, str) else None
    if name == "longest" or (name == "auto" and not compiled):
        return tuple(range(1, max_seq_length + 1))
    if name == "auto":
        return tuple(range(BUCKET_STEP, max_seq_length, BUCKET_STEP)) + (max_seq_length,)
    try:
        lengths = [int(x) for x in (spec.split(",") if isinstance(spec, str) else spec)]
    except ValueError:
        raise BertInputError(f"--length_buckets={spec}: give auto, longest, none or lengths "
                             "such as 32,64,128") from None
    if any(b < 3 or b > max_seq_length for b in lengths):
        raise BertInputError(f"--length_buckets={spec}: every length must be in "
                             f"[3, max_seq_length={max_seq_length}]")
    return tuple(sorted(set(lengths) | {max_seq_length}))


def bucket_width(lengths, buckets):
    """The smallest of `buckets` (ascending) that holds every one of `lengths` (int32 [B]);
    the smallest for an empty batch. Plain min/where ops: TFLite runs them."""
    longest = tf.reduce_max(tf.concat([tf.cast(lengths, tf.int32), [0]], 0))
    table = tf.constant(buckets, tf.int32)
    return tf.reduce_min(tf.where(table >= longest, table, table[-1]))


def pair_lengths(len_a, len_b, budget):
    """Lengths to keep of two segments so that they fit `budget` tokens, longest first.

    The shorter segment is kept whole when it fits in half the budget and the longer one takes
    the rest; otherwise the budget is split evenly, the longer (on a tie, the second) segment
    taking the odd token. This is Hugging Face tokenizers' `longest_first`, so pairs truncate
    exactly as BertTokenizerFast does.
    """
    swap = len_a > len_b
    short = tf.where(swap, len_b, len_a)
    new_long = tf.where(short > budget, short, tf.maximum(short, budget - short))
    over = short + new_long > budget
    new_short = tf.where(over, budget // 2, short)
    new_long = tf.where(over, budget // 2 + budget % 2, new_long)
    keep_a = tf.where(swap, new_long, new_short)
    keep_b = tf.where(swap, new_short, new_long)
    fits = len_a + len_b <= budget
    return (tf.where(fits, len_a, tf.minimum(len_a, keep_a)),
            tf.where(fits, len_b, tf.minimum(len_b, keep_b)))


def _take(tokens, index):
    """tokens[b, index[b, j]] with `index` clipped into range; tokens has >= 1 column."""
    width = tf.shape(tokens)[1]
    return tf.gather(tokens, tf.clip_by_value(index, 0, width - 1), batch_dims=1)


def pack(tokens_a, len_a, cls_id, sep_id, pad_id, seq_length, tokens_b=None, len_b=None,
         buckets=None):
    """[CLS] a [SEP] (b [SEP]) from dense, right-padded id matrices and their real lengths.

    Segments are truncated to fit `seq_length` (longest first for pairs). Returns int32
    `input_word_ids`, `input_mask`, `input_type_ids`, each [B, seq_length], or with `buckets`
    (ascending lengths, the last `seq_length`) [B, W]: W the smallest bucket that holds the
    batch's longest packed sequence. Truncation is the same either way.
    """
    batch = tf.shape(tokens_a)[0]
    len_a = tf.cast(len_a, tf.int32)
    len_b = None if len_b is None else tf.cast(len_b, tf.int32)
    pad_column = tf.zeros([batch, 1], tokens_a.dtype)  # so that an empty batch still gathers
    tokens_a = tf.concat([tokens_a, pad_column], axis=1)
    paired = tokens_b is not None
    if paired:
        tokens_b = tf.concat([tokens_b, pad_column], axis=1)
        keep_a, keep_b = pair_lengths(len_a, len_b, seq_length - 3)
    else:
        keep_a = tf.minimum(len_a, seq_length - 2)
        keep_b = tf.zeros_like(keep_a)
    width = seq_length
    if buckets is not None and tuple(buckets) != (seq_length,):
        width = bucket_width(keep_a + keep_b + (3 if paired else 2), buckets)
    keep_a, keep_b = tf.expand_dims(keep_a, 1), tf.expand_dims(keep_b, 1)  # [B, 1]
    position = tf.broadcast_to(tf.expand_dims(tf.range(width), 0), [batch, width])
    first_sep = keep_a + 1
    second_start = keep_a + 2
    second_sep = second_start + keep_b
    total = second_sep + 1 if paired else first_sep + 1

    ids = tf.fill([batch, width], tf.cast(pad_id, tokens_a.dtype))
    ids = tf.where(position < total, tf.cast(sep_id, ids.dtype), ids)
    if paired:
        in_b = (position >= second_start) & (position < second_sep)
        ids = tf.where(in_b, _take(tokens_b, position - second_start), ids)
    ids = tf.where((position >= 1) & (position < first_sep), _take(tokens_a, position - 1), ids)
    ids = tf.where(position == 0, tf.cast(cls_id, ids.dtype), ids)
    mask = position < total
    type_ids = (position > first_sep) & mask
    # tf.where rather than a bool cast: TFLite's converter folds cast(bool) into the
    # embeddings' index check as a zeros_like on bools, which it cannot lower.
    one, zero = tf.ones_like(position), tf.zeros_like(position)
    return {"input_word_ids": tf.cast(ids, tf.int32), "input_mask": tf.where(mask, one, zero),
            "input_type_ids": tf.where(type_ids, one, zero)}
