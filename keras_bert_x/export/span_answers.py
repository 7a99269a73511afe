"""Extractive answers in the TensorFlow graph: question + context strings -> answer span.

The same procedure as training and evaluation (`keras_bert_x.data.tasks.squad` and
`squad_postprocess`), written with dense tensor ops so that a serving signature runs it: the
question is cut to `max_query_length` pieces; the context is split into words, each
WordPiece-tokenized, and covered by windows `doc_stride` pieces apart; in every window a span
may start only in the context where that window gives the piece its most context, must start
among the window's `n_best` highest start logits and end among its `n_best` highest end logits,
end at or after its start, and be at most `max_answer_length` pieces long. The best span over
all windows (start + end logit) wins; its text runs from its first piece's first byte to its
last piece's last byte. A context longer than `max_windows` windows is read up to there.
"""

import tensorflow as tf

from keras_bert_x.export.text_input import char_offsets
from keras_bert_x.text.packing import pack


class SpanAnswerer:
    def __init__(self, model, tokenizer, doc_stride=128, max_query_length=64,
                 max_answer_length=30, max_windows=8, n_best=20):
        length = tokenizer.max_seq_length
        if length < max_query_length + 4:
            raise ValueError(f"max_seq_length={length} leaves no room for context after "
                             f"max_query_length={max_query_length}")
        if min(doc_stride, max_answer_length, max_windows, n_best) < 1:
            raise ValueError("doc_stride, max_answer_length, max_windows and n_best must be >= 1")
        self.model, self.tokenizer = model, tokenizer
        self.doc_stride, self.max_query_length = doc_stride, max_query_length
        self.max_answer_length, self.max_windows = max_answer_length, max_windows
        self.n_best = min(n_best, length)

    def _windows(self, query_length, doc_length):
        """Per question: window starts and lengths [B, K], which are real, and K."""
        room = self.tokenizer.max_seq_length - query_length - 3
        step = tf.minimum(room, self.doc_stride)
        count = 1 + tf.maximum(0, (doc_length - room + step - 1) // step)
        count = tf.minimum(count, self.max_windows)
        k = tf.reduce_max(tf.concat([count, [1]], 0))
        index = tf.expand_dims(tf.range(k), 0)
        starts = tf.expand_dims(step, 1) * index
        lengths = tf.maximum(0, tf.minimum(tf.expand_dims(doc_length, 1) - starts,
                                           tf.expand_dims(room, 1)))
        return starts, lengths, index < tf.expand_dims(count, 1), k

    def _best_in_windows(self, start_logits, end_logits, first, length, is_max_context,
                         real_mask):
        """Best valid span of each window: (score, start, end positions); -inf if none.

        Only the n_best x n_best pairs of the highest start and end logits of real positions
        are scored, as in `squad_predictions`: [M, n_best, n_best], whatever max_seq_length.
        """
        width = tf.shape(start_logits)[1]  # max_seq_length, or the batch's length bucket
        k = tf.minimum(self.n_best, width)
        position = tf.expand_dims(tf.range(width), 0)
        in_context = (position >= tf.expand_dims(first, 1)) & (
            position < tf.expand_dims(first + length, 1))
        # Padding is never a candidate (as in `squad_predictions`): the answer does not depend
        # on how far the window was padded.
        real = tf.cast(real_mask, tf.bool)
        starts = tf.math.top_k(tf.where(real, start_logits, float("-inf")), k)
        ends = tf.math.top_k(tf.where(real, end_logits, float("-inf")), k)
        start_ok = tf.gather(in_context & is_max_context, starts.indices, batch_dims=1)
        end_ok = tf.gather(in_context, ends.indices, batch_dims=1)
        i, j = tf.expand_dims(starts.indices, 2), tf.expand_dims(ends.indices, 1)
        ok = (tf.expand_dims(start_ok, 2) & tf.expand_dims(end_ok, 1) & (j >= i)
              & (j - i < self.max_answer_length))
        scores = tf.expand_dims(starts.values, 2) + tf.expand_dims(ends.values, 1)
        scores = tf.reshape(tf.where(ok, scores, float("-inf")), [-1, k * k])
        best = tf.argmax(scores, axis=1, output_type=tf.int32)
        return (tf.reduce_max(scores, axis=1),
                tf.gather(starts.indices, best // k, batch_dims=1),
                tf.gather(ends.indices, best % k, batch_dims=1))

    def __call__(self, question, context):
        tf.debugging.assert_equal(tf.shape(question), tf.shape(context),
                                  message="question and context must hold as many strings")
        tok, t = self.tokenizer, self.tokenizer.max_seq_length
        query = tok.tokenize(question)[:, :self.max_query_length]
        query_length = tf.cast(query.row_lengths(), tf.int32)
        pieces, word_starts, word_ends = tok.tokenize_words(context)
        doc = pieces.merge_dims(1, 2)
        doc_length = tf.cast(doc.row_lengths(), tf.int32)
        starts, lengths, real, k = self._windows(query_length, doc_length)

        # One row per real window: [CLS] question [SEP] context[start:start+length] [SEP].
        cell = tf.where(tf.reshape(real, [-1]))[:, 0]
        row = tf.cast(cell // tf.cast(k, tf.int64), tf.int32)
        window = tf.cast(cell % tf.cast(k, tf.int64), tf.int32)
        w_start = tf.gather(tf.reshape(starts, [-1]), cell)
        w_length = tf.gather(tf.reshape(lengths, [-1]), cell)
        doc_rows = tf.gather(doc.to_tensor(), row)
        doc_rows = tf.concat([doc_rows, tf.zeros([tf.shape(doc_rows)[0], 1], doc_rows.dtype)], 1)
        take = tf.expand_dims(w_start, 1) + tf.expand_dims(tf.range(t), 0)
        window_tokens = tf.gather(doc_rows, tf.minimum(take, tf.shape(doc_rows)[1] - 1),
                                  batch_dims=1)
        q_length = tf.gather(query_length, row)
        features = pack(tf.gather(query.to_tensor(), row), q_length, tok.cls_id, tok.sep_id,
                        tok.pad_id, t, window_tokens, w_length, buckets=tok.length_buckets)
        logits = self.model(features, training=False)
        first = q_length + 2  # the window's first context position
        t = tf.shape(features["input_word_ids"])[1]  # the windows' bucket from here on

        # Google's "max context" rule: a piece is read in the window where its nearer side
        # is farthest from the window's edge (plus 0.01 per piece of window length).
        absolute = tf.expand_dims(w_start - first, 1) + tf.expand_dims(tf.range(t), 0)  # [M, T]
        s = tf.expand_dims(tf.gather(starts, row), 2)     # [M, K, 1]
        n = tf.expand_dims(tf.gather(lengths, row), 2)
        a = tf.expand_dims(absolute, 1)                   # [M, 1, T]
        covers = (a >= s) & (a < s + n) & tf.expand_dims(tf.gather(real, row), 2)
        score = tf.cast(tf.minimum(a - s, s + n - 1 - a), tf.float64) + 0.01 * tf.cast(n, tf.float64)
        score = tf.where(covers, score, -1.0)
        is_max_context = tf.equal(tf.argmax(score, axis=1, output_type=tf.int32),
                                  tf.expand_dims(window, 1))

        best, begin, end = self._best_in_windows(logits["start_logits"], logits["end_logits"],
                                                 first, w_length, is_max_context,
                                                 features["input_mask"])
        batch = tf.shape(question)[0]
        grid = tf.scatter_nd(tf.expand_dims(cell, 1), best, [tf.cast(batch * k, tf.int64)])
        grid = tf.where(tf.reshape(real, [-1]), grid, float("-inf"))
        grid = tf.reshape(grid, [batch, k])
        chosen = tf.cast(tf.range(batch) * k + tf.argmax(grid, axis=1, output_type=tf.int32),
                         tf.int64)
        m = tf.scatter_nd(tf.expand_dims(cell, 1), tf.range(tf.size(cell, out_type=tf.int32)),
                          [tf.cast(batch * k, tf.int64)])
        m = tf.gather(m, chosen)
        score = tf.reduce_max(grid, axis=1)
        found = score > float("-inf")

        # Window positions -> pieces of the context -> bytes of the context.
        def piece_index(position):
            return tf.gather(w_start, m) + tf.gather(position, m) - tf.gather(first, m)

        words = tf.strings.substr(tf.gather(context, word_starts.value_rowids()),
                                  word_starts.flat_values,
                                  word_ends.flat_values - word_starts.flat_values)
        piece_begins, piece_ends = tok.piece_offsets(words, pieces.values)
        word_of_piece = pieces.values.value_rowids()
        origin = tf.gather(word_starts.flat_values, word_of_piece)
        flat_begin = tf.concat([origin + piece_begins.flat_values, [0]], 0)
        flat_end = tf.concat([origin + piece_ends.flat_values, [0]], 0)
        last = tf.size(flat_begin, out_type=tf.int64) - 1
        base = tf.gather(doc.row_splits, tf.range(batch, dtype=tf.int64))

        def at(position, table):
            g = base + tf.cast(piece_index(position), tf.int64)
            return tf.gather(table, tf.where(found, tf.minimum(g, last), last))

        byte_begin = tf.where(found, at(begin, flat_begin), 0)
        byte_end = tf.where(found, at(end, flat_end), 0)
        answer = tf.strings.substr(context, byte_begin, byte_end - byte_begin)
        offsets = tf.RaggedTensor.from_tensor(tf.stack([byte_begin, byte_end], axis=1))
        chars = char_offsets(context, offsets).to_tensor()
        return {"answer": tf.where(found, answer, ""),
                "start": tf.where(found, chars[:, 0], -1),
                "end": tf.where(found, chars[:, 1], -1),
                "score": tf.where(found, score, 0.0)}

