"""`run_finetuning`: what `trainers/finetune.py` does, as a library function.

A task model is built on the encoder of `init_checkpoint` (any directory `from_pretrained`
reads; a task head it has is kept), trained with the shared loop and driver for `epochs`
epochs with AdamW (linear warm-up over `warmup_ratio` of the steps, then linear decay),
evaluated after every epoch; the best evaluation's model is kept in `model_dir/best` and the
last in `model_dir/final` (both `save_pretrained` directories, vocabulary and labels included),
and `eval_results.json` holds every epoch's metrics.
"""

import dataclasses
import json
import os
import sys
from typing import Optional

import keras

from keras_bert_x.errors import BertInputError

TASKS = ("classification", "regression", "token_classification", "squad")


@dataclasses.dataclass
class FinetuneConfig:
    task: str
    init_checkpoint: str
    model_dir: str
    train_file: str
    eval_file: Optional[str] = None
    vocab_file: Optional[str] = None        # default: the checkpoint's vocab.txt
    do_lower_case: Optional[bool] = None    # default: what the checkpoint says, else True
    text_column: str = "text"              # classification / regression tables
    text_b_column: Optional[str] = None
    label_column: str = "label"
    conll_fields: int = 2                  # fields per CoNLL line (token first, tag last)
    max_seq_length: int = 128
    doc_stride: int = 128                  # SQuAD windows
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best_size: int = 20
    null_score_threshold: float = 0.0      # SQuAD v2.0
    epochs: float = 3.0
    train_batch_size: int = 32             # global, per optimizer step
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    grad_accum_steps: int = 1
    mixed_precision: str = "float32"
    strategy: str = "default"
    tpu: Optional[str] = None
    seed: int = 42
    save_checkpoints_steps: int = 0        # 0: at the end of every epoch
    keep_checkpoint_max: int = 2
    log_steps: int = 50
    cluster_timeout: float = 120.0
    progress: bool = True
    steps_per_loop: int = 1               # steps per tf.function call (host syncs)
    jit_compile: bool = False              # XLA-compile each replica's train/eval step
    length_buckets: str = "auto"           # each batch at its longest (XLA, TPU: multiples of 16)


def _validate(cfg):
    from keras_bert_x.training.runner import check_common_settings

    if cfg.task not in TASKS:
        raise BertInputError(f"--task={cfg.task}: choose one of {', '.join(TASKS)}")
    for name in ("init_checkpoint", "model_dir", "train_file"):
        if not getattr(cfg, name):
            raise BertInputError(f"--{name} is required")
    if not os.path.isdir(cfg.init_checkpoint):
        raise BertInputError(f"--init_checkpoint={cfg.init_checkpoint}: no such directory")
    for name in ("train_file", "eval_file", "vocab_file"):
        path = getattr(cfg, name)
        if path and not os.path.isfile(path):
            raise BertInputError(f"--{name}={path}: no such file")
    from keras_bert_x.text.packing import length_buckets

    length_buckets(cfg.length_buckets, cfg.max_seq_length)  # one error line if malformed
    if cfg.epochs <= 0 or not 0 <= cfg.warmup_ratio < 1:
        raise BertInputError("--epochs must be > 0 and --warmup_ratio in [0, 1)")
    check_common_settings(cfg, *(os.path.join(cfg.model_dir, name) for name in ("final", "best")))


@dataclasses.dataclass
class _Data:
    """A task's training features, evaluation features, the loop task and the model class."""
    train: dict
    eval: Optional[dict]
    task: object
    model_class: type
    head_config: dict


