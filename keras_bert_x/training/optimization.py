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
        optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay,
                                           beta_1=0.9, beta_2=0.999, epsilon=epsilon)
        optimizer.exclude_from_weight_decay(var_names=list(EXCLUDED))
        return optimizer
    if name == "lamb":
        return Lamb(learning_rate=schedule, lamb_weight_decay=weight_decay, epsilon=epsilon)
    raise ValueError(f"unknown optimizer {name!r}; choose adamw or lamb")
