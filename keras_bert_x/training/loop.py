"""The distributed training step: `strategy.run` in a `tf.function`, not `model.fit`.

Keras 3's `fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), and its
`gradient_accumulation_steps` fails under MirroredStrategy; this loop works under every
strategy, for every task (a task says what the model takes and how its loss is summed, see
`losses.PretrainingTask`). Each optimizer step takes one global batch; with
`grad_accum_steps = k` every replica splits its share into k micro-batches and adds their
gradients before one update, so the result equals the whole batch at once (losses are
normalised by global counts) while activations are held for one micro-batch only.

Gradients are all-reduced once, by the loop: clipping by global norm needs the summed
gradient, so the optimizer is handed it already reduced and told not to reduce again.
"""

import functools

import keras
import numpy as np
import tensorflow as tf

_SUM = tf.distribute.ReduceOp.SUM


def _reduced_gradients_only(optimizer):
    """Stops a Keras optimizer from all-reducing the (already all-reduced) gradients again.

    Keras's TensorFlow optimizer sums gradients over replicas in `_all_reduce_sum_gradients`
    inside `apply_gradients`; there is no public switch, so the instance's method is replaced:
    the optimizer then belongs to this loop (do not hand it to `model.fit` under a strategy).
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        raise TypeError("pass the inner optimizer and loss_scale= instead of a "
                        "LossScaleOptimizer: the loop scales the loss itself")
    if not hasattr(optimizer, "_all_reduce_sum_gradients"):
        raise TypeError(f"{type(optimizer).__name__} is not a Keras optimizer on the TensorFlow "
                        "backend (no _all_reduce_sum_gradients to disable)")
    optimizer._all_reduce_sum_gradients = lambda grads_and_vars: list(grads_and_vars)


class TrainingLoop:
    """Builds and runs the train and eval steps of `model` on `task` under `strategy`.

    Create the model and optimizer under `strategy.scope()`. `loss_scale` > 0 turns on dynamic
    loss scaling for mixed_float16: a step whose gradients overflow changes no variable, the
    scale halves; after 2000 good steps it doubles.

    `train_steps(iterator, n)` runs n steps inside one `tf.function` (a graph loop, as Model
    Garden's Orbit does): the host waits, and fetches metrics (over the n steps), once per n
    steps, which is what keeps an accelerator busy (until a call of more than one step, single
    steps run without the loop). `jit_compile=True` compiles each replica's step with XLA (the
    condition for a TPU); it needs static shapes, which every reader of ours gives.
    """

    GROWTH_INTERVAL = 2000
    INITIAL_LOSS_SCALE = 2.0 ** 15

    @classmethod
    def loss_scale_for(cls, mixed_precision):
        """The starting loss scale for a dtype policy name: only float16 needs one."""
        return cls.INITIAL_LOSS_SCALE if mixed_precision == "mixed_float16" else 0.0

    def __init__(self, strategy, model, optimizer, task, grad_accum_steps=1, clip_norm=1.0,
                 loss_scale=0.0, jit_compile=False):
        self.strategy, self.model, self.optimizer, self.task = strategy, model, optimizer, task
        self.grad_accum_steps = grad_accum_steps
        self.clip_norm = clip_norm
        with strategy.scope():
            self.optimizer.build(model.trainable_variables)
            self.loss_scale = tf.Variable(float(loss_scale), trainable=False, name="loss_scale",
                                          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            self.good_steps = tf.Variable(0, trainable=False, name="good_steps",
                                          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        _reduced_gradients_only(optimizer)
        self._use_loss_scale = loss_scale > 0
        self._initial_loss_scale = float(loss_scale)
        self._step_outputs = None
        tpu = isinstance(strategy, (tf.distribute.TPUStrategy,
                                    tf.distribute.experimental.TPUStrategy))
        # The steps are traced without AutoGraph: their control flow is Python's (the task, the
        # micro-batch count, loss scaling on or off) or explicit (tf.cond), so AutoGraph would
        # only rewrite their source first, about a second of start-up (as Keras's own train
        # step, marked do_not_convert). Only the graph loop, a `tf.range` loop, needs it.
        step_function = functools.partial(tf.function, autograph=False)
        if jit_compile and not tpu:
            # (A TPU compiles every replica's step whole, by itself.) Under Mirrored
            # strategies, forward and backward, between the all-reduces (which XLA cannot hold
            # there; a compiled evaluation step also fails there, reading another replica's
            # variables); on one device, also the optimizer update and the evaluation step.
            self._forward_backward = step_function(self._forward_backward, jit_compile=True)
            if type(strategy).__name__ in ("_DefaultDistributionStrategy", "OneDeviceStrategy"):
                self._replica_apply = step_function(self._replica_apply, jit_compile=True)
                self._eval_replica = step_function(self._eval_replica, jit_compile=True)
        # The graph loop calls the step as a tf.function of its own: the trace made for the
        # loop's structure (`train_steps`) is the one the loop runs, so it is traced once.
        self._step = step_function(self._train_step)
        self._train = tf.function(self._train_loop)
        # One step alone (the default --steps_per_loop=1) skips the loop: no structure trace,
        # no while loop nor nested function to build, about a second less before the first
        # step. Once the loop has run, every count takes it (one graph to build and keep); a run
        # whose first call is one step and a later one more traces the step twice (alone, looped).
        self._once = step_function(self._train_once)
        self._looped = False
        self._eval = step_function(self._eval_step)

    def reset_loss_scale_if_unset(self):
        """After restoring a checkpoint of a run without loss scaling into one with it."""
        if self._use_loss_scale and float(self.loss_scale.numpy()) <= 0:
            self.loss_scale.assign(self._initial_loss_scale)
            self.good_steps.assign(0)

    # -- train ---------------------------------------------------------------------------------
    def _replica_gradients(self, batch):
        """(all-reduced, unscaled, clipped gradients, sums, norm, all finite) on one replica."""
        ctx = tf.distribute.get_replica_context()
        counts = ctx.all_reduce(_SUM, self.task.counts(batch))
        grads, sums = self._forward_backward(batch, counts)
        grads = ctx.all_reduce(_SUM, grads)
        if self._use_loss_scale:
            grads = [g / self.loss_scale for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        grads, norm = tf.clip_by_global_norm(grads, self.clip_norm)
        return grads, sums, norm, finite

    def _forward_backward(self, batch, counts):
        """This replica's (gradients, loss sums), added over its micro-batches: everything of a
        step between the all-reduces, so that it compiles on its own under any strategy."""
        variables = self.model.trainable_variables
        k = self.grad_accum_steps
        # Equal micro-batches or none: a remainder would be dropped from the gradient while
        # still counted in the loss normalisers. Static shapes (TPU) are checked at tracing.
        size = batch["input_word_ids"].shape[0]
        if size is not None and size % k:
            raise ValueError(f"a per-replica batch of {size} does not split into "
                             f"grad_accum_steps={k} equal micro-batches")
        if size is None:
            size = tf.shape(batch["input_word_ids"])[0]
            tf.debugging.assert_equal(size % k, 0, message="per-replica batch not divisible "
                                      "by grad_accum_steps")
        micro = size // k
        grads, sums = None, None
        for i in range(k):  # unrolled: k is small, and every micro-batch has the same shape
            part = {name: value[i * micro:(i + 1) * micro] for name, value in batch.items()}
            with tf.GradientTape() as tape:
                outputs = self.model({n: part[n] for n in self.task.model_inputs}, training=True)
                s = self.task.sums(part, outputs)
                loss = self.task.loss(s, counts)
                if self._use_loss_scale:
                    loss = loss * self.loss_scale
            step_grads = tape.gradient(loss, variables)
            if grads is None:
                # Variables the loss does not reach (the pooler of a BertMaskedLM) get no
                # gradient, and no update: not even weight decay.
                self._trained = [j for j, g in enumerate(step_grads) if g is not None]
                grads = [tf.convert_to_tensor(step_grads[j]) for j in self._trained]
            else:
                grads = [a + tf.convert_to_tensor(step_grads[j])
                         for a, j in zip(grads, self._trained)]
            sums = s if sums is None else {n: sums[n] + s[n] for n in s}
        return grads, sums

    def _replica_apply(self, grads):
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(grads, [variables[j] for j in self._trained]))

    def _replica_train(self, batch):
        grads, sums, norm, _ = self._replica_gradients(batch)
        self._replica_apply(grads)
        return sums, norm

    def _train_step(self, iterator):
        batch = next(iterator)
        if self._use_loss_scale:
            # Skipping must happen in cross-replica context: a tf.cond around apply_gradients
            # inside strategy.run fails under MirroredStrategy (its merge_call cannot cross a
            # control-flow graph). The gradients are all-reduced, so `finite` is the same on
            # every replica and any one of them decides.
            grads, sums, norm, finite = self.strategy.run(self._replica_gradients, args=(batch,))
            finite = self.strategy.experimental_local_results(finite)[0]
            tf.cond(finite, lambda: self._apply_and_grow(grads), self._skip)
        else:
            sums, norm = self.strategy.run(self._replica_train, args=(batch,))
        sums = {n: self.strategy.reduce(_SUM, v, axis=None) for n, v in sums.items()}
        return sums, self.strategy.experimental_local_results(norm)[0]

    def _apply_and_grow(self, grads):
        self.strategy.run(self._replica_apply, args=(grads,))
        grow = self.good_steps + 1 >= self.GROWTH_INTERVAL
        self.loss_scale.assign(tf.where(grow, self.loss_scale * 2.0, self.loss_scale))
        self.good_steps.assign(tf.where(grow, 0, self.good_steps + 1))
        return tf.constant(True)

    def _skip(self):
        self.loss_scale.assign(tf.maximum(self.loss_scale / 2.0, 1.0))
        self.good_steps.assign(0)
        return tf.constant(False)

    def _train_loop(self, iterator, steps):
        """`steps` steps in one graph loop; metrics over all of them (the task's global-count
        sums add up over steps; the gradient norm is their mean)."""
        # A graph loop's variables need their structure before it: zeros shaped like one step's
        # outputs, known from `_step_outputs`. `self._step` is already traced for this iterator
        # spec, so calling it here reuses that trace (a function call in the loop body).
        totals = tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype),
                                       self._step_outputs)
        for _ in tf.range(steps):
            totals = tf.nest.map_structure(tf.add, totals, self._step(iterator))
        return self._metrics(*totals, steps)

    def _train_once(self, iterator):
        """One step without a graph loop: the numbers `_train_loop` gives for 1 step."""
        return self._metrics(*self._train_step(iterator), 1)

    def _metrics(self, sums, norms, steps):
        """What a call reports: the task's metrics of the summed sums, the mean gradient norm."""
        metrics = self.task.metrics(sums)
        metrics["grad_norm"] = norms / tf.cast(steps, norms.dtype)
        if self._use_loss_scale:
            metrics["loss_scale"] = tf.identity(self.loss_scale)
        return metrics

    def train_steps(self, iterator, steps=1):
        """`steps` optimizer steps on the next global batches, in one call (the host syncs
        once); returns their metrics as numbers, over all `steps` steps."""
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        if steps == 1 and not self._looped:
            metrics = self._once(iterator)
        else:
            self._looped = True  # from now on every count takes the loop: one graph to build
            if self._step_outputs is None:  # traced, not run: only the structure is wanted
                outputs = self._step.get_concrete_function(iterator)
                self._step_outputs = tf.nest.map_structure(
                    lambda t: tf.TensorSpec(t.shape, t.dtype), outputs.structured_outputs)
            # A tensor, so that every count runs the same traced graph.
            metrics = self._train(iterator, tf.constant(steps, tf.int32))
        return {k: float(v) for k, v in metrics.items()}

    def train_step(self, iterator):
        """One optimizer step on the next global batch; returns numpy metrics."""
        return self.train_steps(iterator, 1)

    # -- eval ----------------------------------------------------------------------------------
    def _eval_replica(self, batch):
        outputs = self.model({n: batch[n] for n in self.task.model_inputs}, training=False)
        extra = {}
        if hasattr(self.task, "prediction_outputs"):
            extra = dict(self.task.prediction_outputs(batch, outputs),
                         example_index=batch["example_index"])
        return self.task.sums(batch, outputs), extra

    def _eval_step(self, batch):
        sums, extra = self.strategy.run(self._eval_replica, args=(batch,))
        sums = {n: self.strategy.reduce(_SUM, v, axis=None) for n, v in sums.items()}
        # Every replica's (every worker's) predictions, on every worker.
        return sums, {n: self.strategy.gather(v, axis=0) for n, v in extra.items()}

    def evaluate(self, distributed_dataset, max_batches=None):
        """Metrics over a (finite) distributed dataset: the task's sums, and its host metrics
        over the predictions of every real example (padding dropped, in example order)."""
        total, parts = None, []
        for i, batch in enumerate(distributed_dataset):
            if max_batches is not None and i >= max_batches:
                break
            sums, extra = self._eval(batch)
            total = sums if total is None else {n: total[n] + sums[n] for n in sums}
            if extra:
                parts.append({n: v.numpy() for n, v in extra.items()})
        if total is None:
            return {}
        result = {k: float(v) for k, v in self.task.metrics(total).items()}
        if parts:
            arrays = {n: _concat_padded([p[n] for p in parts]) for n in parts[0]}
            order = np.argsort(arrays["example_index"], kind="stable")
            order = order[arrays["example_index"][order] >= 0]
            result.update(self.task.host_metrics({n: v[order] for n, v in arrays.items()}))
        return result


def _concat_padded(arrays):
    """Batches of predictions joined on axis 0; per-token ones, of batches padded to different
    length buckets, first padded to the widest (-1 for ids, -inf for logits: never chosen)."""
    if arrays[0].ndim < 2:
        return np.concatenate(arrays)
    width = max(a.shape[1] for a in arrays)
    fill = -1 if np.issubdtype(arrays[0].dtype, np.integer) else -np.inf
    return np.concatenate([np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2),
                                  constant_values=fill) for a in arrays])
