"""`MultiHeadSelfAttention`: BERT self-attention with one fused query/key/value projection."""

import math

import keras
from keras import ops

from keras_bert_x.layers.dropout import Dropout


def attention_bias(mask, fill_value):
    """Turns a 1 = attend / 0 = ignore mask into an additive float32 bias on attention scores.

    `mask` is [B, T] (padding: the same keys for every query) or [B, T, T] (per query); the bias
    is [B, 1, 1, T] or [B, 1, T, T] so that it broadcasts over heads (and queries).
    `ops.expand_dims` rather than `mask[:, None, None, :]`: the latter becomes a StridedSlice
    with new_axis_mask, which TFLite cannot convert.
    """
    bias = (1.0 - ops.cast(mask, "float32")) * fill_value
    bias = ops.expand_dims(bias, 1)
    if len(mask.shape) == 2:
        bias = ops.expand_dims(bias, 1)
    return bias


@keras.saving.register_keras_serializable(package="keras_bert_x")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Scaled dot-product self-attention over `num_heads` heads.

    One Dense of width 3·H computes query, key and value together (one matmul instead of three);
    its kernel is `concat([W_q, W_k, W_v], axis=1)`. Scores are added to the mask bias and
    soft-maxed in float32 whatever the compute dtype, so bf16/fp16 policies stay stable.

    >>> att = MultiHeadSelfAttention(num_heads=2)
    >>> att(ops.ones((1, 4, 8)), attention_mask=ops.ones((1, 4), "int32")).shape
    (1, 4, 8)
    """

    def __init__(self, num_heads, dropout=0.0, mask_fill_value=-10000.0,
                 initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.dropout = dropout
        self.mask_fill_value = mask_fill_value
        self.initializer_range = initializer_range

    def build(self, input_shape):
        hidden = input_shape[-1]
        if hidden % self.num_heads:
            raise ValueError(f"hidden size {hidden} is not divisible by num_heads {self.num_heads}")
        self.head_size = hidden // self.num_heads
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        self.qkv = keras.layers.Dense(3 * hidden, kernel_initializer=init,
                                      dtype=self.dtype_policy, name="qkv")
        self.qkv.build(input_shape)
        self.output_dense = keras.layers.Dense(hidden, kernel_initializer=init,
                                               dtype=self.dtype_policy, name="output")
        self.output_dense.build(input_shape)
        self.probs_dropout = Dropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    def _split_heads(self, x, batch, seq_len):
        x = ops.reshape(x, (batch, seq_len, self.num_heads, self.head_size))
        return ops.transpose(x, (0, 2, 1, 3))  # [B, A, T, D]

    def call(self, x, attention_mask=None, training=None):
        batch, seq_len = ops.shape(x)[0], ops.shape(x)[1]
        query, key, value = ops.split(self.qkv(x), 3, axis=-1)
        # Scaling the queries (B·T·H values) costs less than scaling the scores (B·A·T·T).
        query = self._split_heads(query * (1.0 / math.sqrt(self.head_size)), batch, seq_len)
        key = self._split_heads(key, batch, seq_len)
        value = self._split_heads(value, batch, seq_len)
        scores = ops.cast(ops.matmul(query, ops.transpose(key, (0, 1, 3, 2))), "float32")
        if attention_mask is not None:
            scores = scores + attention_bias(attention_mask, self.mask_fill_value)
        probs = ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)
        probs = self.probs_dropout(probs, training=training)
        context = ops.transpose(ops.matmul(probs, value), (0, 2, 1, 3))  # [B, T, A, D]
        context = ops.reshape(context, (batch, seq_len, self.num_heads * self.head_size))
        return self.output_dense(context)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, dropout=self.dropout,
                      mask_fill_value=self.mask_fill_value,
                      initializer_range=self.initializer_range)
        return config
