"""Test-only writers of reference checkpoints: Google TF1 names and Model Garden BertEncoder."""

import json
import os

import numpy as np
import tensorflow as tf


def write_google_checkpoint(tensors, config, directory):
    """A TF1 `bert_model.ckpt` with Google's variable names, as google-research/bert saves it."""
    os.makedirs(directory, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.compat.v1.Variable(value, name=name.replace("/", "_"))
                     for name, value in tensors.items()}
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, os.path.join(directory, "bert_model.ckpt"), write_meta_graph=False)
    google_config = {k: v for k, v in config.to_dict().items()
                     if k not in ("layer_norm_eps", "mask_fill_value")}  # Google's file lacks them
    with open(os.path.join(directory, "bert_config.json"), "w") as f:
        json.dump(google_config, f)


def build_model_garden_encoder(config):
    """An `official.nlp.modeling.networks.BertEncoderV2` with the shape and activation of `config`."""
    import tf_keras
    from official.nlp.modeling import networks

    approximate = config.hidden_act != "gelu"
    net = networks.BertEncoderV2(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size,
        num_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        max_sequence_length=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size, inner_dim=config.intermediate_size,
        inner_activation=lambda x: tf_keras.activations.gelu(x, approximate=approximate),
        output_dropout=0.0, attention_dropout=0.0)
    ids = tf.ones((1, 2), tf.int32)
    net(dict(input_word_ids=ids, input_mask=ids, input_type_ids=tf.zeros_like(ids)))
    return net


def copy_into_model_garden(net, tensors, config):
    """Assigns canonical (Google-named) tensors to a Model Garden encoder's variables."""
    heads, size, h = config.num_attention_heads, config.head_size, config.hidden_size
    net._embedding_layer.embeddings.assign(tensors["bert/embeddings/word_embeddings"])
    net._position_embedding_layer._position_embeddings.assign(tensors["bert/embeddings/position_embeddings"])
    net._type_embedding_layer.embeddings.assign(tensors["bert/embeddings/token_type_embeddings"])
    net._embedding_norm_layer.gamma.assign(tensors["bert/embeddings/LayerNorm/gamma"])
    net._embedding_norm_layer.beta.assign(tensors["bert/embeddings/LayerNorm/beta"])
    for i, block in enumerate(net._transformer_layers):
        p = f"bert/encoder/layer_{i}"
        att = block._attention_layer
        for proj, dense in (("query", att._query_dense), ("key", att._key_dense),
                            ("value", att._value_dense)):
            dense.kernel.assign(tensors[f"{p}/attention/self/{proj}/kernel"].reshape(h, heads, size))
            dense.bias.assign(tensors[f"{p}/attention/self/{proj}/bias"].reshape(heads, size))
        att._output_dense.kernel.assign(
            tensors[f"{p}/attention/output/dense/kernel"].reshape(heads, size, h))
        att._output_dense.bias.assign(tensors[f"{p}/attention/output/dense/bias"])
        block._attention_layer_norm.gamma.assign(tensors[f"{p}/attention/output/LayerNorm/gamma"])
        block._attention_layer_norm.beta.assign(tensors[f"{p}/attention/output/LayerNorm/beta"])
        block._intermediate_dense.kernel.assign(tensors[f"{p}/intermediate/dense/kernel"])
        block._intermediate_dense.bias.assign(tensors[f"{p}/intermediate/dense/bias"])
        block._output_dense.kernel.assign(tensors[f"{p}/output/dense/kernel"])
        block._output_dense.bias.assign(tensors[f"{p}/output/dense/bias"])
        block._output_layer_norm.gamma.assign(tensors[f"{p}/output/LayerNorm/gamma"])
        block._output_layer_norm.beta.assign(tensors[f"{p}/output/LayerNorm/beta"])
    net._pooler_layer.kernel.assign(tensors["bert/pooler/dense/kernel"])
    net._pooler_layer.bias.assign(tensors["bert/pooler/dense/bias"])


def write_model_garden_checkpoint(tensors, config, directory):
    """Model Garden's layout: `tf.train.Checkpoint(encoder=net)` + bert_config.json. Returns net."""
    net = build_model_garden_encoder(config)
    copy_into_model_garden(net, tensors, config)
    os.makedirs(directory, exist_ok=True)
    tf.train.Checkpoint(encoder=net).save(os.path.join(directory, "bert_model.ckpt"))
    with open(os.path.join(directory, "bert_config.json"), "w") as f:
        json.dump(config.to_dict(), f)
    return net


def model_garden_outputs(net, batch):
    out = net({k: tf.constant(v) for k, v in batch.items()}, training=False)
    return np.asarray(out["sequence_output"]), np.asarray(out["pooled_output"])
