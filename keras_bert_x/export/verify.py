"""The parity report: does every exported form compute what the Keras model computes?

For a held-out evaluation file (the task's own format: a table for a classifier, CoNLL for a
token classifier, SQuAD JSON for span QA), each form's logits on the same token ids are
compared with the Keras model's: largest absolute difference, how often the prediction agrees,
the task metric, the size on disk and the median latency of one example (batch 1). The
SavedModel runs in a fresh process that imports only TensorFlow and tensorflow_text, as TF
Serving would load it; it is fed through `serve_ids` so that every form reads identical ids.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from keras_bert_x.errors import BertInputError
from keras_bert_x.models.encoder import INPUT_NAMES


@dataclasses.dataclass
class EvaluationSet:
    features: dict        # the three inputs (and labels) as arrays [N, T]
    task: object          # a keras_bert_x.training.finetuning_tasks task
    metric: str           # the task metric reported


def evaluation_set(model, tokenizer, eval_file, text_column="text", label_column="label",
                   text_b_column=None, conll_fields=2, limit=None, **windows):
    """The evaluation features and task for `model`'s kind, read from `eval_file`."""
    from keras_bert_x import models
    from keras_bert_x.training import finetuning_tasks as tasks

    if isinstance(model, models.BertClassifier) and not model.is_regression:
        from keras_bert_x.data.tasks import classification as data

        examples = data.read_classification(eval_file, text_column, label_column, text_b_column)
        examples = _head(examples, limit)
        features = data.classification_features(tokenizer, examples, model.labels)
        return EvaluationSet(features, tasks.ClassificationTask(model.labels), "accuracy")
    if isinstance(model, models.BertTokenClassifier):
        from keras_bert_x.data.tasks import conll

        sentences = _head(conll.read_conll(eval_file, conll_fields), limit)
        features = conll.token_classification_features(tokenizer, sentences, model.labels)
        return EvaluationSet(features, tasks.TokenClassificationTask(model.labels, sentences.tags),
                             "f1")
    if isinstance(model, models.BertSpanQA):
        from keras_bert_x.data.tasks import squad

        data = _head(squad.read_squad(eval_file, is_training=False), limit)
        features = squad.squad_features(tokenizer, data, max_seq_length=tokenizer.max_seq_length,
                                        **windows)
        return EvaluationSet(features.arrays, tasks.SpanQATask(data, features, tokenizer.vocabulary),
                             "f1")
    raise BertInputError(f"no parity report for a {type(model).__name__}: it needs a "
                         "classifier, token classifier or span QA model")


def _head(data, limit):
    """The first `limit` examples of a dataclass of parallel lists (TextExamples,
    TaggedSentences)."""
    if not limit:
        return data
    return dataclasses.replace(data, **{
        f.name: getattr(data, f.name)[:limit] for f in dataclasses.fields(data)
        if isinstance(getattr(data, f.name), list)})


def task_results(evaluation, logits):
    """(predictions to compare between forms, the task metric) for logits of every example."""
    import tensorflow as tf

    task, features = evaluation.task, evaluation.features
    batch = {k: tf.constant(v) for k, v in features.items()}
    outputs = logits["logits"] if set(logits) == {"logits"} else {
        k: tf.constant(v) for k, v in logits.items()}
    arrays = {k: np.asarray(v) for k, v in task.prediction_outputs(batch, outputs).items()}
    if "start_logits" in logits:  # answers post-processed once, for both uses
        answers = task.answers(arrays)
        metric = task.answer_metrics(answers)[evaluation.metric]
        return np.array([answers[e.qid] for e in task.data.examples], dtype=object), float(metric)
    metric = task.host_metrics(arrays)[evaluation.metric]
    if "labels" in features and np.ndim(features["labels"]) == 2:  # tags at first pieces
        predictions = arrays["predictions"][features["labels"] >= 0]
    else:
        predictions = arrays["predictions"]
    return predictions, float(metric)


def _ids(features):
    return {k: np.asarray(features[k], np.int32) for k in INPUT_NAMES}


def _single_rows(ids, count):
    """The first `count` examples of `ids`, each as a batch of one."""
    return [{k: v[i:i + 1] for k, v in ids.items()}
            for i in range(min(count, len(ids["input_word_ids"])))]


def keras_logits(model, features, batch_size=64):
    out = model.predict(_ids(features), batch_size=batch_size, verbose=0)
    return out if isinstance(out, dict) else {"logits": out}


def median_latency_ms(call, rows, repeats):
    times = []
    for i in range(min(repeats, len(rows))):
        start = time.perf_counter()
        call(rows[i])
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)) if times else float("nan")


# Run by a fresh interpreter: TensorFlow and tensorflow_text only, as TF Serving loads models.
_SAVED_MODEL_RUNNER = """
import json, sys, time
import numpy as np, tensorflow as tf, tensorflow_text
path, data, out, repeats = sys.argv[1], np.load(sys.argv[2]), sys.argv[3], int(sys.argv[4])
serve = tf.saved_model.load(path).signatures["serve_ids"]
ids = {k: data[k] for k in data.files}
n = len(ids["input_word_ids"])
logits = {}
for start in range(0, n, 64):
    for k, v in serve(**{k: tf.constant(v[start:start + 64]) for k, v in ids.items()}).items():
        logits.setdefault(k, []).append(v.numpy())
times = []
for i in range(min(repeats, n)):
    row = {k: tf.constant(v[i:i + 1]) for k, v in ids.items()}
    begin = time.perf_counter(); serve(**row); times.append(time.perf_counter() - begin)
np.savez(out, **{k: np.concatenate(v) for k, v in logits.items()})
assert not any(m.startswith("keras_bert_x") for m in sys.modules)
print(json.dumps({"latency_ms": 1000 * float(np.median(times)) if times else None}))
"""