def _prepare(cfg, tokenizer):
    from keras_bert_x.training import finetuning_tasks as tasks

    kind = cfg.task
    if kind in ("classification", "regression"):
        from keras_bert_x.data.tasks import classification as data
        from keras_bert_x.models.classifier import BertClassifier

        regression = kind == "regression"
        read = lambda path: data.read_classification(  # noqa: E731
            path, cfg.text_column, cfg.label_column, cfg.text_b_column, regression)
        train = read(cfg.train_file)
        labels = None if regression else data.label_names(train)
        evaluation = read(cfg.eval_file) if cfg.eval_file else None
        features = lambda examples: data.classification_features(  # noqa: E731
            tokenizer, examples, labels)
        task = tasks.RegressionTask() if regression else tasks.ClassificationTask(labels)
        head = {"num_classes": 1} if regression else {"labels": labels}
        return _Data(features(train), evaluation and features(evaluation), task,
                     BertClassifier, head)
    if kind == "token_classification":
        from keras_bert_x.data.tasks import conll
        from keras_bert_x.models.token_classifier import BertTokenClassifier

        train = conll.read_conll(cfg.train_file, cfg.conll_fields)
        tags = conll.tag_names(train)
        evaluation = conll.read_conll(cfg.eval_file, cfg.conll_fields) if cfg.eval_file else None
        task = tasks.TokenClassificationTask(tags, evaluation.tags if evaluation else None)
        return _Data(conll.token_classification_features(tokenizer, train, tags),
                     evaluation and conll.token_classification_features(tokenizer, evaluation,
                                                                        tags),
                     task, BertTokenClassifier, {"labels": tags})
    from keras_bert_x.data.tasks import squad
    from keras_bert_x.models.span_qa import BertSpanQA

    windows = dict(max_seq_length=cfg.max_seq_length, doc_stride=cfg.doc_stride,
                   max_query_length=cfg.max_query_length)
    train = squad.read_squad(cfg.train_file, is_training=True)
    if train.skipped:
        print(f"{cfg.train_file}: skipped {train.skipped} answers whose answer_start does not "
              "point at their text", file=sys.stderr)
    train_features = squad.squad_features(tokenizer, train, is_training=True, **windows).arrays
    eval_features, task = None, tasks.SpanQATask()
    if cfg.eval_file:
        evaluation = squad.read_squad(cfg.eval_file, is_training=False)
        features = squad.squad_features(tokenizer, evaluation, **windows)
        eval_features = features.arrays
        task = tasks.SpanQATask(evaluation, features, tokenizer.vocabulary,
                                n_best=cfg.n_best_size, max_answer_length=cfg.max_answer_length,
                                null_threshold=cfg.null_score_threshold,
                                lower_case=tokenizer.lower_case)
    return _Data(train_features, eval_features, task, BertSpanQA, {})


def _read_init(cfg):
    """(the init checkpoint's tensors, vocabulary, lower_case): --vocab_file or the checkpoint's
    vocab.txt; --do_lower_case or what the checkpoint says (HF tokenizer_config.json, ours),
    else uncased. Read once, before anything is built."""
    from keras_bert_x.models.pretrained import read_pretrained
    from keras_bert_x.text.tokenizer import load_vocabulary

    checkpoint = read_pretrained(cfg.init_checkpoint)
    lower_case = cfg.do_lower_case
    if lower_case is None:
        lower_case = checkpoint.lower_case if checkpoint.lower_case is not None else True
    if cfg.vocab_file:
        return checkpoint, load_vocabulary(cfg.vocab_file), lower_case
    if checkpoint.vocabulary is None:
        raise BertInputError(f"{cfg.init_checkpoint}: has no vocab.txt; give --vocab_file")
    return checkpoint, checkpoint.vocabulary, lower_case


def _evaluations(model_dir, up_to_step, per_epoch):
    """The evaluations a resumed run already made (eval_metrics.jsonl), up to its step."""
    path = os.path.join(model_dir, "eval_metrics.jsonl")
    if not os.path.isfile(path):
        return []
    rows = []
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except ValueError:  # cut short by a kill in mid-write: that evaluation is lost
                continue
    latest = {r["step"]: r for r in rows if r["step"] <= up_to_step}
    return [{"step": s, "epoch": round(s / per_epoch, 2),
             **{k: v for k, v in r.items() if k != "step"}} for s, r in sorted(latest.items())]


def run_finetuning(cfg):
    """Fine-tunes a task model; returns the last metrics (eval_* of the final evaluation).

    Resumes from `model_dir` if it can. Keras's global dtype policy is `mixed_precision`
    while it runs, and is put back after.
    """
    from keras_bert_x.training.runner import mixed_precision_policy

    with mixed_precision_policy(cfg.mixed_precision):
        return _run_finetuning(cfg)


