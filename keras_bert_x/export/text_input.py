"""Raw request strings made safe to tokenize: valid UTF-8 and a bounded number of bytes."""

import tensorflow as tf

# Bytes of raw text kept per position of max_seq_length. A WordPiece token of English text
# takes about 5 bytes with its space; 64 leaves room for long words, accents and runs of
# spaces or control characters (which give no token), so only text that could never fit is
# cut, and one huge request cannot allocate a huge tensor.
BYTES_PER_POSITION = 64


def default_max_bytes(max_seq_length):
    return max_seq_length * BYTES_PER_POSITION


def clean_text(texts, max_bytes):
    """Strings [B] cut to `max_bytes` bytes, then made valid UTF-8: invalid bytes (and a
    character the cut split) become U+FFFD, which the tokenizer drops as BERT's tokenizers
    do. Cutting first bounds the work whatever a request holds (at most 3 * max_bytes bytes
    come out)."""
    texts = tf.strings.substr(texts, 0, max_bytes)
    return tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace",
                                        replacement_char=0xFFFD)


def char_offsets(texts, byte_offsets):
    """Byte offsets into `texts` [B] (ragged [B, (N)]) as character (code point) offsets, the
    way Python indexes a `str`; an offset at the end of a text maps to its length."""
    _, char_starts = tf.strings.unicode_decode_with_offsets(texts, "UTF-8")
    limit = tf.int32.max
    table = tf.cast(char_starts, tf.int32).to_tensor(default_value=limit)
    table = tf.concat([table, tf.fill([tf.shape(table)[0], 1], limit)], axis=1)
    dense = tf.cast(byte_offsets, tf.int32).to_tensor(default_value=0)
    chars = tf.searchsorted(table, dense, side="left", out_type=tf.int32)
    return tf.RaggedTensor.from_tensor(chars, lengths=byte_offsets.row_lengths())
