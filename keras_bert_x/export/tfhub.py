"""TF Hub BERT SavedModels: `export_dir/encoder/` and `export_dir/preprocessor/`.

They follow the TF Hub API for text embeddings with Transformer encoders (Model Garden's
`export_tfhub_lib.py` writes the same API from its Keras 2 models), so the code of the
"classify text with BERT" tutorial runs on them unchanged:

    preprocessor = hub.KerasLayer("out/preprocessor")         # strings -> the three inputs
    encoder = hub.KerasLayer("out/encoder", trainable=True)   # -> pooled_output, ...

- encoder: `__call__(inputs, training=False)` with `inputs` the dict of `input_word_ids`,
  `input_mask`, `input_type_ids` (int32 [B, T]) returns `pooled_output`, `default` (the same),
  `sequence_output` and `encoder_outputs` (one per layer); the `serving_default` signature
  returns the first three (for saved_model_cli and TF Serving). `variables`,
  `trainable_variables` and `regularization_losses` are attributes, as `hub.KerasLayer(trainable=True)` needs to
  fine-tune it; `vocab_file` and `do_lower_case` say how text was tokenized. Exported from a
  model with a masked-LM head, it also has `mlm`, called the same way plus
  `masked_lm_positions`, returning `mlm_logits` too.
- preprocessor: `__call__(strings)` -> the three inputs at the default length;
  `tokenize(strings)` -> int32 ragged [B, (words), (pieces)] (a word is a piece and the "##"
  pieces after it), with `tokenize.get_special_tokens_dict()`; `bert_pack_inputs(segments,
  seq_length=...)` packs a list of one or two tokenized segments as our `BertTokenizer` does
  (longest segment trimmed first). The tokenizer runs in the graph: loading needs TensorFlow
  and `tensorflow_text`, nothing of keras_bert_x.
"""

import os
import shutil
import tempfile

import tensorflow as tf

from keras_bert_x.errors import BertInputError
from keras_bert_x.models.encoder import INPUT_NAMES
from keras_bert_x.text.packing import pack


def _hub_object(variables, trainable_variables):
    """An object SavedModel keeps with its attributes (`tf.train.Checkpoint` is the plainest
    AutoTrackable), holding the variables the way `hub.KerasLayer` looks for them."""
    root = tf.train.Checkpoint()
    root.variables = [v.value for v in variables]
    root.trainable_variables = [v.value for v in trainable_variables]
    # No layer of ours has a weight regularizer (BERT decays weights in the optimizer), so the
    # list hub.KerasLayer adds to the model's losses is empty.
    root.regularization_losses = []
    return root


def _encoder_outputs(encoded):
    return {"pooled_output": encoded["pooled_output"], "default": encoded["pooled_output"],
            "sequence_output": encoded["sequence_output"],
            "encoder_outputs": list(encoded["encoder_outputs"])}


def _trace_both(function, specs):
    """Concrete functions for training=False and True: hub.KerasLayer picks one per call."""
    for training in (False, True):
        function.get_concrete_function(specs, training=training)
    return function


def encoder_object(model, vocab_file, lower_case):
    """The encoder SavedModel's root for `model` (a BertEncoder, or a model holding one)."""
    encoder = getattr(model, "encoder", model)
    root = _hub_object(encoder.variables, encoder.trainable_variables)
    specs = {n: tf.TensorSpec([None, None], tf.int32, name=n) for n in INPUT_NAMES}

    @tf.function
    def call(inputs, training=False):
        return _encoder_outputs(encoder({n: inputs[n] for n in INPUT_NAMES}, training=training))

    root.__call__ = _trace_both(call, specs)
    root.vocab_file = tf.saved_model.Asset(vocab_file)
    root.do_lower_case = tf.Variable(bool(lower_case), trainable=False, name="do_lower_case")
    head = getattr(model, "masked_lm_head", None)
    if head is not None:  # the encoder's variables and the head's (not a next-sentence head's)
        root.mlm = _hub_object([*encoder.variables, *head.variables],
                               [*encoder.trainable_variables, *head.trainable_variables])

        @tf.function
        def mlm(inputs, training=False):
            encoded = encoder({n: inputs[n] for n in INPUT_NAMES}, training=training)
            return {**_encoder_outputs(encoded),
                    "mlm_logits": head(encoded["sequence_output"], inputs["masked_lm_positions"])}

        mlm_specs = {**specs, "masked_lm_positions": tf.TensorSpec(
            [None, None], tf.int32, name="masked_lm_positions")}
        root.mlm.__call__ = _trace_both(mlm, mlm_specs)
    return root


def serving_signature(model):
    """The encoder's `serving_default`: a signature's outputs are a flat dict of tensors, so
    no list of layers."""
    encoder = getattr(model, "encoder", model)
    specs = {n: tf.TensorSpec([None, None], tf.int32, name=n) for n in INPUT_NAMES}

    @tf.function(input_signature=[specs])
    def serve(inputs):
        outputs = _encoder_outputs(encoder(inputs, training=False))
        return {k: v for k, v in outputs.items() if k != "encoder_outputs"}

    return serve.get_concrete_function()