def _run_finetuning(cfg):
    from keras_bert_x.data.tasks.datasets import (TaskFeatures, eval_dataset, padding_report,
                                                  steps_per_epoch, train_dataset)
    from keras_bert_x.text.packing import length_buckets
    from keras_bert_x.text.tokenizer import BertTokenizer
    from keras_bert_x.training.loop import TrainingLoop
    from keras_bert_x.training.optimization import create_optimizer
    from keras_bert_x.training.runner import (StartupClock, Trainer, check_batch_split,
                                              compiles_shapes)
    from keras_bert_x.training.strategy import create_strategy

    startup = StartupClock()
    _validate(cfg)
    checkpoint, vocabulary, lower_case = _read_init(cfg)
    tokenizer = BertTokenizer(vocabulary, lower_case=lower_case,
                              max_seq_length=cfg.max_seq_length)
    data = _prepare(cfg, tokenizer)
    # Kept at their real lengths from here on; the padded arrays are dropped.
    data.train = TaskFeatures.from_arrays(data.train)
    data.eval = data.eval and TaskFeatures.from_arrays(data.eval)
    buckets = length_buckets(cfg.length_buckets, cfg.max_seq_length, compiles_shapes(cfg))
    startup.mark("data")
    keras.utils.set_random_seed(cfg.seed)
    strategy = create_strategy(cfg.strategy, cfg.tpu, cfg.cluster_timeout)
    check_batch_split(cfg, strategy.num_replicas_in_sync, data.eval is not None)
    per_epoch = steps_per_epoch(len(data.train), cfg.train_batch_size)
    total = max(int(round(cfg.epochs * per_epoch)), 1)
    with strategy.scope():
        model = data.model_class.from_checkpoint(checkpoint, where=cfg.init_checkpoint,
                                                 **data.head_config)
        model.vocabulary, model.lower_case = vocabulary, lower_case
        if model.config.max_position_embeddings < cfg.max_seq_length:
            raise BertInputError(f"--max_seq_length={cfg.max_seq_length} exceeds the model's "
                                 f"max_position_embeddings={model.config.max_position_embeddings}")
        optimizer = create_optimizer("adamw", cfg.learning_rate, total,
                                     int(cfg.warmup_ratio * total), cfg.weight_decay)
        loop = TrainingLoop(strategy, model, optimizer, data.task, cfg.grad_accum_steps,
                            cfg.clip_norm, TrainingLoop.loss_scale_for(cfg.mixed_precision),
                            cfg.jit_compile)
    trainer = Trainer(cfg.model_dir, strategy, loop, total, cfg.train_batch_size,
                      cfg.save_checkpoints_steps or per_epoch, cfg.keep_checkpoint_max,
                      cfg.log_steps, cfg.progress, cfg.steps_per_loop, startup)
    history = []
    if trainer.restore():  # the epochs evaluated before the interruption
        history = _evaluations(cfg.model_dir, trainer.start_step, per_epoch)
    start = trainer.start_step
    if trainer.is_chief:
        print("training: " + padding_report(data.train, cfg.train_batch_size, cfg.seed, buckets),
              file=sys.stderr)

    def train_fn(ctx):
        per_replica = ctx.get_per_replica_batch_size(cfg.train_batch_size)
        consumed = start * (ctx.num_replicas_in_sync // ctx.num_input_pipelines)
        return train_dataset(data.train, per_replica, cfg.seed, ctx, skip_batches=consumed,
                             buckets=buckets)

    train = iter(strategy.distribute_datasets_from_function(train_fn))
    startup.mark("model and input pipeline")

    def evaluate(step):
        return loop.evaluate(strategy.distribute_datasets_from_function(
            lambda ctx: eval_dataset(data.eval, ctx.get_per_replica_batch_size(
                cfg.eval_batch_size), ctx, buckets)))

    def keep_best(step, metrics):
        history.append({"step": step, "epoch": round(step / per_epoch, 2), **metrics})
        best = max(history, key=lambda h: h[data.task.main_metric])
        if trainer.is_chief and best is history[-1]:
            model.save_pretrained(os.path.join(cfg.model_dir, "best"), overwrite=True)

    evaluates = data.eval is not None
    metrics = trainer.train(train, evaluate if evaluates else None, per_epoch,
                            keep_best if evaluates else None)
    if trainer.is_chief:
        model.save_pretrained(os.path.join(cfg.model_dir, "final"), overwrite=True)
        if history:
            best = max(history, key=lambda h: h[data.task.main_metric])
            with open(os.path.join(cfg.model_dir, "eval_results.json"), "w") as f:
                json.dump({"task": cfg.task, "main_metric": data.task.main_metric,
                           "best": best, "epochs": history}, f, indent=2)
    return metrics
