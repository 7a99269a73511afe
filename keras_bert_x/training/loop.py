"""The distributed pretraining step: `strategy.run` in a `tf.function`, not `model.fit`.

Keras 3's `fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), and its
`gradient_accumulation_steps` fails under MirroredStrategy; this loop works under every
strategy. Each optimizer step takes one global batch; with `grad_accum_steps = k` every replica
splits its share into k micro-batches and adds their gradients before one update, so the
result equals the whole batch at once (losses are normalised by global counts, see losses.py)
while activations are held for one micro-batch only.
"""

import tensorflow as tf

from keras_bert_x.training.losses import pretraining_metrics, pretraining_sums

MODEL_INPUTS = ("input_word_ids", "input_mask", "input_type_ids", "masked_lm_positions")
_SUM = tf.distribute.ReduceOp.SUM


class PretrainingLoop:
    """Builds and runs the train and eval steps of a `BertPretrainer` under `strategy`.

    Create the model and optimizer under `strategy.scope()`. `loss_scale` > 0 turns on dynamic
    loss scaling for mixed_float16: steps whose gradients overflow are skipped and the scale
    halves; after 2000 good steps it doubles.
    """

    def __init__(self, strategy, model, optimizer, grad_accum_steps=1, clip_norm=1.0,
                 loss_scale=0.0):
        self.strategy, self.model, self.optimizer = strategy, model, optimizer
        self.grad_accum_steps = grad_accum_steps
        self.clip_norm = clip_norm
        with strategy.scope():
            self.optimizer.build(model.trainable_variables)
            self.loss_scale = tf.Variable(float(loss_scale), trainable=False, name="loss_scale",
                                          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            self.good_steps = tf.Variable(0, trainable=False, name="good_steps",
                                          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self._use_loss_scale = loss_scale > 0
        self._train = tf.function(self._train_step)
        self._eval = tf.function(self._eval_step)

    # -- train ---------------------------------------------------------------------------------
    def _replica_train(self, batch):
        ctx = tf.distribute.get_replica_context()
        variables = self.model.trainable_variables
        totals = ctx.all_reduce(_SUM, {
            "mlm": tf.reduce_sum(batch["masked_lm_weights"]),
            "nsp": tf.cast(tf.shape(batch["next_sentence_labels"])[0], tf.float32)})
        k = self.grad_accum_steps
        micro = tf.shape(batch["input_word_ids"])[0] // k
        grads = [tf.zeros_like(v) for v in variables]
        sums = None
        for i in range(k):  # unrolled: k is small, and every micro-batch has the same shape
            part = {name: value[i * micro:(i + 1) * micro] for name, value in batch.items()}
            with tf.GradientTape() as tape:
                outputs = self.model({n: part[n] for n in MODEL_INPUTS}, training=True)
                s = pretraining_sums(part, outputs)
                loss = s["mlm_loss"] / tf.maximum(totals["mlm"], 1.0) + s["nsp_loss"] / totals["nsp"]
                if self._use_loss_scale:
                    loss = loss * self.loss_scale
            step_grads = tape.gradient(loss, variables)
            grads = [a + tf.convert_to_tensor(b) for a, b in zip(grads, step_grads)]
            sums = s if sums is None else {n: sums[n] + s[n] for n in s}
        grads = ctx.all_reduce(_SUM, grads)
        if self._use_loss_scale:
            grads = [g / self.loss_scale for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        grads, norm = tf.clip_by_global_norm(grads, self.clip_norm)
        # The optimizer sums gradients over replicas again: hand it each replica's share.
        share = 1.0 / ctx.num_replicas_in_sync
        if self._use_loss_scale:
            tf.cond(finite, lambda: self._apply(grads, variables, share), lambda: self._skip())
        else:
            self._apply(grads, variables, share)
        return sums, norm

    def _apply(self, grads, variables, share):
        self.optimizer.apply_gradients([(g * share, v) for g, v in zip(grads, variables)])
        if self._use_loss_scale:
            grow = self.good_steps + 1 >= 2000
            self.loss_scale.assign(tf.where(grow, self.loss_scale * 2.0, self.loss_scale))
            self.good_steps.assign(tf.where(grow, 0, self.good_steps + 1))
        return tf.constant(True)

    def _skip(self):
        self.loss_scale.assign(tf.maximum(self.loss_scale / 2.0, 1.0))
        self.good_steps.assign(0)
        return tf.constant(False)

    def _train_step(self, iterator):
        sums, norm = self.strategy.run(self._replica_train, args=(next(iterator),))
        sums = {n: self.strategy.reduce(_SUM, v, axis=None) for n, v in sums.items()}
        metrics = pretraining_metrics(sums)
        metrics["grad_norm"] = self.strategy.experimental_local_results(norm)[0]
        return metrics

    def train_step(self, iterator):
        """One optimizer step on the next global batch; returns numpy metrics."""
        return {k: float(v) for k, v in self._train(iterator).items()}

    # -- eval ----------------------------------------------------------------------------------
    def _eval_step(self, batch):
        def replica(batch):
            outputs = self.model({n: batch[n] for n in MODEL_INPUTS}, training=False)
            return pretraining_sums(batch, outputs)

        sums = self.strategy.run(replica, args=(batch,))
        return {n: self.strategy.reduce(_SUM, v, axis=None) for n, v in sums.items()}

    def evaluate(self, distributed_dataset, max_batches=None):
        """Metrics over a (finite) distributed dataset."""
        total = None
        for i, batch in enumerate(distributed_dataset):
            if max_batches is not None and i >= max_batches:
                break
            sums = self._eval(batch)
            total = sums if total is None else {n: total[n] + sums[n] for n in sums}
        if total is None:
            return {}
        return {k: float(v) for k, v in pretraining_metrics(total).items()}
