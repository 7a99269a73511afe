"""`TransformerEncoderBlock`: BERT's post-LayerNorm encoder block."""

import keras
from keras import ops

from keras_bert_x.config import ACTIVATIONS
from keras_bert_x.layers.attention import MultiHeadSelfAttention
from keras_bert_x.layers.dropout import Dropout


def gelu_erf(x):
    """Exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)), written out as HF and Google's BERT write it.

    Keras's `gelu(approximate=False)` becomes TensorFlow's erfc form, whose kernel is ~2x
    slower (fwd+bwd) in float32 and bfloat16 on a CPU. Same function: they differ by float
    rounding only (at most 1e-6 in float32, in the far negative tail).
    """
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype not in ("float32", "float64"):
        # In bfloat16/float16, 1 + erf(x/√2) cancels for x < -2 (GELU(-3) would be 0): compute
        # in float32 (which is still faster than the erfc kernel in bfloat16).
        x = ops.cast(x, "float32")
    return ops.cast(0.5 * x * (1.0 + ops.erf(x * 0.7071067811865476)), dtype)


def activation_fn(name):
    """The function for a `hidden_act` name (Google and HF spellings; see config.ACTIVATIONS)."""
    kind = ACTIVATIONS[name]
    if kind == "gelu":
        return gelu_erf
    if kind == "gelu_tanh":
        return lambda x: keras.activations.gelu(x, approximate=True)
    return getattr(keras.activations, kind)


@keras.saving.register_keras_serializable(package="keras_bert_x")
class TransformerEncoderBlock(keras.layers.Layer):
    """attention → dropout → add & LayerNorm → Dense(intermediate, act) → Dense → dropout → add & LayerNorm.

    >>> block = TransformerEncoderBlock(num_heads=2, intermediate_size=32)
    >>> block(ops.ones((1, 4, 8)), attention_mask=ops.ones((1, 4), "int32")).shape
    (1, 4, 8)
    """

    def __init__(self, num_heads, intermediate_size, activation="gelu", dropout=0.1,
                 attention_dropout=0.1, layer_norm_eps=1e-12, mask_fill_value=-10000.0,
                 initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.activation = activation
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_eps = layer_norm_eps
        self.mask_fill_value = mask_fill_value
        self.initializer_range = initializer_range
        self._activation_fn = activation_fn(activation)

    def build(self, input_shape):
        hidden = input_shape[-1]
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        policy = self.dtype_policy
        self.attention = MultiHeadSelfAttention(
            self.num_heads, dropout=self.attention_dropout, mask_fill_value=self.mask_fill_value,
            initializer_range=self.initializer_range, dtype=policy, name="attention")
        self.attention.build(input_shape)
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_eps, dtype=policy, name="attention_layer_norm")
        self.attention_layer_norm.build(input_shape)
        self.intermediate_dense = keras.layers.Dense(
            self.intermediate_size, kernel_initializer=init, dtype=policy, name="intermediate")
        self.intermediate_dense.build(input_shape)
        self.output_dense = keras.layers.Dense(hidden, kernel_initializer=init, dtype=policy,
                                               name="output")
        self.output_dense.build(tuple(input_shape[:-1]) + (self.intermediate_size,))
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_eps, dtype=policy, name="output_layer_norm")
        self.output_layer_norm.build(input_shape)
        self.dropout_layer = Dropout(self.dropout, dtype=policy)
        self.built = True

    def call(self, x, attention_mask=None, training=None):
        attended = self.attention(x, attention_mask=attention_mask, training=training)
        x = self.attention_layer_norm(x + self.dropout_layer(attended, training=training))
        hidden = self._activation_fn(self.intermediate_dense(x))
        hidden = self.dropout_layer(self.output_dense(hidden), training=training)
        return self.output_layer_norm(x + hidden)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, intermediate_size=self.intermediate_size,
                      activation=self.activation, dropout=self.dropout,
                      attention_dropout=self.attention_dropout, layer_norm_eps=self.layer_norm_eps,
                      mask_fill_value=self.mask_fill_value,
                      initializer_range=self.initializer_range)
        return config
