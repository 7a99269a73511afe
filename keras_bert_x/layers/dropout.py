"""`Dropout`: Keras's dropout, with a mask that costs half the random bits on TensorFlow."""

import keras


@keras.saving.register_keras_serializable(package="keras_bert_x")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` whose TensorFlow mask compares 16-bit random numbers.

    Keras draws one float per element (`stateless_dropout`), in the compute dtype: on a CPU its
    Philox generator was ~10% of a bert_mini training step (more in bfloat16). Here one 32-bit
    draw gives two 16-bit numbers, each kept when >= round(rate·65536): the drop probability is
    `rate` to within 1/65536 (0.1 -> 0.100006), and kept values are scaled by 1/(1 - rate) as
    in Keras. Same seed generator, so checkpoints and resumes behave as with Keras's layer.
    Other backends, and `noise_shape`, use Keras's own code.

    >>> Dropout(0.5)(keras.ops.ones((2, 4)), training=False).shape
    (2, 4)
    """

    def call(self, inputs, training=False):
        if (not training or not 0 < self.rate < 1 or self.noise_shape is not None
                or keras.backend.backend() != "tensorflow"):
            return super().call(inputs, training=training)
        import tensorflow as tf

        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
        size = tf.size(inputs)
        bits = tf.random.stateless_uniform(tf.reshape((size + 1) // 2, [1]), seed, minval=None,
                                           maxval=None, dtype=tf.uint32)
        halves = tf.reshape(tf.bitcast(bits, tf.uint16), [-1])[:size]
        keep = tf.reshape(halves >= round(self.rate * 65536), tf.shape(inputs))
        scale = tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
        return tf.where(keep, inputs * scale, tf.zeros_like(inputs))
