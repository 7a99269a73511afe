"""BERT's optimizers: AdamW or LAMB, linear warm-up then linear/polynomial decay.

Both exclude LayerNorm parameters and biases from weight decay, and LAMB also from layer-wise
adaptation, as google-research/bert and the LAMB paper's BERT recipe do.
"""

import keras
from keras import ops

# Variable names (paths end with them) that get no weight decay and no LAMB trust ratio.
EXCLUDED = ("bias", "gamma", "beta", "output_bias")


def is_excluded(variable):
    return variable.path.split("/")[-1] in EXCLUDED


@keras.saving.register_keras_serializable(package="keras_bert_x")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """peak · step / warmup for step < warmup, then polynomial decay (power 1: linear) to `end`."""

    def __init__(self, peak, warmup_steps, total_steps, end=0.0, power=1.0):
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps
        self.end, self.power = end, power

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = self.peak * step / max(self.warmup_steps, 1)
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        decayed = (self.peak - self.end) * (1.0 - progress) ** self.power + self.end
        return ops.where(step < self.warmup_steps, warmup, decayed)

    def get_config(self):
        return dict(peak=self.peak, warmup_steps=self.warmup_steps, total_steps=self.total_steps,
                    end=self.end, power=self.power)


@keras.saving.register_keras_serializable(package="keras_bert_x")
class AdamW(keras.optimizers.AdamW):
    """Keras's AdamW, computing the same update, with TensorFlow's fused Adam kernel.

    Keras's AdamW runs about ten element-wise ops per variable (each a pass over a 30k×H word
    embedding table and its two moments) and evaluates the learning-rate schedule once more per
    variable for the weight decay; on the TensorFlow backend this class decays and then calls
    `ResourceApplyAdam`, one pass, which is the kernel Model Garden's AdamWeightDecay uses.
    Other backends, and gradients that are not dense float32, take Keras's own update.
    """

    def _fused(self):
        return keras.backend.backend() == "tensorflow"

    def _apply_weight_decay(self, variables):
        if not self._fused():
            super()._apply_weight_decay(variables)
        # Else in update_step, with the learning rate it is given.

    def update_step(self, gradient, variable, learning_rate):
        if not self._fused():
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        lr = tf.cast(learning_rate, variable.dtype)
        if self.weight_decay and self._use_weight_decay(variable):
            # One pass (read, write) instead of Keras's two: var - var·wd·lr = var·(1 - wd·lr).
            variable.assign(variable * (1.0 - tf.cast(self.weight_decay, variable.dtype) * lr))
        if (variable.dtype != tf.float32 or self.amsgrad
                or isinstance(gradient, tf.IndexedSlices)):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1, beta_2 = tf.constant(self.beta_1, tf.float32), tf.constant(self.beta_2, tf.float32)
        # `variable` is the tf.Variable (on a replica's device under a strategy); the moments
        # are Keras variables, whose `.value.handle` is that device's copy in an update call.
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle, beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step), lr=lr, beta1=beta_1, beta2=beta_2,
            epsilon=tf.constant(self.epsilon, tf.float32), grad=tf.cast(gradient, tf.float32))


@keras.saving.register_keras_serializable(package="keras_bert_x")
class Lamb(keras.optimizers.Optimizer):
    """LAMB (You et al. 2019) with BERT's exclusions.

    update = m̂ / (√v̂ + ε) + λ·w (λ = 0 for excluded variables); the step is scaled by the
    trust ratio ‖w‖ / ‖update‖ except for excluded variables. Keras's own `Lamb` adapts every
    variable and has no decoupled exclusion list, hence this class.
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-6,
                 lamb_weight_decay=0.01, name="lamb", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.lamb_weight_decay = lamb_weight_decay

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._m, self._v = self.add_optimizer_variables(variables, ["m", "v"])
        # Decided here, on Keras variables: update_step may see the backend's raw variable.
        self._excluded = [is_excluded(v) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        step = ops.cast(self.iterations + 1, variable.dtype)
        index = self._get_variable_index(variable)
        m, v = self._m[index], self._v[index]
        self.assign(m, self.beta_1 * m + (1 - self.beta_1) * gradient)
        self.assign(v, self.beta_2 * v + (1 - self.beta_2) * ops.square(gradient))
        m_hat = m / (1 - ops.power(ops.cast(self.beta_1, variable.dtype), step))
        v_hat = v / (1 - ops.power(ops.cast(self.beta_2, variable.dtype), step))
        update = m_hat / (ops.sqrt(v_hat) + self.epsilon)
        if not self._excluded[index]:
            update = update + self.lamb_weight_decay * variable
            w_norm, u_norm = ops.norm(variable), ops.norm(update)
            ratio = ops.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, 1.0)
            update = update * ratio
        self.assign_sub(variable, lr * update)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                      lamb_weight_decay=self.lamb_weight_decay)
        return config


def create_optimizer(name, learning_rate, num_train_steps, num_warmup_steps, weight_decay=0.01,
                     end_learning_rate=0.0, power=1.0, epsilon=1e-6):
    """AdamW or LAMB on a warm-up + polynomial-decay schedule, with BERT's exclusions."""
    schedule = WarmupPolynomialDecay(learning_rate, num_warmup_steps, num_train_steps,
                                     end_learning_rate, power)
    if name == "adamw":
        optimizer = AdamW(learning_rate=schedule, weight_decay=weight_decay,
                                           beta_1=0.9, beta_2=0.999, epsilon=epsilon)
        optimizer.exclude_from_weight_decay(var_names=list(EXCLUDED))
        return optimizer
    if name == "lamb":
        return Lamb(learning_rate=schedule, lamb_weight_decay=weight_decay, epsilon=epsilon)
    raise ValueError(f"unknown optimizer {name!r}; choose adamw or lamb")
