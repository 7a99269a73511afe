"""The `infer` suite: the encoder's forward pass (inference, no dropout) per library at batch
1/8/32, seq 128, and raw text -> prediction through our SavedModel vs keras-hub's preprocessor
and classifier. Every builder returns a `call()` that returns once its outputs exist."""

import os

from bench.perf.common import (MODELS, SEQ, VOCAB, keras_hub_backbone, model_garden_encoder,
                               pretraining_batch)


def _ids(batch):
    data = pretraining_batch(batch)
    return {k: data[k] for k in ("input_word_ids", "input_mask", "input_type_ids")}


def _config(size):
    from keras_bert_x.config import BertConfig

    m = MODELS[size]
    return BertConfig(vocab_size=VOCAB, hidden_size=m["hidden"], num_hidden_layers=m["layers"],
                      num_attention_heads=m["heads"], intermediate_size=m["intermediate"])


def sentences(n, min_words=12):
    """n real sentences of the bundled Brown corpus (at least `min_words` words each)."""
    from keras_bert_x.data.corpus import bundled_documents

    out = []
    for doc in bundled_documents():
        out += [s for s in doc.splitlines() if len(s.split()) >= min_words]
        if len(out) >= n:
            return out[:n]
    return out


def prepare(work, size="bert_mini"):
    """Random-weight models of `size` with the MiniLM uncased vocabulary (30,522 tokens), saved
    and exported once for the children: an encoder and a 2-class classifier."""
    import keras

    import keras_bert_x as kbx
    from keras_bert_x.demo.stages import minilm_dir
    from keras_bert_x.export.savedmodel import export_saved_model
    from keras_bert_x.text.tokenizer import load_vocabulary

    keras.utils.set_random_seed(0)
    vocabulary = load_vocabulary(os.path.join(minilm_dir(), "vocab.txt"))
    for name, model in (("encoder", kbx.BertEncoder(_config(size))),
                        ("classifier", kbx.BertClassifier(kbx.BertEncoder(_config(size)), 2))):
        model.vocabulary, model.lower_case = vocabulary, True
        model.save_pretrained(os.path.join(work, name))
        export_saved_model(os.path.join(work, name), os.path.join(work, name + "_export"),
                           version=1, max_seq_length=SEQ)


def ours(size, batch, dtype, work=None):
    import keras
    import tensorflow as tf

    import keras_bert_x as kbx

    keras.mixed_precision.set_global_policy(dtype)
    encoder = kbx.BertEncoder(_config(size))
    forward = tf.function(lambda x: encoder(x, training=False)["sequence_output"])
    feed = {k: tf.constant(v) for k, v in _ids(batch).items()}
    return lambda: forward(feed).numpy()


def ours_savedmodel(size, batch, dtype, work):
    """The exported encoder's `serve_ids` signature, loaded as TF Serving would (fp32: an
    export holds the float32 model)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the export's tokenizer ops)

    serve = tf.saved_model.load(os.path.join(work, "encoder_export", "1")).signatures["serve_ids"]
    feed = {k: tf.constant(v) for k, v in _ids(batch).items()}
    return lambda: serve(**feed)["sequence_output"].numpy()


def keras_hub(size, batch, dtype, work=None):
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(dtype)
    backbone = keras_hub_backbone(size)
    ids = _ids(batch)
    feed = {"token_ids": tf.constant(ids["input_word_ids"]),
            "segment_ids": tf.constant(ids["input_type_ids"]),
            "padding_mask": tf.constant(ids["input_mask"].astype(bool))}
    forward = tf.function(lambda x: backbone(x, training=False)["sequence_output"])
    return lambda: forward(feed).numpy()


def model_garden(size, batch, dtype, work=None):
    import tensorflow as tf
    import tf_keras

    tf_keras.mixed_precision.set_global_policy(dtype)
    encoder = model_garden_encoder(size)
    feed = {k: tf.constant(v) for k, v in _ids(batch).items()}
    forward = tf.function(lambda x: encoder(x, training=False)["sequence_output"])
    return lambda: forward(feed).numpy()


def hf_torch(size, batch, dtype, work=None):
    import torch
    import transformers

    m = MODELS[size]
    model = transformers.BertModel(transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=m["hidden"], num_hidden_layers=m["layers"],
        num_attention_heads=m["heads"], intermediate_size=m["intermediate"]),
        add_pooling_layer=True).eval()
    ids = _ids(batch)
    feed = dict(input_ids=torch.from_numpy(ids["input_word_ids"]).long(),
                attention_mask=torch.from_numpy(ids["input_mask"]).long(),
                token_type_ids=torch.from_numpy(ids["input_type_ids"]).long())
    bf16 = dtype == "mixed_bfloat16"

    def call():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(**feed).last_hidden_state.float().numpy()

    return call


def ours_text(size, batch, dtype, work):
    """Raw strings -> label through our exported classifier's `serving_default` (tokenizer in
    the graph)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    serve = tf.saved_model.load(os.path.join(work, "classifier_export", "1")) \
        .signatures["serving_default"]
    texts = tf.constant(sentences(batch))
    return lambda: serve(text=texts)["label"].numpy()


def keras_hub_text(size, batch, dtype, work):
    """The same strings through keras-hub's BertTextClassifierPreprocessor (same vocabulary,
    sequence_length 128) and a BertTextClassifier of the same size, in one tf.function."""
    import keras_hub
    import tensorflow as tf

    from keras_bert_x.demo.stages import minilm_dir

    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=os.path.join(minilm_dir(), "vocab.txt"), lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=SEQ)
    backbone = keras_hub_backbone(size)
    classifier = keras_hub.models.BertTextClassifier(backbone, 2, preprocessor=None)
    predict = tf.function(lambda s: tf.argmax(classifier(preprocessor(s), training=False), -1))
    texts = tf.constant(sentences(batch))
    return lambda: predict(texts).numpy()


BUILDERS = {"ours": ours, "ours_savedmodel": ours_savedmodel, "keras_hub": keras_hub,
            "model_garden": model_garden, "hf_torch": hf_torch, "ours_text": ours_text,
            "keras_hub_text": keras_hub_text}
