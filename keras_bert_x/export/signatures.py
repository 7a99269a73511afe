"""What an exported model serves: raw strings -> task outputs, and token ids -> logits.

One class per kind of model. Each has `text_inputs` (the names of its string inputs),
`serve_text(*strings)` and `serve_ids(features)`, both pure TensorFlow (the tokenizer runs in
the graph), and `examples` (a few requests for the warm-up file and smoke tests). Outputs are
dense tensors, as TF Serving returns them: per-word outputs are padded ("" for strings, -1 for
ids and offsets) and `num_words` says how many are real. Offsets are characters (code points)
into the request's text, as Python indexes a `str`, end exclusive.
"""

import tensorflow as tf

from keras_bert_x.export.span_answers import SpanAnswerer
from keras_bert_x.export.text_input import char_offsets, clean_text
from keras_bert_x.models.encoder import INPUT_NAMES
from keras_bert_x.text.packing import pack

EXAMPLE_TEXTS = ("A gripping, beautifully acted film.", "Dull and far too long.",
                 "Barack Obama visited Paris with Angela Merkel in 2009.")


def model_outputs(model, features):
    """What `serve_ids` returns: the model's logits (a dict for span QA), or an encoder's
    pooled and sequence outputs."""
    from keras_bert_x.models import BertEncoder

    out = model(features, training=False)
    if isinstance(model, BertEncoder):
        return {"pooled_output": out["pooled_output"], "sequence_output": out["sequence_output"]}
    return out if isinstance(out, dict) else {"logits": out}


def ids_signature():
    return [{n: tf.TensorSpec([None, None], tf.int32, name=n) for n in INPUT_NAMES}]


class _Serving:
    text_inputs = ("text",)
    examples = {"text": EXAMPLE_TEXTS}
    # id -> label name; the export sets a table read from the SavedModel's labels.txt asset.
    label_table = None

    def __init__(self, model, tokenizer, max_input_bytes):
        self.model, self.tokenizer, self.max_input_bytes = model, tokenizer, max_input_bytes
        labels = getattr(model, "labels", None) or [
            str(i) for i in range(getattr(model, "num_classes", getattr(model, "num_labels", 0)))]
        self.labels = list(labels)

    def label_names(self, ids):
        if self.label_table is not None:
            return self.label_table.lookup(tf.cast(ids, tf.int64))
        return tf.gather(tf.constant(self.labels), ids)

    def features(self, text):
        return self.tokenizer(clean_text(text, self.max_input_bytes))

    def _filler(self, pieces):
        """A text of `pieces` WordPiece tokens: one-piece words of the vocabulary repeated."""
        tok = self.tokenizer
        word = next((w for w in ("the", "a", "film", "x") + tuple(tok.vocabulary)
                     if w.isalpha() and w in tok.vocabulary
                     and len(tok.tokenize([w]).flat_values) == 1), None)
        return " ".join([word] * max(pieces, 0)) if word else None

    def _bucket_request(self, width):
        """A request whose packed length is `width`: its batch takes that length bucket."""
        # [CLS] a [SEP], or [CLS] a [SEP] b [SEP] with b one piece.
        text = self._filler(width - 2 - 2 * (len(self.text_inputs) - 1))
        return None if text is None else {n: [text if i == 0 else self._filler(1)]
                                          for i, n in enumerate(self.text_inputs)}

    def warmup_requests(self):
        """The examples (batch of all, batch of one) and one request per length bucket, so that
        a server has run every shape before its first real request."""
        examples = {k: list(v) for k, v in self.examples.items()}
        requests = [examples, {k: v[:1] for k, v in examples.items()}]
        for width in self.tokenizer.length_buckets or ():
            request = self._bucket_request(width)
            if request is not None:
                requests.append(request)
        return requests

    def serve_ids(self, features):
        return model_outputs(self.model, features)


class ClassifierServing(_Serving):
    """`text` (and `text_b` for sentence pairs) -> `probabilities`, `label_id`, `label`;
    a regression model (one output) -> `score`."""

    def __init__(self, model, tokenizer, max_input_bytes, sentence_pairs=False):
        super().__init__(model, tokenizer, max_input_bytes)
        self.sentence_pairs = sentence_pairs
        self.text_inputs = text_input_names(model, sentence_pairs)
        if sentence_pairs:
            self.examples = {"text": EXAMPLE_TEXTS, "text_b": EXAMPLE_TEXTS[::-1]}

    def serve_text(self, text, text_b=None):
        if self.sentence_pairs:
            tf.debugging.assert_equal(tf.shape(text), tf.shape(text_b),
                                      message="text and text_b must hold as many strings")
            cap = self.max_input_bytes
            features = self.tokenizer((clean_text(text, cap), clean_text(text_b, cap)))
        else:
            features = self.features(text)
        logits = self.model(features, training=False)
        if self.model.num_classes == 1:
            return {"score": logits[:, 0]}
        label_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"probabilities": tf.nn.softmax(logits), "label_id": label_id,
                "label": self.label_names(label_id)}


