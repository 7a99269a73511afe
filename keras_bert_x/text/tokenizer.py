"""`BertTokenizer`: raw strings -> BERT input tensors, in the TensorFlow graph (tf-text inside)."""

import collections

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from keras_bert_x.errors import BertInputError
from keras_bert_x.io_utils import read_vocab
from keras_bert_x.text.packing import length_buckets as resolve_buckets
from keras_bert_x.text.packing import pack

RESERVED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# What separates words for alignment (see `BertTokenizer.tokenize_words`), as an RE2 class.
WORD_SEPARATORS = r"[ \t\r\n\x{202F}]+"


def load_vocabulary(vocabulary, source="vocabulary"):
    """Tokens from a vocab.txt path or a sequence; checks the reserved tokens are present."""
    if isinstance(vocabulary, (str, bytes)) or hasattr(vocabulary, "__fspath__"):
        source = str(vocabulary)
        try:
            tokens = read_vocab(vocabulary)
        except FileNotFoundError:
            raise BertInputError(f"{source}: vocab file not found") from None
    else:
        tokens = tuple(vocabulary)
    missing = [t for t in RESERVED_TOKENS if t not in tokens]
    if missing:
        raise BertInputError(f"{source}: vocabulary lacks the reserved token(s) {' '.join(missing)}")
    if len(set(tokens)) != len(tokens):
        dup = next(t for t, n in collections.Counter(tokens).items() if n > 1)
        raise BertInputError(f"{source}: token {dup!r} appears more than once")
    return tokens


def normalize_text(text, lower_case=True, strip_accents=None):
    """Cleans strings as BERT's BasicTokenizer does (the Hugging Face fast tokenizer's rules).

    Drops control/format characters and U+FFFD, maps Unicode spaces to ' '; when stripping
    accents, NFD and drop combining marks; when uncased, lower-case.
    """
    strip_accents = lower_case if strip_accents is None else strip_accents
    text = tf.strings.regex_replace(text, r"[\t\n\r]", " ")
    text = tf.strings.regex_replace(text, r"[\p{C}\x{FFFD}]", "")
    text = tf.strings.regex_replace(text, r"[\p{Zs}\x{2028}\x{2029}]", " ")
    if strip_accents:
        text = tf.strings.regex_replace(tf_text.normalize_utf8(text, "NFD"), r"\p{Mn}", "")
    if lower_case:
        # ICU lower-cases a word-final capital sigma to ς; BERT maps every Σ to σ.
        text = tf.strings.lower(tf.strings.regex_replace(text, "Σ", "σ"), encoding="utf-8")
    return text


def _fill_empty_rows(ragged, fill):
    """A 2-D ragged tensor with every empty row replaced by [fill]."""
    lengths = ragged.row_lengths()
    empty = tf.equal(lengths, 0)
    splits = tf.concat([[0], tf.cumsum(tf.where(empty, tf.ones_like(lengths), lengths))], 0)
    rows = ragged.value_rowids()
    within = tf.range(tf.size(ragged.flat_values, out_type=tf.int64)) - tf.gather(
        ragged.row_splits, rows)
    values = tf.scatter_nd(tf.expand_dims(tf.gather(splits, rows) + within, 1),
                           ragged.flat_values, splits[-1:])
    holes = tf.boolean_mask(splits[:-1], empty)
    values = tf.tensor_scatter_nd_update(values, tf.expand_dims(holes, 1),
                                         tf.fill(tf.shape(holes), tf.cast(fill, values.dtype)))
    return tf.RaggedTensor.from_row_splits(values, splits)


