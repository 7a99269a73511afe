"""Pretraining batches straight from text, with fresh NSP pairs and fresh masks every epoch.

The corpus is tokenized once (tf-text, batched). Each epoch a seeded Python generator re-pairs
sentences (the NSP algorithm of `instances.pairs_from_document`, ~15 us a pair; or, for
MLM-only pretraining, RoBERTa-style single segments), and masking runs in the tf.data graph with
tf-text's `mask_language_model` (RandomItemSelector + a MaskValuesChooser: 80% [MASK], 10% a
random ordinary token, 10% unchanged), over whole words when asked. Batches match
`pretraining_dataset`'s, so the trainer takes either; with `length_buckets` a step's batches
are grouped by length (short_seq_prob and document ends make short sequences) and padded to the
smallest bucket that holds the step's longest, every replica of the step to the same width.
"""

import random

import tensorflow as tf
import tensorflow_text as tf_text

from keras_bert_x.data.corpus import expand_inputs, tokenize_documents
from keras_bert_x.data.instances import (MaskingConfig, Vocab, pairs_from_document,
                                         segments_from_document)
from keras_bert_x.errors import BertInputError
from keras_bert_x.text.packing import bucket_width
from keras_bert_x.text.tokenizer import load_vocabulary


def _group_whole_words(ids, is_suffix, special):
    """[B, (pieces)] -> [B, (words), (pieces)]: a "##" piece joins the piece before it."""
    flat = ids.flat_values
    suffix = tf.gather(is_suffix, flat)
    is_special = tf.reduce_any(tf.equal(tf.expand_dims(flat, 1), special), axis=1)
    previous_special = tf.concat([[True], is_special[:-1]], axis=0)
    begins = tf.logical_not(suffix) | is_special | previous_special
    words = tf.RaggedTensor.from_row_starts(flat, tf.where(begins)[:, 0])
    words_per_row = tf.math.segment_sum(tf.cast(begins, tf.int64), ids.value_rowids())
    return tf.RaggedTensor.from_row_lengths(words, words_per_row)


class _OrdinaryTokenChooser(tf_text.MaskValuesChooser):
    """tf-text's 80/10/10 chooser, with random replacements drawn from ordinary tokens only.

    tf-text draws them from the whole vocabulary, [CLS]/[SEP]/[PAD]/[MASK]/[unusedN] included
    (so does Google's script); our `create_pretraining_data` never inserts those, and text input
    must give the same kind of examples as TFRecords. Ids are shifted up by
    R = the number of ordinary tokens and the vocabulary size given to tf-text is R, so its
    random draws land in [0, R) — indices into the ordinary tokens — and nothing else does.
    """

    def __init__(self, random_ids, mask_id):
        self._shift = len(random_ids)
        super().__init__(self._shift, mask_id + self._shift, 0.8, 0.1)
        self._random_ids = tf.constant(random_ids, tf.int64)

    def get_mask_values(self, masked_lm_ids):
        values = super().get_mask_values(masked_lm_ids + self._shift)
        flat = values.flat_values
        drawn = tf.gather(self._random_ids, tf.minimum(flat, self._shift - 1))
        return values.with_flat_values(tf.where(flat < self._shift, drawn, flat - self._shift))


