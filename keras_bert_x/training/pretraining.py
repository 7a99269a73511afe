"""`run_pretraining`: what `trainers/pretrain.py` does, as a library function."""

import dataclasses
import os
import sys
from typing import Optional

import keras

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
    steps_per_loop: int = 1               # steps per tf.function call (host syncs)
    jit_compile: bool = False              # XLA-compile each replica's train/eval step
    length_buckets: str = "auto"           # --train_text batches padded to multiples of 16


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
    from keras_bert_x.training.runner import check_common_settings

    from keras_bert_x.text.packing import length_buckets

    check_common_settings(cfg, os.path.join(cfg.model_dir, "pretrained"))
    length_buckets(cfg.length_buckets, cfg.max_seq_length)  # one error line if malformed
    if bool(cfg.train_data) == bool(cfg.train_text):
        raise BertInputError("give exactly one of --train_data (TFRecords) or --train_text")
    if cfg.train_text and not cfg.vocab_file:
        raise BertInputError("--train_text needs --vocab_file")
    from keras_bert_x.data.corpus import expand_inputs

    for pattern in (cfg.train_data, cfg.train_text, cfg.eval_data):
        if pattern:
            expand_inputs(pattern)


def _datasets(cfg, strategy, start_step):
    from keras_bert_x.data.instances import MaskingConfig
    from keras_bert_x.data.pretraining_dataset import inspect_records, pretraining_dataset

    def train_fn(ctx):
        per_replica = ctx.get_per_replica_batch_size(cfg.train_batch_size)
        # Each pipeline feeds its replicas one batch each per step: skip what was consumed.
        consumed = start_step * (ctx.num_replicas_in_sync // ctx.num_input_pipelines)
        if cfg.train_text:
            from keras_bert_x.data.dynamic_masking import dynamic_masking_dataset

            from keras_bert_x.text.packing import length_buckets

            masking = MaskingConfig(cfg.max_seq_length, cfg.max_predictions_per_seq,
                                    do_whole_word_mask=cfg.whole_word_mask)
            buckets = length_buckets(cfg.length_buckets, cfg.max_seq_length)
            return dynamic_masking_dataset(cfg.train_text, cfg.vocab_file, per_replica, masking,
                                           seed=cfg.seed, input_context=ctx, nsp=cfg.nsp,
                                           skip_batches=consumed, length_buckets=buckets)
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


def _build(cfg, config, strategy):
    """(model, loop), created under the strategy's scope."""
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
                            TrainingLoop.loss_scale_for(cfg.mixed_precision), cfg.jit_compile)
    return model, loop


def run_pretraining(cfg):
    """Trains a BertPretrainer (BertMaskedLM with nsp=False); returns the last metrics.

    Resumes from `model_dir` if it can. Keras's global dtype policy is `mixed_precision`
    while it runs, and is put back after.
    """
    from keras_bert_x.training.runner import mixed_precision_policy

    with mixed_precision_policy(cfg.mixed_precision):
        return _run_pretraining(cfg)


def _run_pretraining(cfg):
    from keras_bert_x.training.checkpoints import initialize_from
    from keras_bert_x.training.runner import StartupClock, Trainer, check_batch_split
    from keras_bert_x.training.strategy import create_strategy

    startup = StartupClock()
    _validate(cfg)
    config = _bert_config(cfg)
    keras.utils.set_random_seed(cfg.seed)
    strategy = create_strategy(cfg.strategy, cfg.tpu, cfg.cluster_timeout)
    check_batch_split(cfg, strategy.num_replicas_in_sync, bool(cfg.eval_data))
    model, loop = _build(cfg, config, strategy)
    trainer = Trainer(cfg.model_dir, strategy, loop, cfg.num_train_steps, cfg.train_batch_size,
                      cfg.save_checkpoints_steps, cfg.keep_checkpoint_max, cfg.log_steps,
                      cfg.progress, cfg.steps_per_loop, startup)
    if not trainer.restore() and cfg.init_checkpoint:
        initialize_from(cfg.init_checkpoint, model)
        print(f"initialized from {cfg.init_checkpoint}", file=sys.stderr)
    startup.mark("model")
    train, make_eval_dataset = _datasets(cfg, strategy, trainer.start_step)
    train = iter(train)
    startup.mark("input pipeline")
    evaluate = None
    if make_eval_dataset:
        evaluate = lambda step: loop.evaluate(make_eval_dataset(),  # noqa: E731
                                              max_batches=cfg.eval_steps)
    metrics = trainer.train(train, evaluate, cfg.eval_interval_steps)
    if trainer.is_chief:
        if cfg.vocab_file:
            from keras_bert_x.text.tokenizer import load_vocabulary

            model.vocabulary = load_vocabulary(cfg.vocab_file)
        model.save_pretrained(os.path.join(cfg.model_dir, "pretrained"), overwrite=True)
    return metrics
