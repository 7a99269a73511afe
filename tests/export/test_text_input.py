"""Request strings made safe (byte cap, UTF-8) and pieces mapped back to the raw text."""

import unicodedata

import tensorflow as tf

import keras_bert_x as kbx
from keras_bert_x.export.text_input import char_offsets, clean_text


def test_clean_text_caps_bytes_and_repairs_utf8():
    raw = [b"short", "é" .encode() * 10, b"ab\xffcd", b"", b"x" * 100]
    out = clean_text(tf.constant(raw), 7).numpy()
    assert out[0] == b"short"
    # 7 bytes cut the fourth "é" in half: the half becomes U+FFFD, nothing invalid remains.
    assert out[1] == "ééé\ufffd".encode()
    assert out[2] == "ab\ufffdcd".encode()
    assert out[3] == b"" and out[4] == b"x" * 7
    for value in out:
        value.decode("utf-8")  # valid UTF-8


def test_char_offsets_count_code_points():
    text = "naïve 東京 ok"
    data = text.encode()
    byte_offsets = [data.index("東".encode()), data.index(b"ok"), len(data)]
    chars = char_offsets(tf.constant([text]), tf.ragged.constant([byte_offsets], tf.int64))
    assert chars.to_list() == [[text.index("東"), text.index("ok"), len(text)]]


def _normalized(text):
    return "".join(c for c in unicodedata.normalize("NFD", text.lower())
                   if unicodedata.category(c) != "Mn")


def test_piece_offsets_point_into_the_raw_words(vocab_file):
    tok = kbx.BertTokenizer(vocab_file)
    words = ["Zürich.", "naïve", "Crème", "brûlée!", "Hello", "playing", "ﬁne", "Ⱥ.ẞ", "x" * 120]
    pieces = tok.tokenize(words)
    begins, ends = tok.piece_offsets(tf.constant(words), pieces)
    vocab = tok.vocabulary
    for word, ids, b, e in zip(words, pieces.to_list(), begins.to_list(), ends.to_list()):
        raw = word.encode()
        for piece, start, end in zip(ids, b, e):
            span = raw[start:end].decode("utf-8")  # never a cut character
            text = vocab[piece].removeprefix("##")
            if word in ("ﬁne", "Ⱥ.ẞ", "x" * 120):  # compatibility, changed length, [UNK]
                assert _normalized(span) == text or (start, end) == (0, len(raw)), word
            else:
                assert _normalized(span) == text, (word, vocab[piece], span)
    zurich = tok.tokenize(["Zürich."]).to_list()[0]
    assert [vocab[i] for i in zurich] == ["zurich", "."]
    assert (begins.to_list()[0], ends.to_list()[0]) == ([0, 7], [7, 8])  # "Zürich", "."