def _by_word(pieces, is_suffix):
    """[B, (pieces)] -> [B, (words), (pieces)]: a word starts at every piece that is not a "##"
    continuation (and at each row's first piece)."""
    flat = pieces.flat_values
    rows = pieces.value_rowids()
    position = tf.range(tf.size(flat, out_type=tf.int64))
    starts = tf.logical_or(tf.logical_not(tf.gather(is_suffix, flat)),
                           tf.equal(position, tf.gather(pieces.row_splits, rows)))
    word = tf.cumsum(tf.cast(starts, tf.int64)) - 1
    words = tf.RaggedTensor.from_value_rowids(flat, word,
                                              nrows=tf.reduce_sum(tf.cast(starts, tf.int64)))
    return tf.RaggedTensor.from_value_rowids(words, tf.boolean_mask(rows, starts),
                                             nrows=pieces.nrows())


def preprocessor_object(tokenizer, seq_length, vocab_file):
    """The preprocessor SavedModel's root for `tokenizer` (our BertTokenizer)."""
    root = tf.train.Checkpoint()
    root.vocab_file = tf.saved_model.Asset(vocab_file)
    is_suffix = tf.constant([t.startswith("##") for t in tokenizer.vocabulary])
    special = {"vocab_size": tokenizer.vocab_size, "start_of_sequence_id": tokenizer.cls_id,
               "end_of_segment_id": tokenizer.sep_id, "padding_id": tokenizer.pad_id,
               "mask_id": tokenizer.mask_id}
    strings = tf.TensorSpec([None], tf.string)

    @tf.function(input_signature=[strings])
    def tokenize(texts):
        return _by_word(tokenizer.tokenize(texts), is_suffix)

    root.tokenize = tf.train.Checkpoint()
    root.tokenize.__call__ = tokenize
    root.tokenize.get_special_tokens_dict = tf.train.Checkpoint()
    root.tokenize.get_special_tokens_dict.__call__ = tf.function(
        lambda: {k: tf.constant(v, tf.int32) for k, v in special.items()}, input_signature=[])

    @tf.function(autograph=False)
    def bert_pack_inputs(inputs, seq_length=seq_length):
        if not 1 <= len(inputs) <= 2:
            raise ValueError(f"bert_pack_inputs takes 1 or 2 segments, got {len(inputs)}")
        segments = [s.merge_dims(1, -1) if s.ragged_rank > 1 else s for s in inputs]
        dense = [(s.to_tensor(), s.row_lengths()) for s in segments]
        b = dense[1] if len(dense) == 2 else (None, None)
        return pack(*dense[0], tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id,
                    seq_length, *b)

    # As Model Garden's: one or two segments of ragged rank 1 or 2, any seq_length.
    for ragged_rank in (1, 2):
        for count in (1, 2):
            bert_pack_inputs.get_concrete_function(
                [tf.RaggedTensorSpec([None] * (ragged_rank + 1), tf.int32)] * count,
                seq_length=tf.TensorSpec([], tf.int32))
    root.bert_pack_inputs = tf.train.Checkpoint()
    root.bert_pack_inputs.__call__ = bert_pack_inputs

    @tf.function(input_signature=[strings])
    def preprocess(texts):
        return bert_pack_inputs([tokenize(texts)], seq_length=seq_length)

    root.__call__ = preprocess
    return root


def export_tfhub(model_dir, export_dir, seq_length=128):
    """Writes `export_dir/encoder/` and `export_dir/preprocessor/` from one of our model
    directories (an encoder, any head model, or a fine-tuning run); returns `export_dir`.

    `export_dir` must not exist: it appears whole when both SavedModels are written.
    """
    from keras_bert_x.export.savedmodel import load_model, make_tokenizer, scratch_vocab

    export_dir = os.path.abspath(os.fspath(export_dir))
    if os.path.exists(export_dir):
        raise BertInputError(f"{export_dir}: exists; exports never replace anything (choose a "
                             "new --export_dir)")
    model, path = load_model(model_dir, classes=None)
    limit = model.config.max_position_embeddings
    if not 3 <= seq_length <= limit:
        raise BertInputError(f"--seq_length={seq_length}: must be from 3 to the model's "
                             f"max_position_embeddings ({limit})")
    tokenizer = make_tokenizer(model, seq_length)
    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(export_dir)}.tmp-", dir=parent)
    try:
        vocab_file = scratch_vocab(tmp, tokenizer)
        out = os.path.join(tmp, "out")
        tf.saved_model.save(encoder_object(model, vocab_file, tokenizer.lower_case),
                            os.path.join(out, "encoder"),
                            signatures={"serving_default": serving_signature(model)})
        tf.saved_model.save(preprocessor_object(tokenizer, seq_length, vocab_file),
                            os.path.join(out, "preprocessor"))
        if os.path.exists(export_dir):
            raise BertInputError(f"{export_dir}: appeared while exporting; left as it is")
        os.rename(out, export_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return export_dir
