"""`BertPooler`: tanh Dense on the first ([CLS]) token, BERT's `pooled_output`."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_bert_x")
class BertPooler(keras.layers.Layer):
    """[B, T, H] -> [B, H]: `tanh(W · x[:, 0] + b)`.

    >>> BertPooler()(ops.ones((2, 3, 8))).shape
    (2, 8)
    """

    def __init__(self, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.initializer_range = initializer_range

    def build(self, input_shape):
        self.dense = keras.layers.Dense(
            input_shape[-1], activation="tanh", dtype=self.dtype_policy, name="dense",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range))
        self.dense.build((input_shape[0], input_shape[-1]))
        self.built = True

    def call(self, sequence):
        return self.dense(ops.take(sequence, 0, axis=1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(initializer_range=self.initializer_range)
        return config