class TokenClassifierServing(_Serving):
    """`text` -> its words (split on whitespace), each word's tag from its first WordPiece:
    `words`, `tags`, `tag_ids`, `tag_probabilities`, `word_starts`, `word_ends`, `num_words`.
    Words that do not fit whole in max_seq_length are not tagged (not returned), as training
    cuts them; `truncated` says whether a text lost words so (or to the byte cap)."""

    def serve_text(self, text):
        cut = tf.strings.length(text) > self.max_input_bytes  # words past the cap are lost too
        text = clean_text(text, self.max_input_bytes)
        tok, length = self.tokenizer, self.tokenizer.max_seq_length
        pieces, starts, ends = tok.tokenize_words(text)
        # Whole words only, as in training (`token_classification_features`): a word is kept
        # if its last piece fits before [SEP].
        counts = pieces.row_lengths(axis=2)                         # [B, (W)] pieces per word
        total = tf.cumsum(counts.flat_values)
        before_row = tf.gather(tf.concat([[0], total], 0), counts.row_splits[:-1])
        last = total - tf.gather(before_row, counts.value_rowids())  # last piece, after [CLS]
        kept = counts.with_flat_values(last <= length - 2)
        tokens = tf.ragged.boolean_mask(pieces, kept).merge_dims(1, 2)
        features = pack(tokens.to_tensor(), tokens.row_lengths(), tok.cls_id, tok.sep_id,
                        tok.pad_id, length, buckets=tok.length_buckets)
        logits = self.model(features, training=False)
        row = starts.value_rowids()
        # The first piece, after [CLS]; words not kept may lie past the batch's width.
        width = tf.shape(logits, out_type=tf.int64)[1]
        position = tf.minimum(last - counts.flat_values + 1, width - 1)
        probabilities = tf.nn.softmax(tf.gather_nd(logits, tf.stack([row, position], axis=1)))
        tag_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        words = tf.strings.substr(tf.gather(text, row), starts.flat_values,
                                  ends.flat_values - starts.flat_values)

        def per_word(values, fill):
            ragged = tf.ragged.boolean_mask(starts.with_flat_values(values), kept)
            return ragged.to_tensor(default_value=fill)

        kept_starts = tf.ragged.boolean_mask(starts, kept)
        kept_ends = tf.ragged.boolean_mask(ends, kept)
        return {"words": per_word(words, ""),
                "tags": per_word(self.label_names(tag_id), ""),
                "tag_ids": per_word(tag_id, -1),
                "tag_probabilities": per_word(tf.reduce_max(probabilities, axis=-1), 0.0),
                "word_starts": char_offsets(text, kept_starts).to_tensor(default_value=-1),
                "word_ends": char_offsets(text, kept_ends).to_tensor(default_value=-1),
                "num_words": tf.cast(kept_starts.row_lengths(), tf.int32),
                "truncated": (kept_starts.row_lengths() < starts.row_lengths()) | cut}


class SpanQAServing(_Serving):
    """`question`, `context` -> `answer`, `start`, `end` (characters of the context) and
    `score`, over sliding windows of the context (see `SpanAnswerer`)."""

    text_inputs = ("question", "context")
    examples = {"question": ("Who visited Paris?", "When was the visit?"),
                "context": (EXAMPLE_TEXTS[2], EXAMPLE_TEXTS[2])}

    def __init__(self, model, tokenizer, max_input_bytes, **window_options):
        super().__init__(model, tokenizer, max_input_bytes)
        self.answerer = SpanAnswerer(model, tokenizer, **window_options)

    def _bucket_request(self, width):
        question, context = self._filler(1), self._filler(width - 4)
        return None if question is None else {"question": [question], "context": [context]}

    def serve_text(self, question, context):
        cap = self.max_input_bytes
        return self.answerer(clean_text(question, cap),
                             clean_text(context, cap * self.answerer.max_windows))


class EncoderServing(_Serving):
    """`text` -> `pooled_output`, `sequence_output` and the `input_mask` saying which of its
    positions are real tokens (with length buckets, [B, W]: the batch's bucket, not
    max_seq_length)."""

    def serve_text(self, text):
        features = self.features(text)
        out = self.serve_ids(features)
        return {**out, "input_mask": features["input_mask"]}


def text_input_names(model, sentence_pairs=False):
    """The string inputs `model` is served with (also those of a tokenizer-in-graph TFLite)."""
    from keras_bert_x import models

    if sentence_pairs and not isinstance(model, models.BertClassifier):
        raise ValueError(f"sentence pairs are for classifiers, not {type(model).__name__}")
    if isinstance(model, models.BertSpanQA):
        return SpanQAServing.text_inputs
    return ("text", "text_b") if sentence_pairs else ("text",)


def serving_for(model, tokenizer, max_input_bytes, sentence_pairs=False, **window_options):
    """The serving functions of one of our models (a classifier, a token classifier, a span QA
    model or a bare encoder)."""
    from keras_bert_x import models

    text_input_names(model, sentence_pairs)  # refuses sentence pairs for other models
    if isinstance(model, models.BertClassifier):
        return ClassifierServing(model, tokenizer, max_input_bytes, sentence_pairs)
    if isinstance(model, models.BertTokenClassifier):
        return TokenClassifierServing(model, tokenizer, max_input_bytes)
    if isinstance(model, models.BertSpanQA):
        return SpanQAServing(model, tokenizer, max_input_bytes, **window_options)
    if isinstance(model, models.BertEncoder):
        return EncoderServing(model, tokenizer, max_input_bytes)
    raise ValueError(f"{type(model).__name__} cannot be served: export a BertClassifier, "
                     "BertTokenClassifier, BertSpanQA or BertEncoder")