def saved_model_logits(version_dir, features, repeats):
    """(logits, median batch-1 latency in ms) of `serve_ids`, in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(os.path.join(tmp, "ids.npz"), **_ids(features))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
        run = subprocess.run([sys.executable, "-c", _SAVED_MODEL_RUNNER, version_dir,
                              os.path.join(tmp, "ids.npz"), os.path.join(tmp, "out.npz"),
                              str(repeats)], env=env, capture_output=True, text=True, cwd=tmp)
        if run.returncode != 0:
            raise BertInputError(f"{version_dir}: the SavedModel failed in a fresh process: "
                                 f"{run.stderr.strip().splitlines()[-1:]}")
        with np.load(os.path.join(tmp, "out.npz")) as out:
            logits = {k: out[k] for k in out.files}
        return logits, json.loads(run.stdout.strip().splitlines()[-1])["latency_ms"]


def tflite_logits(path, features, repeats):
    from keras_bert_x.export.tflite_runner import TFLiteModel

    lite = TFLiteModel(path)
    ids = _ids(features)
    if lite.input_names != tuple(sorted(INPUT_NAMES)):
        raise BertInputError(f"{path}: takes {list(lite.input_names)}, not token ids; the "
                             "parity report compares ids-input TFLite files")
    width = lite.seq_length  # None: the file takes any length
    if width is not None and width != ids["input_word_ids"].shape[1]:
        raise BertInputError(f"{path}: converted for {width} tokens, the evaluation has "
                             f"{ids['input_word_ids'].shape[1]} (--max_seq_length)")
    logits = lite.predict(ids)
    return logits, median_latency_ms(lambda row: lite(**row), _single_rows(ids, repeats), repeats)


def _size_mb(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
                   for f in files) / 1e6
    return os.path.getsize(path) / 1e6


def parity_report(model, tokenizer, evaluation, saved_model=None, tflite_files=(),
                  latency_repeats=50):
    """One row per form: {form, size_mb, max_abs_diff, agreement, <metric>, latency_ms}."""
    features = evaluation.features
    reference = keras_logits(model, features)
    reference_predictions, reference_metric = task_results(evaluation, reference)
    import tensorflow as tf

    rows = _single_rows(_ids(features), latency_repeats)
    forward = tf.function(lambda row: model(row, training=False))  # graph, as exports run
    keras_latency = median_latency_ms(forward, rows, latency_repeats)
    report = [{"form": "keras", "size_mb": None, "max_abs_diff": 0.0, "agreement": 1.0,
               evaluation.metric: reference_metric, "latency_ms": keras_latency}]
    forms = ([("saved_model", saved_model, saved_model_logits)] if saved_model else []) + [
        (f"tflite {os.path.basename(f)}", f, tflite_logits) for f in tflite_files]
    for name, path, run in forms:
        logits, latency = run(path, features, latency_repeats)
        predictions, metric = task_results(evaluation, logits)
        diff = max(float(np.max(np.abs(np.asarray(logits[k], np.float64) - reference[k])))
                   for k in reference)
        report.append({"form": name, "size_mb": _size_mb(path), "max_abs_diff": diff,
                       "agreement": float(np.mean(predictions == reference_predictions)),
                       evaluation.metric: metric, "latency_ms": latency})
    return report


def markdown_table(report, metric):
    lines = [f"| form | size (MB) | max abs logit diff | agreement | {metric} | "
             "latency, batch 1 (ms) |", "|---|---|---|---|---|---|"]
    for row in report:
        size = "" if row["size_mb"] is None else f"{row['size_mb']:.1f}"
        value = row[metric]
        value = f"{100 * value:.2f}%" if metric == "accuracy" else f"{value:.2f}"
        lines.append(f"| {row['form']} | {size} | {row['max_abs_diff']:.2g} | "
                     f"{100 * row['agreement']:.2f}% | {value} | {row['latency_ms']:.1f} |")
    return "\n".join(lines)


def run_verification(model_dir, eval_file, saved_model=None, tflite_files=(), output_dir=None,
                     max_seq_length=128, limit=None, latency_repeats=50, text_column="text",
                     text_b_column=None, label_column="label", conll_fields=2, doc_stride=128,
                     max_query_length=64):
    """Loads the model, reads the evaluation, runs `parity_report`; writes parity.json and
    parity.md into `output_dir` (if given) and returns the markdown table."""
    from keras_bert_x.export.savedmodel import load_model, make_tokenizer
    from keras_bert_x.io_utils import atomic_output_dir

    for path in (eval_file, saved_model, *tflite_files):
        if path and not os.path.exists(path):
            raise BertInputError(f"{path}: not found")
    model, source = load_model(model_dir)
    tokenizer = make_tokenizer(model, max_seq_length)
    evaluation = evaluation_set(model, tokenizer, eval_file, text_column, label_column,
                                text_b_column, conll_fields, limit, doc_stride=doc_stride,
                                max_query_length=max_query_length)
    report = parity_report(model, tokenizer, evaluation, saved_model, tflite_files,
                           latency_repeats)
    table = markdown_table(report, evaluation.metric)
    if output_dir:
        with atomic_output_dir(output_dir, overwrite=True,
                               replaceable=lambda p: set(os.listdir(p)) <= {"parity.json",
                                                                            "parity.md"}) as tmp:
            with open(os.path.join(tmp, "parity.json"), "w", encoding="utf-8") as f:
                json.dump({"model": source, "eval_file": os.path.abspath(eval_file),
                           "examples": len(evaluation.features["input_word_ids"]),
                           "metric": evaluation.metric, "forms": report}, f, indent=2)
            with open(os.path.join(tmp, "parity.md"), "w", encoding="utf-8") as f:
                f.write(table + "\n")
    return table
