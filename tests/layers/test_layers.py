"""Each layer builds, serializes through get_config/from_config, and has its documented shape."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_bert_x.layers import (BertEmbeddings, BertPooler, MultiHeadSelfAttention,
                                 TransformerEncoderBlock)
from keras_bert_x.layers.attention import attention_bias


def _round_trip(layer, *args, **kwargs):
    """Rebuilds `layer` from its serialized config, copies weights, checks equal outputs."""
    out = layer(*args, **kwargs)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    clone(*args, **kwargs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(np.asarray(out), np.asarray(clone(*args, **kwargs)))
    assert clone.get_config() == layer.get_config()
    return out


def test_embeddings():
    layer = BertEmbeddings(vocab_size=20, hidden_size=8, max_positions=10, type_vocab_size=3)
    ids = np.array([[1, 2, 3], [4, 5, 6]], "int32")
    out = _round_trip(layer, (ids, np.array([[0, 1, 2], [0, 0, 0]], "int32")))
    assert tuple(out.shape) == (2, 3, 8)
    assert [tuple(w.shape) for w in layer.weights[:3]] == [(20, 8), (10, 8), (3, 8)]


def test_attention_uses_one_fused_projection():
    layer = MultiHeadSelfAttention(num_heads=2, mask_fill_value=-1e4)
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    out = _round_trip(layer, x, attention_mask=np.ones((2, 5), "int32"))
    assert tuple(out.shape) == (2, 5, 8)
    assert tuple(layer.qkv.kernel.shape) == (8, 24)


def test_attention_ignores_masked_keys():
    layer = MultiHeadSelfAttention(num_heads=2)
    x = np.random.default_rng(0).normal(size=(1, 5, 8)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0]], "int32")
    a = np.asarray(layer(x, attention_mask=mask))
    x2 = x.copy()
    x2[:, 3:] = 100.0  # changing masked keys/values must not change the output
    b = np.asarray(layer(x2, attention_mask=mask))
    np.testing.assert_allclose(a[:, :3], b[:, :3], atol=1e-6)


def test_attention_bias_shapes_and_fill():
    bias = np.asarray(attention_bias(ops.convert_to_tensor([[1, 0]]), -5.0))
    assert bias.shape == (1, 1, 1, 2) and bias.tolist() == [[[[0.0, -5.0]]]]
    assert attention_bias(ops.ones((1, 3, 3)), -5.0).shape == (1, 1, 3, 3)


@pytest.mark.parametrize("activation", ["gelu", "gelu_new", "relu"])
def test_transformer_block(activation):
    layer = TransformerEncoderBlock(num_heads=2, intermediate_size=16, activation=activation)
    x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    out = _round_trip(layer, x, attention_mask=np.ones((2, 4), "int32"))
    assert tuple(out.shape) == (2, 4, 8)


def test_pooler():
    x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    out = _round_trip(BertPooler(), x)
    assert tuple(out.shape) == (2, 8) and np.abs(out).max() <= 1.0


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_dropout_rate_scale_and_gradient(policy):
    import tensorflow as tf

    from keras_bert_x.layers import Dropout

    layer = Dropout(0.1, seed=7, dtype=policy)
    odd = np.asarray(ops.cast(Dropout(0.1, dtype=policy)(tf.ones((3, 5, 7)), training=True),
                              "float32"))
    assert odd.shape == (3, 5, 7)  # 105 values: the last 32-bit draw is half used
    x = tf.ones((32, 128, 255))
    first = np.asarray(ops.cast(layer(x, training=True), "float32"))
    second = np.asarray(ops.cast(layer(x, training=True), "float32"))
    assert abs((first == 0).mean() - 0.1) < 0.003
    kept = 1 / 0.9 if policy == "float32" else float(tf.cast(1 / 0.9, tf.bfloat16))
    np.testing.assert_allclose(np.unique(first[first != 0]), [kept], rtol=1e-6)
    assert 0.1 < (first != second).mean() < 0.25  # a fresh mask every call
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), np.asarray(x))
    same_seed = Dropout(0.1, seed=7, dtype=policy)
    np.testing.assert_array_equal(np.asarray(ops.cast(same_seed(x, training=True), "float32")),
                                  first)
    variable = tf.Variable(tf.ones((4, 6)))
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(tf.cast(Dropout(0.5, seed=1, dtype=policy)(variable, training=True),
                                    tf.float32))
    gradient = tape.gradient(out, variable).numpy()
    assert set(np.unique(gradient)) <= {0.0, 2.0} and 0 < (gradient == 0).sum() < 24
    assert keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)).get_config() == layer.get_config()


def test_gelu_erf_is_exact_gelu():
    from keras_bert_x.layers.transformer import gelu_erf

    x = np.linspace(-8, 8, 2001).astype("float32")
    np.testing.assert_allclose(np.asarray(gelu_erf(x)),
                               np.asarray(keras.activations.gelu(x, approximate=False)),
                               atol=1e-6, rtol=1e-6)  # float32 rounding in the far left tail


def test_gelu_erf_in_bfloat16_keeps_the_negative_tail():
    from keras_bert_x.layers.transformer import gelu_erf

    x = np.asarray(ops.cast(ops.cast(np.linspace(-6, 3, 901), "bfloat16"), "float32"))
    expected = np.asarray(keras.activations.gelu(x, approximate=False))  # of the bf16 inputs
    got = np.asarray(ops.cast(gelu_erf(ops.cast(x, "bfloat16")), "float32"))
    assert gelu_erf(ops.cast(x, "bfloat16")).dtype == "bfloat16"
    np.testing.assert_allclose(got, expected, rtol=1e-2, atol=1e-6)  # bf16 output rounding


def test_mlm_projection_without_transposes_has_the_same_values_and_gradients():
    import tensorflow as tf

    from keras_bert_x.layers.heads import _times_transposed

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 3, 8)), tf.float32)
    table = tf.Variable(rng.normal(size=(11, 8)).astype("float32"))
    results = []
    for project in (_times_transposed, lambda a, t: ops.matmul(a, ops.transpose(t))):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = project(x, table)
            loss = tf.reduce_sum(logits * tf.range(11, dtype=tf.float32))
        results.append([logits, *tape.gradient(loss, [x, table])])
    assert results[0][0].shape == (2, 3, 11)
    for a, b in zip(*results):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
