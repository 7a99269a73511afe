"""`BertEmbeddings`: word + position + token-type embeddings, then LayerNorm and dropout."""

import keras
from keras import ops

from keras_bert_x.layers.dropout import Dropout


@keras.saving.register_keras_serializable(package="keras_bert_x")
class BertEmbeddings(keras.layers.Layer):
    """Sums the three BERT embeddings of each token and normalises them.

    Call with `(input_word_ids, input_type_ids)`, both int [B, T] with T <= max_positions;
    returns [B, T, hidden_size] in the layer's compute dtype.

    >>> emb = BertEmbeddings(vocab_size=100, hidden_size=8, max_positions=16, type_vocab_size=2)
    >>> emb((ops.ones((2, 5), "int32"), ops.zeros((2, 5), "int32"))).shape
    (2, 5, 8)
    """

    def __init__(self, vocab_size, hidden_size, max_positions=512, type_vocab_size=2,
                 layer_norm_eps=1e-12, dropout=0.1, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_positions = max_positions
        self.type_vocab_size = type_vocab_size
        self.layer_norm_eps = layer_norm_eps
        self.dropout = dropout
        self.initializer_range = initializer_range
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=self.dtype_policy, name="layer_norm")
        self.dropout_layer = Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape=None):
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        self.word_embeddings = self.add_weight(
            shape=(self.vocab_size, self.hidden_size), initializer=init, name="word_embeddings")
        self.position_embeddings = self.add_weight(
            shape=(self.max_positions, self.hidden_size), initializer=init, name="position_embeddings")
        self.token_type_embeddings = self.add_weight(
            shape=(self.type_vocab_size, self.hidden_size), initializer=init,
            name="token_type_embeddings")
        self.layer_norm.build((None, None, self.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        word_ids, type_ids = inputs
        static_len = word_ids.shape[1]
        if isinstance(static_len, int) and static_len > self.max_positions:
            raise ValueError(f"input_word_ids has {static_len} positions, more than "
                             f"max_positions={self.max_positions}")
        seq_len = ops.shape(word_ids)[1]
        positions = ops.slice(self.position_embeddings, (0, 0), (seq_len, self.hidden_size))
        x = (ops.take(self.word_embeddings, word_ids, axis=0)
             + ops.expand_dims(positions, 0)
             + ops.take(self.token_type_embeddings, type_ids, axis=0))
        return self.dropout_layer(self.layer_norm(x), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0]) + (self.hidden_size,)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                      max_positions=self.max_positions, type_vocab_size=self.type_vocab_size,
                      layer_norm_eps=self.layer_norm_eps, dropout=self.dropout,
                      initializer_range=self.initializer_range)
        return config
