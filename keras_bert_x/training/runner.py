"""`Trainer`: what pretraining and fine-tuning do around the training loop, written once.

Checkpoints (model, optimizer, step, loss scale, dropout seed states) and resume, SIGTERM (save
and exit 143), TensorBoard scalars in `model_dir/train` and `model_dir/eval`, every step's
metrics (with --steps_per_loop N, every loop's, over its steps) in `metrics.jsonl` and every
evaluation in `eval_metrics.jsonl`, a progress bar, and evaluation every N steps. Under
MultiWorkerMirroredStrategy every worker runs it (saves and evaluations are collective); only
the chief writes files.
"""

import contextlib
import json
import os
import sys
import time

import tensorflow as tf

from keras_bert_x.errors import BertInputError


def check_common_settings(cfg, *output_dirs):
    """Checks of the settings pretraining and fine-tuning share, before anything starts;
    `output_dirs` are where trained models will be saved."""
    from keras_bert_x.models.pretrained import is_our_format

    if cfg.tpu is not None and not cfg.tpu.strip():
        raise BertInputError("--tpu= is empty (an unset variable?); give --tpu for this VM's "
                             "TPU, --tpu=NAME or --tpu=grpc://host:port")
    for path in output_dirs:
        if os.path.isdir(path) and os.listdir(path) and not is_our_format(path):
            raise BertInputError(f"{path}: exists and is not a keras_bert_x model directory; "
                                 "the trained model is saved there: move it away first")
    if cfg.steps_per_loop < 1:
        raise BertInputError(f"--steps_per_loop={cfg.steps_per_loop}: must be at least 1")
    if cfg.grad_accum_steps < 1:
        raise BertInputError(f"--grad_accum_steps={cfg.grad_accum_steps}: must be at least 1")
    if cfg.mixed_precision not in ("float32", "mixed_bfloat16", "mixed_float16"):
        raise BertInputError(f"--mixed_precision={cfg.mixed_precision}: choose float32, "
                             "mixed_bfloat16 or mixed_float16")


def check_batch_split(cfg, replicas, evaluates=True):
    """Each replica takes an equal share of the global batch, cut into equal micro-batches;
    anything else would drop examples silently (or leave a replica with zero gradients)."""
    per_replica, rest = divmod(cfg.train_batch_size, replicas)
    if rest or per_replica == 0:
        raise BertInputError(f"--train_batch_size={cfg.train_batch_size} does not split evenly "
                             f"over {replicas} replicas")
    if per_replica % cfg.grad_accum_steps:
        raise BertInputError(f"--train_batch_size={cfg.train_batch_size} gives {per_replica} "
                             f"examples per replica, which --grad_accum_steps="
                             f"{cfg.grad_accum_steps} does not divide into equal micro-batches")
    if evaluates and cfg.eval_batch_size % replicas:
        raise BertInputError(f"--eval_batch_size={cfg.eval_batch_size} does not split evenly "
                             f"over {replicas} replicas")


