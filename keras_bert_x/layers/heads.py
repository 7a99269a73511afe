"""Pretraining heads: `MaskedLMHead` (tied to the word embeddings) and `NextSentenceHead`."""

import keras
from keras import ops

from keras_bert_x.layers.transformer import activation_fn


def _times_transposed(x, table):
    """x [..., H] @ table[V, H]ᵀ. On TensorFlow as one MatMul with `transpose_b`: the
    gradient of `matmul(x, transpose(table))` ends in a transpose of the [H, V] table gradient,
    ~5% of a bert_mini training step on a CPU; this way no transpose is ever made."""
    if keras.backend.backend() != "tensorflow":
        return ops.matmul(x, ops.transpose(table))
    import tensorflow as tf

    flat = tf.reshape(x, [-1, tf.shape(x)[-1]])
    logits = tf.matmul(flat, table, transpose_b=True)
    return tf.reshape(logits, tf.concat([tf.shape(x)[:-1], tf.shape(table)[:1]], 0))


@keras.saving.register_keras_serializable(package="keras_bert_x")
class MaskedLMHead(keras.layers.Layer):
    """Logits over the vocabulary at the masked positions only.

    Gathers `masked_lm_positions` [B, P] from the sequence [B, T, H] first (P << T, so the
    vocabulary projection costs P/T of doing every position), then Dense + activation +
    LayerNorm, then `x @ word_embeddings^T + output_bias`, the projection tied to the
    embedding table passed as `embedding_layer`.

    >>> from keras_bert_x.layers import BertEmbeddings
    >>> emb = BertEmbeddings(vocab_size=50, hidden_size=8)
    >>> emb.build()
    >>> head = MaskedLMHead(emb)
    >>> head(ops.ones((2, 6, 8)), ops.zeros((2, 3), "int32")).shape
    (2, 3, 50)
    """

    def __init__(self, embedding_layer, activation="gelu", layer_norm_eps=1e-12,
                 initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.embedding_layer = embedding_layer
        self.activation = activation
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self._activation_fn = activation_fn(activation)

    @classmethod
    def for_encoder(cls, encoder, activation=None, layer_norm_eps=None, **kwargs):
        """The head of `encoder`'s config (or the `activation` and `layer_norm_eps` given), tied
        to its word embeddings, in its dtype policy."""
        config = encoder.config
        return cls(encoder.embeddings, activation=activation or config.hidden_act,
                   layer_norm_eps=config.layer_norm_eps if layer_norm_eps is None
                   else layer_norm_eps,
                   initializer_range=config.initializer_range,
                   dtype=encoder.embeddings.dtype_policy, **kwargs)

    def build(self, sequence_shape=None, masked_lm_positions_shape=None):
        hidden = self.embedding_layer.hidden_size
        self.dense = keras.layers.Dense(
            hidden, dtype=self.dtype_policy, name="transform",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range))
        self.dense.build((None, None, hidden))
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_eps, dtype=self.dtype_policy, name="layer_norm")
        self.layer_norm.build((None, None, hidden))
        self.output_bias = self.add_weight(shape=(self.embedding_layer.vocab_size,),
                                           initializer="zeros", name="output_bias")
        self.built = True

    def call(self, sequence, masked_lm_positions):
        gathered = ops.take_along_axis(
            sequence, ops.expand_dims(ops.cast(masked_lm_positions, "int32"), -1), axis=1)
        x = self.layer_norm(self._activation_fn(self.dense(gathered)))
        table = ops.cast(self.embedding_layer.word_embeddings, self.compute_dtype)
        return _times_transposed(x, table) + self.output_bias

    def compute_output_shape(self, sequence_shape, masked_lm_positions_shape):
        return tuple(masked_lm_positions_shape) + (self.embedding_layer.vocab_size,)

    def get_config(self):
        config = super().get_config()
        config.update(embedding_layer=keras.saving.serialize_keras_object(self.embedding_layer),
                      activation=self.activation, layer_norm_eps=self.layer_norm_eps,
                      initializer_range=self.initializer_range)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["embedding_layer"] = keras.saving.deserialize_keras_object(config["embedding_layer"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_bert_x")
class NextSentenceHead(keras.layers.Layer):
    """[B, H] pooled output -> [B, 2] logits (0: B follows A, 1: B is random).

    >>> NextSentenceHead()(ops.ones((2, 8))).shape
    (2, 2)
    """

    def __init__(self, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.initializer_range = initializer_range

    def build(self, input_shape):
        self.dense = keras.layers.Dense(
            2, dtype=self.dtype_policy, name="dense",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range))
        self.dense.build(input_shape)
        self.built = True

    def call(self, pooled):
        return self.dense(pooled)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2)

    def get_config(self):
        config = super().get_config()
        config.update(initializer_range=self.initializer_range)
        return config
