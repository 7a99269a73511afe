"""`run_pretraining`: what `trainers/pretrain.py` does, as a library function."""

import dataclasses
import json
import os
import sys
import time
from typing import Optional

import keras
import tensorflow as tf

from keras_bert_x.config import BertConfig
from keras_bert_x.errors import BertInputError


@dataclasses.dataclass
class PretrainConfig:
    model_dir: str
    train_data: Optional[str] = None       # TFRecord glob(s)
    train_text: Optional[str] = None       # text glob(s): dynamic masking
    eval_data: Optional[str] = None
    config: Optional[str] = None           # BertConfig JSON
    preset: str = "bert_tiny"
    vocab_file: Optional[str] = None
    init_checkpoint: Optional[str] = None
    train_batch_size: int = 32             # global, per optimizer step
    eval_batch_size: int = 64
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    num_train_steps: int = 1000
    num_warmup_steps: int = 100
    learning_rate: float = 1e-4
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    grad_accum_steps: int = 1
    clip_norm: float = 1.0
    mixed_precision: str = "float32"       # float32, mixed_bfloat16, mixed_float16
    strategy: str = "default"
    tpu: Optional[str] = None
    save_checkpoints_steps: int = 500
    keep_checkpoint_max: int = 3
    log_steps: int = 50
    eval_steps: int = 100                  # batches per evaluation
    seed: int = 12345
    whole_word_mask: bool = False
    nsp: bool = True                       # False: MLM only (BertMaskedLM, RoBERTa-style)
    eval_interval_steps: int = 0           # also evaluate every N steps (0: at the end only)
    cluster_timeout: float = 120.0
    progress: bool = True


def _bert_config(cfg):
    if cfg.config:
        config = BertConfig.from_json_file(cfg.config)
    else:
        config = BertConfig.from_preset(cfg.preset)
    if cfg.vocab_file:
        from keras_bert_x.text.tokenizer import load_vocabulary

        vocab = load_vocabulary(cfg.vocab_file)
        if cfg.config and len(vocab) != config.vocab_size:
            raise BertInputError(f"{cfg.vocab_file}: {len(vocab)} tokens, but {cfg.config} has "
                                 f"vocab_size {config.vocab_size}")
        config = dataclasses.replace(config, vocab_size=len(vocab))
    if cfg.max_seq_length > config.max_position_embeddings:
        raise BertInputError(f"--max_seq_length={cfg.max_seq_length} exceeds the model's "
                             f"max_position_embeddings={config.max_position_embeddings}")
    return config


def _validate(cfg):
    if cfg.tpu is not None and not cfg.tpu.strip():
        raise BertInputError("--tpu= is empty (an unset variable?); give --tpu for this VM's "
                             "TPU, --tpu=NAME or --tpu=grpc://host:port")
    final = os.path.join(cfg.model_dir, "pretrained")
    from keras_bert_x.models.pretrained import is_our_format

    if os.path.isdir(final) and os.listdir(final) and not is_our_format(final):
        raise BertInputError(f"{final}: exists and is not a keras_bert_x model directory; the "
                             "trained model is saved there at the end: move it away first")
    if bool(cfg.train_data) == bool(cfg.train_text):
        raise BertInputError("give exactly one of --train_data (TFRecords) or --train_text")
    if cfg.train_text and not cfg.vocab_file:
        raise BertInputError("--train_text needs --vocab_file")
    if cfg.grad_accum_steps < 1:
        raise BertInputError(f"--grad_accum_steps={cfg.grad_accum_steps}: must be at least 1")
    if cfg.mixed_precision not in ("float32", "mixed_bfloat16", "mixed_float16"):
        raise BertInputError(f"--mixed_precision={cfg.mixed_precision}: choose float32, "
                             "mixed_bfloat16 or mixed_float16")
    from keras_bert_x.data.corpus import expand_inputs

    for pattern in (cfg.train_data, cfg.train_text, cfg.eval_data):
        if pattern:
            expand_inputs(pattern)


def _check_batch_split(cfg, replicas):
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
    if cfg.eval_data and cfg.eval_batch_size % replicas:
        raise BertInputError(f"--eval_batch_size={cfg.eval_batch_size} does not split evenly "
                             f"over {replicas} replicas")


