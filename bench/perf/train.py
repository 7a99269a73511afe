"""The `train` suite: one pretraining step (MLM on 20 positions + NSP, AdamW, clip 1.0) per
library, each built the way that library's own users build it. Every builder returns
`(step, steps_per_call)`: `step()` runs optimizer steps and returns once they are done."""

from bench.perf.common import (MODELS, SEQ, VOCAB, keras_hub_backbone, model_garden_encoder,
                               pretraining_batch)


def ours(size, batch, dtype, steps_per_loop=1, jit_compile=False):
    """`trainers/pretrain.py`'s model, optimizer and loop (`run_pretraining` builds them with
    `_build`), fed from memory."""
    import keras
    import tensorflow as tf

    from keras_bert_x.config import BertConfig
    from keras_bert_x.training.pretraining import PretrainConfig, _build

    keras.mixed_precision.set_global_policy(dtype)
    cfg = PretrainConfig(model_dir="unused", train_batch_size=batch, mixed_precision=dtype,
                         steps_per_loop=steps_per_loop, jit_compile=jit_compile)
    m = MODELS[size]
    config = BertConfig(vocab_size=VOCAB, hidden_size=m["hidden"],
                        num_hidden_layers=m["layers"], num_attention_heads=m["heads"],
                        intermediate_size=m["intermediate"])
    _, loop = _build(cfg, config, tf.distribute.get_strategy())
    iterator = iter(tf.data.Dataset.from_tensors(pretraining_batch(batch)).repeat())
    return (lambda: loop.train_steps(iterator, steps_per_loop)), steps_per_loop


def _gradient_step(model_call, variables, optimizer, tf):
    """A tf.function step for the Keras peers: tape, clip by global norm 1.0, apply."""

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = model_call(batch)
        grads = tape.gradient(loss, variables)
        grads, _ = tf.clip_by_global_norm(grads, 1.0)
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    return step


def _losses(tf, batch, mlm_logits, nsp_logits):
    labels = batch["masked_lm_ids"]
    per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels, tf.cast(mlm_logits, tf.float32))
    nsp = tf.nn.sparse_softmax_cross_entropy_with_logits(
        batch["next_sentence_labels"], tf.cast(nsp_logits, tf.float32))
    return tf.reduce_mean(per_token) + tf.reduce_mean(nsp)


def keras_hub(size, batch, dtype):
    """keras-hub's BertBackbone + MaskedLMHead tied to its token embedding (what its
    BertMaskedLM is) + a Dense(2) NSP head on the pooled output; Keras AdamW."""
    import keras
    import keras_hub
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(dtype)
    backbone = keras_hub_backbone(size)
    mlm_head = keras_hub.layers.MaskedLMHead(token_embedding=backbone.token_embedding,
                                             intermediate_activation="gelu")
    nsp_head = keras.layers.Dense(2)
    data = pretraining_batch(batch)
    inputs = {"token_ids": data["input_word_ids"], "segment_ids": data["input_type_ids"],
              "padding_mask": data["input_mask"].astype(bool)}

    def call(b):
        out = backbone(b["inputs"], training=True)
        return _losses(tf, b, mlm_head(out["sequence_output"], b["masked_lm_positions"]),
                       nsp_head(out["pooled_output"]))

    sample = dict(data, inputs=inputs)
    call(sample)  # builds the heads
    variables = (backbone.trainable_variables + mlm_head.trainable_variables
                 + nsp_head.trainable_variables)
    optimizer = keras.optimizers.AdamW(1e-4, weight_decay=0.01, epsilon=1e-6)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    step = _gradient_step(call, variables, optimizer, tf)
    batch_tensors = tf.nest.map_structure(tf.constant, sample)
    return (lambda: step(batch_tensors).numpy()), 1


def model_garden(size, batch, dtype):
    """Model Garden's BertEncoderV2 + BertPretrainerV2 (MLM and a `next_sentence`
    ClassificationHead) in tf_keras, with its AdamWeightDecay (legacy_adamw)."""
    import tensorflow as tf
    import tf_keras
    from official.modeling.optimization.legacy_adamw import AdamWeightDecay
    from official.nlp.modeling import layers, models

    tf_keras.mixed_precision.set_global_policy(dtype)
    encoder = model_garden_encoder(size)
    model = models.BertPretrainerV2(
        encoder, mlm_activation=tf_keras.activations.gelu, classification_heads=[
            layers.ClassificationHead(inner_dim=MODELS[size]["hidden"], num_classes=2,
                                      name="next_sentence")])
    data = pretraining_batch(batch)
    feed = {k: data[k] for k in ("input_word_ids", "input_mask", "input_type_ids",
                                 "masked_lm_positions")}

    def call(b):
        out = model(b["feed"], training=True)
        return _losses(tf, b, out["mlm_logits"], out["next_sentence"])

    sample = dict(data, feed=feed)
    call(sample)
    optimizer = AdamWeightDecay(1e-4, weight_decay_rate=0.01, epsilon=1e-6,
                                exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"])
    step = _gradient_step(call, model.trainable_variables, optimizer, tf)
    batch_tensors = tf.nest.map_structure(tf.constant, sample)
    return (lambda: step(batch_tensors).numpy()), 1


def hf_torch(size, batch, dtype):
    """transformers' BertForPreTraining (its MLM head scores every position: HF's design),
    torch.optim.AdamW, clip_grad_norm_ 1.0; bf16 through torch.autocast."""
    import torch
    import transformers

    torch.manual_seed(0)
    m = MODELS[size]
    model = transformers.BertForPreTraining(transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=m["hidden"], num_hidden_layers=m["layers"],
        num_attention_heads=m["heads"], intermediate_size=m["intermediate"]))
    model.train()
    data = pretraining_batch(batch)
    labels = torch.full((batch, SEQ), -100, dtype=torch.long)
    positions = torch.from_numpy(data["masked_lm_positions"]).long()
    labels.scatter_(1, positions, torch.from_numpy(data["masked_lm_ids"]).long())
    feed = dict(input_ids=torch.from_numpy(data["input_word_ids"]).long(),
                attention_mask=torch.from_numpy(data["input_mask"]).long(),
                token_type_ids=torch.from_numpy(data["input_type_ids"]).long(),
                labels=labels,
                next_sentence_label=torch.from_numpy(data["next_sentence_labels"]).long())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, eps=1e-6)
    bf16 = dtype == "mixed_bfloat16"

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**feed).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return float(loss)

    return step, 1


BUILDERS = {"ours": ours, "keras_hub": keras_hub, "model_garden": model_garden,
            "hf_torch": hf_torch}
