"""The TFRecord format of BERT pretraining data, shared with google-research/bert and Model Garden.

Features (all int64 but `masked_lm_weights`, float32): `input_ids`, `input_mask`, `segment_ids`
[max_seq_length]; `masked_lm_positions`, `masked_lm_ids`, `masked_lm_weights`
[max_predictions_per_seq]; `next_sentence_labels` [1] (1 = B is a random segment). Model
Garden's `--use_v2_feature_names` files say `input_word_ids` / `input_type_ids` instead.
"""

import numpy as np

FEATURES = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
            "masked_lm_weights", "next_sentence_labels")
V2_NAMES = {"input_ids": "input_word_ids", "segment_ids": "input_type_ids"}


def _varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class ExampleEncoder:
    """Serializes pretraining instances as `tf.train.Example` protos, ~10x faster than protobuf.

    Building `tf.train.Example` objects costs ~110 us per record, as much as creating the
    instance itself; here the wire format is written directly: every value is a small
    non-negative int whose varint comes from a table, and features go in sorted-key order (a
    valid encoding of the proto's map; `tf.io.parse_example` and protobuf read it back).
    """

    def __init__(self, max_seq_length, max_predictions_per_seq, vocab_size):
        self.max_seq_length = max_seq_length
        self.max_predictions_per_seq = max_predictions_per_seq
        # Varints of every id, position and length we can meet (lengths stay under 16 KB).
        self._varints = [_varint(i) for i in range(max(vocab_size, max_seq_length, 1 << 14))]
        self._keys = {key: _varint(1 << 3 | 2) + _varint(len(key)) + key.encode()
                      for key in FEATURES}
        self._pad_weights = np.zeros(max_predictions_per_seq, "<f4")

    def _wrap(self, field_byte, payload):
        return field_byte + self._varints[len(payload)] + payload

    def _feature(self, key, kind, packed):
        # map entry {1: key, 2: Feature {kind: {1: packed values}}}
        value = self._wrap(b"\x1a" if kind == 3 else b"\x12", self._wrap(b"\x0a", packed))
        return self._wrap(b"\x0a", self._keys[key] + self._wrap(b"\x12", value))

    def encode(self, instance):
        t, p, table = self.max_seq_length, self.max_predictions_per_seq, self._varints
        n, k = len(instance.input_ids), len(instance.masked_lm_positions)
        segments = instance.segment_ids
        first_b = n - int(segments.sum())
        weights = self._pad_weights.copy()
        weights[:k] = 1.0
        body = b"".join((
            self._feature("input_ids", 3, b"".join([table[v] for v in instance.input_ids.tolist()])
                          + b"\x00" * (t - n)),
            self._feature("input_mask", 3, b"\x01" * n + b"\x00" * (t - n)),
            self._feature("masked_lm_ids", 3, b"".join(
                [table[v] for v in instance.masked_lm_ids.tolist()]) + b"\x00" * (p - k)),
            self._feature("masked_lm_positions", 3, b"".join(
                [table[v] for v in instance.masked_lm_positions.tolist()]) + b"\x00" * (p - k)),
            self._feature("masked_lm_weights", 2, weights.tobytes()),
            self._feature("next_sentence_labels", 3,
                          b"\x01" if instance.is_random_next else b"\x00"),
            self._feature("segment_ids", 3,
                          b"\x00" * first_b + b"\x01" * (n - first_b) + b"\x00" * (t - n)),
        ))
        return self._wrap(b"\x0a", body)


def feature_spec(max_seq_length, max_predictions_per_seq, v2_names=False, nsp=True):
    """`tf.io.parse_example` spec for the format above (without the NSP label if not `nsp`)."""
    import tensorflow as tf

    spec = {
        "input_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "masked_lm_positions": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
        "masked_lm_ids": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
        "masked_lm_weights": tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32),
        "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
    }
    if not nsp:
        del spec["next_sentence_labels"]
    if v2_names:
        spec = {V2_NAMES.get(k, k): v for k, v in spec.items()}
    return spec