def _datasets(cfg, strategy, start_step):
    from keras_bert_x.data.instances import MaskingConfig
    from keras_bert_x.data.pretraining_dataset import inspect_records, pretraining_dataset

    def train_fn(ctx):
        per_replica = ctx.get_per_replica_batch_size(cfg.train_batch_size)
        # Each pipeline feeds its replicas one batch each per step: skip what was consumed.
        consumed = start_step * (ctx.num_replicas_in_sync // ctx.num_input_pipelines)
        if cfg.train_text:
            from keras_bert_x.data.dynamic_masking import dynamic_masking_dataset

            masking = MaskingConfig(cfg.max_seq_length, cfg.max_predictions_per_seq,
                                    do_whole_word_mask=cfg.whole_word_mask)
            return dynamic_masking_dataset(cfg.train_text, cfg.vocab_file, per_replica, masking,
                                           seed=cfg.seed, input_context=ctx, nsp=cfg.nsp,
                                           skip_batches=consumed)
        return pretraining_dataset(cfg.train_data, per_replica, cfg.max_seq_length,
                                   cfg.max_predictions_per_seq, input_context=ctx, seed=cfg.seed,
                                   skip_batches=consumed, nsp=cfg.nsp)

    from keras_bert_x.data.corpus import expand_inputs

    for pattern in (cfg.train_data, cfg.eval_data):
        if pattern:  # bad files fail here, in one line
            inspect_records(expand_inputs(pattern)[0], cfg.max_seq_length,
                            cfg.max_predictions_per_seq, cfg.nsp)
    train = strategy.distribute_datasets_from_function(train_fn)
    evaluation = None
    if cfg.eval_data:
        from keras_bert_x.data.pretraining_dataset import count_records

        eval_files = expand_inputs(cfg.eval_data)
        counts = count_records(eval_files, inspect_records(
            eval_files[0], cfg.max_seq_length, cfg.max_predictions_per_seq, cfg.nsp)[1])

        def eval_fn(ctx):
            return pretraining_dataset(eval_files,
                                       ctx.get_per_replica_batch_size(cfg.eval_batch_size),
                                       cfg.max_seq_length, cfg.max_predictions_per_seq,
                                       is_training=False, input_context=ctx, nsp=cfg.nsp,
                                       record_counts=counts)
        evaluation = lambda: strategy.distribute_datasets_from_function(eval_fn)  # noqa: E731
    return train, evaluation


def _task():
    """(is_chief, task index) from TF_CONFIG; a single process is its own chief."""
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = tf_config.get("task", {})
    kind, index = task.get("type", "worker"), task.get("index", 0)
    has_chief = "chief" in tf_config.get("cluster", {})
    return kind == "chief" or (kind == "worker" and index == 0 and not has_chief), index


def _build(cfg, config, strategy):
    """(model, optimizer, loop, step variable), created under the strategy's scope."""
    from keras_bert_x.models.encoder import BertEncoder
    from keras_bert_x.models.masked_lm import BertMaskedLM
    from keras_bert_x.models.pretrainer import BertPretrainer
    from keras_bert_x.training.losses import PretrainingTask
    from keras_bert_x.training.loop import TrainingLoop
    from keras_bert_x.training.optimization import create_optimizer

    with strategy.scope():
        model = (BertPretrainer if cfg.nsp else BertMaskedLM)(BertEncoder(config))
        optimizer = create_optimizer(cfg.optimizer, cfg.learning_rate, cfg.num_train_steps,
                                     cfg.num_warmup_steps, cfg.weight_decay)
        loop = TrainingLoop(strategy, model, optimizer, PretrainingTask(nsp=cfg.nsp),
                            cfg.grad_accum_steps, cfg.clip_norm,
                            loss_scale=TrainingLoop.INITIAL_LOSS_SCALE
                            if cfg.mixed_precision == "mixed_float16" else 0.0)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    return model, optimizer, loop, step


class _Evaluator:
    """Evaluates --eval_data; every result goes to eval_metrics.jsonl and TensorBoard's eval/."""

    def __init__(self, cfg, loop, make_dataset, is_chief):
        self.cfg, self.loop, self.make_dataset = cfg, loop, make_dataset
        self.writer = tf.summary.create_file_writer(os.path.join(cfg.model_dir, "eval")) \
            if is_chief else tf.summary.create_noop_writer()
        self.path = os.path.join(cfg.model_dir, "eval_metrics.jsonl") if is_chief else None

    def __call__(self, step):
        metrics = self.loop.evaluate(self.make_dataset(), max_batches=self.cfg.eval_steps)
        print(f"eval step {step} " + json.dumps(metrics), file=sys.stderr)
        with self.writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)
        if self.path:
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": step, **metrics}) + "\n")
        return metrics