class _Masker:
    def __init__(self, vocab_tokens, config):
        vocab = Vocab(vocab_tokens)
        self.config = config
        self.special = tf.constant([vocab.cls_id, vocab.sep_id, 0], tf.int64)
        self.is_suffix = tf.constant(vocab.is_suffix)
        self.selector = tf_text.RandomItemSelector(
            max_selections_per_batch=config.max_predictions_per_seq,
            selection_rate=config.masked_lm_prob, unselectable_ids=[vocab.cls_id, vocab.sep_id, 0])
        self.chooser = _OrdinaryTokenChooser(vocab.random_ids, vocab.mask_id)

    def _within_budget(self, positions, originals, budget):
        """[B, (selected)] bool: the selected pieces that fit in `budget` without cutting a word.

        tf-text caps the number of items (words) per row, not pieces; we keep the longest
        prefix of whole words (positions are ascending) that has at most `budget` pieces.
        """
        pos = positions.to_tensor(default_value=-2)
        previous = tf.pad(pos[:, :-1], [[0, 0], [1, 0]], constant_values=-2)
        continues = (pos == previous + 1) & tf.gather(self.is_suffix, originals.to_tensor())
        starts = tf.pad(~continues, [[0, 0], [0, 1]], constant_values=True)  # [B, M + 1]
        k = tf.range(tf.shape(starts)[1], dtype=tf.int64)
        fits = k <= tf.expand_dims(tf.minimum(positions.row_lengths(), budget), 1)
        cut = tf.reduce_max(tf.where(starts & fits, k, 0), axis=1)
        keep = tf.expand_dims(k[:-1], 0) < tf.expand_dims(cut, 1)  # [B, M]
        return tf.RaggedTensor.from_tensor(keep, lengths=positions.row_lengths())

    def __call__(self, ids, segments, labels, buckets=None):
        t, p = self.config.max_seq_length, self.config.max_predictions_per_seq
        if buckets is not None:
            t = bucket_width(ids.row_lengths(), buckets)
        items = _group_whole_words(ids, self.is_suffix, self.special) \
            if self.config.do_whole_word_mask else ids
        # Outputs are per piece ([B, (pieces)]) also when whole words were the items.
        masked, positions, originals = tf_text.mask_language_model(items, self.selector,
                                                                   self.chooser)
        batch = tf.shape(ids.row_splits)[0] - 1
        # A static width stays static (the fixed-length reader's [B, T]).
        dense = masked.to_tensor(shape=[None, t] if isinstance(t, int) else [batch, t])
        keep = self._within_budget(positions, originals, p)
        # Pieces of words past the budget go back to their original ids, unmasked.
        dropped = tf.ragged.boolean_mask(positions, ~keep)
        dense = tf.tensor_scatter_nd_update(
            dense, tf.stack([dropped.value_rowids(), dropped.flat_values], axis=1),
            tf.ragged.boolean_mask(originals, ~keep).flat_values)
        positions = tf.ragged.boolean_mask(positions, keep)
        originals = tf.ragged.boolean_mask(originals, keep)
        return {
            "input_word_ids": tf.cast(dense, tf.int32),
            "input_mask": tf.cast(tf.ones_like(ids).to_tensor(shape=[batch, t]), tf.int32),
            "input_type_ids": tf.cast(segments.to_tensor(shape=[batch, t]), tf.int32),
            "masked_lm_positions": tf.cast(positions.to_tensor(shape=[batch, p]), tf.int32),
            "masked_lm_ids": tf.cast(originals.to_tensor(shape=[batch, p]), tf.int32),
            "masked_lm_weights": tf.ones_like(originals, tf.float32).to_tensor(shape=[batch, p]),
            "next_sentence_labels": tf.cast(labels, tf.int32),
            "example_weights": tf.ones([batch], tf.float32),
        }


def dynamic_masking_dataset(file_patterns, vocab, batch_size, config=MaskingConfig(),
                            lower_case=True, seed=0, input_context=None, shuffle_buffer=4096,
                            nsp=True, skip_batches=0, length_buckets=None):
    """An endless `tf.data.Dataset` of pretraining batches built from raw text files.

    `vocab` is a vocab.txt path or token list; `batch_size` is per input pipeline. With an
    `input_context`, each pipeline pairs a disjoint share of the documents. `nsp=False` builds
    single-segment sequences (labels all 0, for MLM-only pretraining). The sequences are the
    same for the same seed, so `skip_batches` resumes where a run stopped (the masks of the
    batches after that are drawn afresh). `length_buckets` (ascending, the last
    max_seq_length): pad to buckets instead of max_seq_length.
    """
    files = expand_inputs(file_patterns)
    tokens = load_vocabulary(vocab)
    documents, _ = tokenize_documents(files, tokens, lower_case)
    if not documents:
        raise BertInputError(f"{','.join(files)}: no text found")
    vocab_info = Vocab(tokens)
    pipelines, pipeline_id = ((input_context.num_input_pipelines, input_context.input_pipeline_id)
                              if input_context else (1, 0))

    make = pairs_from_document if nsp else segments_from_document

    def pairs():
        epoch = 0
        while True:
            rng = random.Random(f"{seed}-{pipeline_id}-{epoch}")
            order = list(range(pipeline_id, len(documents), pipelines))
            rng.shuffle(order)
            for index in order:
                yield from make(documents, index, config, vocab_info, rng)
            epoch += 1

    spec = (tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64),
            tf.TensorSpec([], tf.bool))
    dataset = tf.data.Dataset.from_generator(pairs, output_signature=spec)
    dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    masker = _Masker(tokens, config)
    if length_buckets is None or tuple(length_buckets) == (config.max_seq_length,):
        dataset = dataset.ragged_batch(batch_size, drop_remainder=True)
        if skip_batches:  # before masking: skipped batches cost only pairing
            dataset = dataset.skip(skip_batches)
        return dataset.map(masker, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    # Model Garden's bucketed reader, on ragged sequences: each sequence waits in its bucket's
    # queue until the queue holds one step (a batch per replica of this pipeline); the step is
    # masked as one group and padded to one width (replicas of a step must agree in shape:
    # TPUs run one program).
    group = input_context.num_replicas_in_sync // pipelines if input_context else 1
    buckets = tuple(length_buckets)
    table = tf.constant(buckets, tf.int64)
    dataset = dataset.group_by_window(
        key_func=lambda ids, segments, label: tf.argmax(
            tf.cast(tf.size(ids, out_type=tf.int64) <= table, tf.int32), output_type=tf.int64),
        reduce_func=lambda key, window: window.ragged_batch(batch_size * group,
                                                            drop_remainder=True),
        window_size=batch_size * group)
    if skip_batches:  # whole steps: a resumed run skips step * group batches
        dataset = dataset.skip(skip_batches // group)
    dataset = dataset.map(lambda *row: masker(*row, buckets=buckets),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.unbatch().batch(batch_size).prefetch(tf.data.AUTOTUNE)