@contextlib.contextmanager
def mixed_precision_policy(name):
    """Keras's global dtype policy set to `name` for the block, then put back (a library call
    must not leave it changed for the caller's later models)."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def compiles_shapes(cfg):
    """Whether a trainer's config compiles every new input shape (XLA, a TPU): then the
    length buckets of "auto" are few (multiples of 16), else each batch is at its longest."""
    return bool(cfg.jit_compile or cfg.tpu or cfg.strategy == "tpu")


def chief_and_index():
    """(is_chief, task index) from TF_CONFIG; a single process is its own chief."""
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = tf_config.get("task", {})
    kind, index = task.get("type", "worker"), task.get("index", 0)
    has_chief = "chief" in tf_config.get("cluster", {})
    return kind == "chief" or (kind == "worker" and index == 0 and not has_chief), index


def worker_count():
    """Processes in the TF_CONFIG cluster that train (chief and workers); 1 without one."""
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return max(len(cluster.get("chief", [])) + len(cluster.get("worker", [])), 1)


def seconds_since_process_start():
    """Seconds since this process started: from /proc on Linux (so the interpreter's and
    TensorFlow's start-up count), else since `keras_bert_x.cli` was imported (the first thing
    our command lines do)."""
    try:
        with open("/proc/self/stat") as f:
            # Field 22, start time in clock ticks after boot; the name (field 2) may hold spaces.
            started = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            return float(f.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        from keras_bert_x import cli

        return time.time() - cli.IMPORTED_AT


class StartupClock:
    """Where a command's start-up goes: phases marked as each ends, in seconds since the
    process started. The Trainer says them in one line once the first step is done."""

    def __init__(self):
        self.marks = [("imports", seconds_since_process_start())]

    def mark(self, phase):
        self.marks.append((phase, seconds_since_process_start()))

    def line(self, last="first step"):
        """`last` names the span from the latest mark to now (tracing and running the step)."""
        spans, before = [], 0.0
        for name, at in [*self.marks, (last, seconds_since_process_start())]:
            spans.append(f"{name} {at - before:.1f} s")
            before = at
        return f"first step done {before:.1f} s after start ({', '.join(spans)})"


def open_log(path):
    """Opens a JSON-lines log for appending. A line cut short by a kill is ended first, so that
    the records appended after it still parse (the cut one is skipped by readers)."""
    cut_short = False
    if os.path.isfile(path) and os.path.getsize(path):
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            cut_short = f.read(1) != b"\n"
    log = open(path, "a")
    if cut_short:
        log.write("\n")
    return log


class Trainer:
    """Runs `loop` (a `TrainingLoop`) for `num_train_steps` steps, resumable from `model_dir`.

    `evaluate(step)`, when given, returns metrics; it runs every `eval_interval_steps` and at
    the end, and its results are logged. `after_evaluation(step, metrics)` may act on them
    (keep the best model, say).
    """

    def __init__(self, model_dir, strategy, loop, num_train_steps, batch_size,
                 save_checkpoints_steps=1000, keep_checkpoint_max=3, log_steps=50,
                 progress=True, steps_per_loop=1, startup=None):
        from keras_bert_x.training.checkpoints import CheckpointKeeper, random_states

        self.model_dir, self.loop = model_dir, loop
        self.num_train_steps, self.batch_size = num_train_steps, batch_size
        self.save_checkpoints_steps, self.log_steps = save_checkpoints_steps, log_steps
        self.progress, self.steps_per_loop = progress, steps_per_loop
        self.is_chief, task_id = chief_and_index()
        self.strategy, self.workers = strategy, worker_count()
        self._restored_step = None
        self.startup = startup or StartupClock()
        with strategy.scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
            # In the checkpoint, so that every worker agrees after a resume whether the
            # evaluation due at the resumed step still has to run.
            self.evaluated_step = tf.Variable(-1, dtype=tf.int64, trainable=False,
                                              name="evaluated_step")
        self.keeper = CheckpointKeeper(
            os.path.join(model_dir, "checkpoints"), keep_checkpoint_max, self.is_chief, task_id,
            model=loop.model, optimizer=loop.optimizer, step=self.step,
            loss_scale=loop.loss_scale, good_steps=loop.good_steps,
            evaluated_step=self.evaluated_step, random_states=random_states(loop.model))

    def restore(self):
        """Resumes from the latest checkpoint in model_dir; returns whether there was one."""
        if not self.keeper.restore_latest():
            return False
        self._restored_step = self.start_step
        print(f"resumed from {self.keeper.latest} at step {self.start_step}", file=sys.stderr)
        self.loop.reset_loss_scale_if_unset()  # an fp32 run resumed in mixed_float16
        return True

    @property
    def start_step(self):
        return int(self.step.numpy())

    def _writer(self, name):
        return tf.summary.create_file_writer(os.path.join(self.model_dir, name)) \
            if self.is_chief else tf.summary.create_noop_writer()

    def _log_evaluation(self, writer, step, metrics):
        print(f"eval step {step} " + json.dumps(metrics), file=sys.stderr)
        with writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)
        if self.is_chief:
            with open_log(os.path.join(self.model_dir, "eval_metrics.jsonl")) as f:
                f.write(json.dumps({"step": step, **metrics}) + "\n")

    def _steps_to_run(self, current, eval_interval_steps):
        """Steps in the next call: `steps_per_loop`, cut short at the next checkpoint,
        evaluation or the end, so those happen at the same steps whatever `steps_per_loop`."""
        stops = [self.num_train_steps, (current // self.save_checkpoints_steps + 1)
                 * self.save_checkpoints_steps]
        if eval_interval_steps:
            stops.append((current // eval_interval_steps + 1) * eval_interval_steps)
        return max(1, min(self.steps_per_loop, min(stops) - current))

    def train(self, iterator, evaluate=None, eval_interval_steps=0, after_evaluation=None):
        """Trains to num_train_steps; returns the last step's metrics (and `eval_*` ones).

        With `steps_per_loop` > 1 the steps run in graph loops of that many (fewer before a
        checkpoint, an evaluation or the end); metrics (over the loop's steps) are logged, and
        SIGTERM and Ctrl-C are noticed, once per loop (and after an evaluation): keep a loop
        shorter than a preemption's grace period. Either saves a checkpoint first; then
        SIGTERM exits 143 and Ctrl-C raises `Interrupted`, a KeyboardInterrupt."""
        from keras_bert_x.training.checkpoints import StopFlag

        os.makedirs(self.model_dir, exist_ok=True)
        with StopFlag() as stop:
            return self._train(stop, iterator, evaluate, eval_interval_steps, after_evaluation)

    def _train(self, stop, iterator, evaluate, eval_interval_steps, after_evaluation):
        from tqdm import tqdm

        writer, eval_writer = self._writer("train"), self._writer("eval")
        log = open_log(os.path.join(self.model_dir, "metrics.jsonl")) if self.is_chief else None
        start = self.start_step
        bar = tqdm(total=self.num_train_steps, initial=start, file=sys.stderr, unit="step",
                   disable=not (self.progress and self.is_chief))
        metrics, last_time, last_step = {}, time.time(), start

        # The step of the latest checkpoint, kept here rather than read from the chief's
        # directory: every worker must take the same decisions to save (a collective).
        saved = self._restored_step

        def save(step):
            nonlocal saved
            self.keeper.save(step)
            saved = step

        def honour_stop(step):
            kind = self._agreed_stop(stop)
            if kind:
                if saved != step:
                    save(step)
                stop.exit(kind, step)

        def run_evaluation(step, honour=True):
            result = evaluate(step)
            self.evaluated_step.assign(step)
            self._log_evaluation(eval_writer, step, result)
            if after_evaluation:
                after_evaluation(step, result)
            if honour:
                honour_stop(step)
            return result

        def due(step):
            return (evaluate and eval_interval_steps and step % eval_interval_steps == 0
                    and 0 < step < self.num_train_steps)

        if due(start) and int(self.evaluated_step.numpy()) < start:
            run_evaluation(start)  # stopped between the checkpoint and the evaluation
        first_call = True
        try:
            while self.start_step < self.num_train_steps:
                steps = self._steps_to_run(self.start_step, evaluate and eval_interval_steps)
                previous = self.start_step
                metrics = self.loop.train_steps(iterator, steps)
                if first_call and self.is_chief:
                    # Start-up as users feel it, and where it went (bench/finetune_real.py
                    # reads this line). With --steps_per_loop N, the first N steps.
                    tqdm.write(self.startup.line(), file=sys.stderr)
                first_call = False
                self.step.assign_add(steps)
                current = self.start_step
                metrics["learning_rate"] = float(self.loop.optimizer.learning_rate)  # next step's
                if log:
                    log.write(json.dumps({"step": current, **metrics}) + "\n")
                    log.flush()
                bar.update(steps)
                bar.set_postfix(loss=f"{metrics['loss']:.3f}",
                                lr=f"{metrics['learning_rate']:.2e}")
                if (current // self.log_steps > previous // self.log_steps
                        or current == self.num_train_steps):
                    rate = (current - last_step) / max(time.time() - last_time, 1e-9)
                    with writer.as_default(step=current):
                        for name, value in metrics.items():
                            tf.summary.scalar(name, value)
                        tf.summary.scalar("steps_per_second", rate)
                        tf.summary.scalar("examples_per_second", rate * self.batch_size)
                    last_time, last_step = time.time(), current
                if current % self.save_checkpoints_steps == 0:
                    save(current)
                honour_stop(current)
                if due(current):
                    run_evaluation(current)
            if saved != self.start_step:
                save(self.start_step)
        finally:
            bar.close()
            if log:
                log.close()
        if evaluate is not None:
            # Ctrl-C here: once the result is written (rerunning would only evaluate again)
            final = run_evaluation(self.start_step, honour=False)
            if self.is_chief:
                with open(os.path.join(self.model_dir, "eval_metrics.json"), "w") as f:
                    json.dump(final, f, indent=2)
            metrics = {**metrics, **{f"eval_{k}": v for k, v in final.items()}}
        honour_stop(self.start_step)
        return metrics

    def _agreed_stop(self, stop):
        """The stop every worker acts on: with several, the flags all-reduced (the last of
        StopFlag.KINDS that any worker saw), so that all save the collective checkpoint at the
        same step even when the signal reached only one, or reached them a step apart."""
        if self.workers == 1:
            return stop.requested
        # (tf.distribute reduces by SUM or MEAN only: count, per kind, who saw it)
        seen = tf.constant([stop.requested == kind for kind in stop.KINDS[1:]], tf.float32)
        counts = self.strategy.reduce(tf.distribute.ReduceOp.SUM,
                                      self.strategy.run(lambda: seen), axis=None).numpy()
        return next((kind for kind, count in reversed(list(zip(stop.KINDS[1:], counts)))
                     if count > 0), None)