def run_pretraining(cfg):
    """Trains a BertPretrainer (BertMaskedLM with nsp=False); returns the last metrics.

    Resumes from `model_dir` if it can.
    """
    from tqdm import tqdm

    from keras_bert_x.training.checkpoints import (CheckpointKeeper, StopFlag, initialize_from,
                                                   random_states)
    from keras_bert_x.training.strategy import create_strategy

    _validate(cfg)
    config = _bert_config(cfg)
    keras.utils.set_random_seed(cfg.seed)
    keras.mixed_precision.set_global_policy(cfg.mixed_precision)
    strategy = create_strategy(cfg.strategy, cfg.tpu, cfg.cluster_timeout)
    _check_batch_split(cfg, strategy.num_replicas_in_sync)
    is_chief, task_id = _task()
    model, optimizer, loop, step = _build(cfg, config, strategy)
    keeper = CheckpointKeeper(os.path.join(cfg.model_dir, "checkpoints"), cfg.keep_checkpoint_max,
                              is_chief, task_id, model=model, optimizer=optimizer, step=step,
                              loss_scale=loop.loss_scale, good_steps=loop.good_steps,
                              random_states=random_states(model))
    if keeper.restore_latest():
        print(f"resumed from {keeper.latest} at step {int(step.numpy())}", file=sys.stderr)
        loop.reset_loss_scale_if_unset()  # an fp32 run resumed in mixed_float16
    elif cfg.init_checkpoint:
        initialize_from(cfg.init_checkpoint, model)
        print(f"initialized from {cfg.init_checkpoint}", file=sys.stderr)
    start = int(step.numpy())
    train, make_eval_dataset = _datasets(cfg, strategy, start)
    evaluate = _Evaluator(cfg, loop, make_eval_dataset, is_chief) if make_eval_dataset else None
    iterator = iter(train)

    os.makedirs(cfg.model_dir, exist_ok=True)
    writer = tf.summary.create_file_writer(os.path.join(cfg.model_dir, "train")) \
        if is_chief else tf.summary.create_noop_writer()
    log = open(os.path.join(cfg.model_dir, "metrics.jsonl"), "a") if is_chief else None
    stop = StopFlag()
    bar = tqdm(total=cfg.num_train_steps, initial=start, disable=not (cfg.progress and is_chief),
               file=sys.stderr, unit="step")
    metrics, last_time, last_step = {}, time.time(), start
    try:
        while int(step.numpy()) < cfg.num_train_steps:
            metrics = loop.train_step(iterator)
            step.assign_add(1)
            current = int(step.numpy())
            metrics["learning_rate"] = float(optimizer.learning_rate)  # for the next step
            if log:
                log.write(json.dumps({"step": current, **metrics}) + "\n")
                log.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", lr=f"{metrics['learning_rate']:.2e}")
            if current % cfg.log_steps == 0 or current == cfg.num_train_steps:
                elapsed = time.time() - last_time
                rate = (current - last_step) / max(elapsed, 1e-9)
                with writer.as_default(step=current):
                    for name, value in metrics.items():
                        tf.summary.scalar(name, value)
                    tf.summary.scalar("steps_per_second", rate)
                    tf.summary.scalar("examples_per_second", rate * cfg.train_batch_size)
                last_time, last_step = time.time(), current
            if current % cfg.save_checkpoints_steps == 0 or stop.requested:
                keeper.save(current)
            if stop.requested:
                print(f"SIGTERM: saved checkpoint at step {current}, exiting", file=sys.stderr)
                raise SystemExit(143)
            if (evaluate and cfg.eval_interval_steps and current % cfg.eval_interval_steps == 0
                    and current < cfg.num_train_steps):
                evaluate(current)
        if keeper.latest is None or not keeper.latest.endswith(f"-{int(step.numpy())}"):
            keeper.save(int(step.numpy()))
    finally:
        bar.close()
        if log:
            log.close()
    if evaluate is not None:
        eval_metrics = evaluate(int(step.numpy()))
        if is_chief:
            with open(os.path.join(cfg.model_dir, "eval_metrics.json"), "w") as f:
                json.dump(eval_metrics, f, indent=2)
        metrics = {**metrics, **{f"eval_{k}": v for k, v in eval_metrics.items()}}
    if is_chief:
        if cfg.vocab_file:
            from keras_bert_x.text.tokenizer import load_vocabulary

            model.vocabulary = load_vocabulary(cfg.vocab_file)
        model.save_pretrained(os.path.join(cfg.model_dir, "pretrained"), overwrite=True)
    return metrics