@keras.saving.register_keras_serializable(package="keras_bert_x")
class BertTokenizer(keras.layers.Layer):
    """WordPiece tokenizer and packer: strings -> `input_word_ids`, `input_mask`, `input_type_ids`.

    `tok(texts)` packs `[CLS] text [SEP]`; `tok((texts_a, texts_b))` packs
    `[CLS] a [SEP] b [SEP]` with type ids 0 then 1, trimming the longer segment first. Every
    output is int32 [B, max_seq_length], zero-padded; with `length_buckets` ("auto": multiples
    of 16, or a list of lengths) [B, W], W the smallest bucket that holds the batch's longest
    sequence, so short texts cost short computations (truncation is still at max_seq_length).

    Text is normalised as Google's and Hugging Face's BERT tokenizers do (drop control and format
    characters, map Unicode spaces to ' ', and when uncased: NFD, drop combining marks,
    lower-case), then split and WordPiece-encoded by tf-text's `FastBertTokenizer`; words over
    `max_chars_per_word` characters become [UNK]. Ids equal `BertTokenizerFast`'s (tested on a
    1 MB corpus and hard cases); as in Google's BERT, "[CLS]" typed in the text is not special.

    `tflite_compatible=True` leaves normalisation to tf-text's own kernel (NFKC case folding) so
    that the graph holds only ops TFLite can run with tf-text's custom-op registrar; it then
    differs from the reference on compatibility characters (ligatures, full-width forms),
    control characters and very long non-ASCII words (limit counted in bytes).

    >>> tok = BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"],
    ...                     max_seq_length=6)
    >>> tok(["Hello world!"])["input_word_ids"].numpy().tolist()
    [[2, 5, 6, 1, 3, 0]]
    """

    def __init__(self, vocabulary, lower_case=True, strip_accents=None, max_seq_length=128,
                 max_chars_per_word=100, tflite_compatible=False, length_buckets=None,
                 **kwargs):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.vocabulary = load_vocabulary(vocabulary)
        self.lower_case = lower_case
        self.strip_accents = lower_case if strip_accents is None else strip_accents
        self.max_seq_length = max_seq_length
        self.max_chars_per_word = max_chars_per_word
        self.tflite_compatible = tflite_compatible
        if max_seq_length < 3:
            raise BertInputError(f"max_seq_length must be at least 3, got {max_seq_length}")
        buckets = resolve_buckets(length_buckets, max_seq_length)
        self.length_buckets = None if buckets == (max_seq_length,) else buckets
        if tflite_compatible and lower_case != self.strip_accents:
            raise BertInputError("tflite_compatible=True supports lower_case == strip_accents only")
        ids = {t: i for i, t in enumerate(self.vocabulary)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            ids[t] for t in RESERVED_TOKENS)
        self._wordpiece = tf_text.FastBertTokenizer(
            list(self.vocabulary), token_out_type=tf.int32, unknown_token="[UNK]",
            # Strict mode counts characters itself (see _unk_long_words); 4 bytes per character
            # is the most UTF-8 needs, so the byte limit never cuts a word that is short enough.
            max_bytes_per_word=max_chars_per_word * (1 if tflite_compatible else 4),
            lower_case_nfd_strip_accents=tflite_compatible and lower_case,
            support_detokenization=True)
        self._is_suffix = tf.constant([t.startswith("##") for t in self.vocabulary])
        self._offsets_wordpiece = None  # built when first needed (see piece_offsets)
        self.built = True

    @property
    def vocab_size(self):
        return len(self.vocabulary)

    def normalize(self, text):
        """The text the WordPiece step sees (strict mode)."""
        if self.tflite_compatible:
            return text
        return normalize_text(text, self.lower_case, self.strip_accents)

    def _unk_long_words(self, text, pieces, starts, ends):
        """Replaces every word longer than max_chars_per_word characters by a single [UNK].

        `pieces` is [B, (pieces)] with byte offsets into `text`; a word is a piece that does not
        start with "##" plus the "##" pieces after it.
        """
        flat = pieces.flat_values
        word_begins = tf.logical_not(tf.gather(self._is_suffix, flat))
        word_id = tf.cumsum(tf.cast(word_begins, tf.int32)) - 1
        num_words = tf.reduce_sum(tf.cast(word_begins, tf.int32))
        word_start = tf.math.unsorted_segment_min(starts.flat_values, word_id, num_words)
        word_end = tf.math.unsorted_segment_max(ends.flat_values, word_id, num_words)
        # Characters never outnumber bytes: only words over the limit in bytes need counting.
        suspects = tf.where(word_end - word_start > self.max_chars_per_word)[:, 0]
        suspect_row = tf.gather(tf.math.unsorted_segment_min(pieces.value_rowids(), word_id,
                                                             num_words), suspects)
        suspect_start = tf.gather(word_start, suspects)
        suspect_text = tf.strings.substr(tf.gather(text, suspect_row), suspect_start,
                                         tf.gather(word_end, suspects) - suspect_start)
        too_long = tf.scatter_nd(
            tf.expand_dims(suspects, 1),
            tf.strings.length(suspect_text, unit="UTF8_CHAR") > self.max_chars_per_word,
            tf.cast(tf.expand_dims(num_words, 0), tf.int64))
        long_piece = tf.gather(too_long, word_id)
        values = tf.where(long_piece, self.unk_id, flat)
        keep = tf.logical_or(tf.logical_not(long_piece), word_begins)
        return tf.ragged.boolean_mask(pieces.with_flat_values(values),
                                      pieces.with_flat_values(keep))

    def tokenize(self, texts):
        """Strings [B] -> ragged int32 WordPiece ids [B, (pieces)], no special tokens."""
        texts = tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1])
        if self.tflite_compatible:
            return self._wordpiece.tokenize(texts)
        text = self.normalize(texts)
        # A word longer than the limit lies inside a run of that many non-spaces (RE2 counts
        # characters): only such rarely seen sentences need the slower offsets path.
        suspect = tf.strings.regex_full_match(
            text, f"(?s).*\\S{{{self.max_chars_per_word + 1},}}.*")
        suspects = tf.where(suspect)[:, 0]
        plain = self._wordpiece.tokenize(text)
        suspect_text = tf.gather(text, suspects)
        exact = self._unk_long_words(suspect_text,
                                     *self._wordpiece.tokenize_with_offsets(suspect_text))
        rows = tf.range(tf.shape(text, out_type=tf.int64)[0])
        rank = tf.cumsum(tf.cast(suspect, tf.int64)) - 1
        source = tf.where(suspect, tf.shape(text, out_type=tf.int64)[0] + rank, rows)
        return tf.gather(tf.concat([plain, exact], axis=0), source)

    def tokenize_words(self, texts):
        """Strings [B] -> (pieces [B, (words), (pieces)], word_starts, word_ends [B, (words)]).

        Words are the parts of each text between runs of space, tab, CR, LF and U+202F, the
        split Google's run_squad makes (and `keras_bert_x.data.tasks.squad`): each is
        WordPiece-tokenized alone (a word that gives no piece, a lone control character say,
        gets [UNK]), and its start and end are byte offsets into the original string, so a
        prediction maps back to the text. All in the TensorFlow graph: a serving signature can
        take raw strings and return words. (tf-text's WhitespaceTokenizer is not used: its
        offsets cut multi-byte spaces such as U+00A0 in half.)
        """
        texts = tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1])
        # The splitter stops at a NUL byte; a same-length stand-in keeps every offset.
        split_input = tf.strings.regex_replace(texts, r"\x00", "\x01")
        words, starts, ends = tf_text.regex_split_with_offsets(split_input, WORD_SEPARATORS)
        words = tf.strings.substr(tf.gather(texts, words.value_rowids()), starts.flat_values,
                                  ends.flat_values - starts.flat_values)
        words = starts.with_flat_values(words)
        pieces = _fill_empty_rows(self.tokenize(words.flat_values), self.unk_id)
        return words.with_flat_values(pieces), starts, ends

    def piece_offsets(self, words, pieces):
        """(begins, ends): byte offsets of each of `pieces` [N, (P)] (`tokenize(words)`) in
        its word of `words` [N] as written (before normalisation), ragged like `pieces`.

        tf-text's own normalising WordPiece (lower-case, NFD, accents dropped) maps its pieces
        back to the raw bytes; where its pieces of a word are not exactly ours (compatibility
        characters, control characters, a word that became [UNK]), every piece of that word
        spans the whole word.
        """
        if self._offsets_wordpiece is None:
            with tf.init_scope():  # its model is a constant: make it outside any graph trace
                self._offsets_wordpiece = self._offsets_tokenizer()
        ids, begins, ends = self._offsets_wordpiece.tokenize_with_offsets(words)
        row = pieces.value_rowids()
        within = tf.range(tf.size(pieces.flat_values, out_type=tf.int64)) - tf.gather(
            pieces.row_splits, row)
        at = tf.minimum(tf.gather(begins.row_splits, row) + within,
                        tf.maximum(tf.size(ids.flat_values, out_type=tf.int64) - 1, 0))

        def aligned(values):  # the other tokenizer's value at each of our pieces
            return tf.gather(tf.concat([values.flat_values, tf.zeros([1], values.dtype)], 0), at)

        same_count = tf.equal(ids.row_lengths(), pieces.row_lengths())
        same_piece = tf.logical_and(tf.gather(same_count, row),
                                    tf.equal(aligned(ids), pieces.flat_values))
        exact_word = tf.math.unsorted_segment_min(
            tf.cast(same_piece, tf.int32), row, tf.shape(words, out_type=tf.int64)[0]) > 0
        exact = tf.gather(exact_word, row)
        word_length = tf.cast(tf.gather(tf.strings.length(words), row), tf.int64)
        return (pieces.with_flat_values(tf.where(exact, aligned(begins), 0)),
                pieces.with_flat_values(tf.where(exact, aligned(ends), word_length)))

    def _offsets_tokenizer(self):
        return tf_text.FastBertTokenizer(
            list(self.vocabulary), token_out_type=tf.int32, unknown_token="[UNK]",
            max_bytes_per_word=self.max_chars_per_word * 4,
            lower_case_nfd_strip_accents=self.lower_case and self.strip_accents)

    def word_pieces(self, texts, batch_size=4096):
        """Python lists [text][word][piece ids] of `tokenize_words`, run in batches."""
        out = []
        for start in range(0, len(texts), batch_size):
            pieces, _, _ = self.tokenize_words(texts[start:start + batch_size])
            out.extend(pieces.to_list())
        return out

    def call(self, inputs):
        if isinstance(inputs, tuple):
            if len(inputs) != 2:
                raise ValueError(f"expected (texts_a, texts_b), got a tuple of {len(inputs)}")
            a, b = (self.tokenize(x) for x in inputs)
            return pack(a.to_tensor(), a.row_lengths(), self.cls_id, self.sep_id, self.pad_id,
                        self.max_seq_length, b.to_tensor(), b.row_lengths(),
                        buckets=self.length_buckets)
        a = self.tokenize(inputs)
        return pack(a.to_tensor(), a.row_lengths(), self.cls_id, self.sep_id, self.pad_id,
                    self.max_seq_length, buckets=self.length_buckets)

    def detokenize(self, ids):
        """int ids [B, T] (padding and [CLS]/[SEP] ignored) -> strings [B], pieces re-joined."""
        ids = tf.convert_to_tensor(ids)
        if ids.shape.rank == 1:
            ids = tf.expand_dims(ids, 0)
        ids = tf.cast(ids, tf.int32)
        keep = (ids != self.pad_id) & (ids != self.cls_id) & (ids != self.sep_id)
        words = self._wordpiece.detokenize(tf.ragged.boolean_mask(ids, keep))
        return tf.strings.reduce_join(words, axis=-1, separator=" ") \
            if words.shape.rank == 2 else words

    def compute_output_spec(self, inputs):
        width = None if self.length_buckets else self.max_seq_length
        spec = keras.KerasTensor((None, width), dtype="int32")
        return {"input_word_ids": spec, "input_mask": spec, "input_type_ids": spec}

    def get_config(self):
        config = super().get_config()
        config.update(vocabulary=list(self.vocabulary), lower_case=self.lower_case,
                      strip_accents=self.strip_accents, max_seq_length=self.max_seq_length,
                      max_chars_per_word=self.max_chars_per_word,
                      tflite_compatible=self.tflite_compatible,
                      length_buckets=list(self.length_buckets) if self.length_buckets else None)
        return config
