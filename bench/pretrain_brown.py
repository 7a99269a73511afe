"""Learning for real: pretrain BERT on the bundled Brown corpus, evaluate on held-out documents.

    .venv/bin/python bench/pretrain_brown.py              # bert_tiny, 8000 steps, ~55 min, 2 cores
    .venv/bin/python bench/pretrain_brown.py --steps 500  # a quick look

Every 10th of the 500 Brown documents is held out (50 documents, 3-4 from each of the 15
genres; the corpus is ordered by genre, so a contiguous split would hold out fiction only and
pair it with fiction). A WordPiece vocabulary is learned from the 450 training documents, the
trainer reads them as text (`--train_text`: fresh NSP pairs and masks every epoch), and MLM loss
and NSP accuracy are measured on fixed TFRecords made from the held-out documents every
--eval_every steps and at the end. Two baselines are measured on the same held-out masked
positions: a unigram model of the training tokens (add-one smoothed) and always guessing the
most frequent training piece. Writes bench/results/pretrain_brown.json and prints the curves
(train means per 500 steps, held-out at each evaluation).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
WINDOW = 500


def split_documents(docs):
    return ([d for i, d in enumerate(docs) if i % 10 != 9],
            [d for i, d in enumerate(docs) if i % 10 == 9])


def baselines(train_text, heldout_records, tokens):
    """Cross-entropy of a unigram model of the training tokens, and the accuracy of always
    guessing the most frequent training piece, on the held-out masked positions."""
    import numpy as np
    import tensorflow as tf

    from keras_bert_x.data.corpus import tokenize_documents
    from keras_bert_x.data.examples import feature_spec

    documents, _ = tokenize_documents([train_text], tokens)
    counts = np.bincount([t for d in documents for s in d for t in s], minlength=len(tokens))
    log_p = np.log((counts + 1.0) / (counts.sum() + len(tokens)))
    spec = feature_spec(128, 20)
    labels, weights = [], []
    for record in tf.data.TFRecordDataset(heldout_records):
        example = tf.io.parse_single_example(record, spec)
        labels.append(example["masked_lm_ids"].numpy())
        weights.append(example["masked_lm_weights"].numpy())
    labels, weights = np.concatenate(labels), np.concatenate(weights)
    return {"unigram_cross_entropy": round(float(-(log_p[labels] * weights).sum()
                                                 / weights.sum()), 3),
            "most_frequent_piece": tokens[int(counts.argmax())],
            "most_frequent_piece_accuracy": round(float(((labels == counts.argmax()) * weights)
                                                        .sum() / weights.sum()), 4),
            "chance_cross_entropy": round(float(np.log(len(tokens))), 3)}


def vocabulary(args, train_text):
    """The given --vocab_file, or one learned from the training documents (cached)."""
    from keras_bert_x.io_utils import write_vocab
    from keras_bert_x.text.vocab import learn_vocabulary

    if args.vocab_file:
        return args.vocab_file
    path = os.path.join(args.work_dir, f"vocab-{args.vocab_size}.txt")
    if not os.path.exists(path):
        start = time.time()
        write_vocab(path + ".partial", learn_vocabulary([train_text], args.vocab_size))
        os.replace(path + ".partial", path)
        print(f"learned {path} in {time.time() - start:.0f}s", flush=True)
    return path


def curve(rows):
    """Means of the train metrics over consecutive windows of WINDOW steps."""
    out = []
    for start in range(0, len(rows), WINDOW):
        window = rows[start:start + WINDOW]
        out.append({"steps": f"{window[0]['step']}-{window[-1]['step']}",
                    **{k: round(sum(r[k] for r in window) / len(window), 3)
                       for k in ("mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy")}})
    return out


def main():
    from keras_bert_x.data.corpus import bundled_documents, write_documents
    from keras_bert_x.data.create_pretraining_data import create_pretraining_data
    from keras_bert_x.data.instances import MaskingConfig
    from keras_bert_x.text.tokenizer import load_vocabulary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="bert_tiny")
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument("--vocab_file", help="use this vocabulary instead of learning one")
    parser.add_argument("--eval_every", type=int, default=1000, help="held-out evaluation "
                        "every N steps (and at the end)")
    parser.add_argument("--work_dir", default=os.path.join(ROOT, "runs", "pretrain_brown"))
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    train_docs, heldout_docs = split_documents(bundled_documents())
    train_text = write_documents(os.path.join(args.work_dir, "train.txt"), train_docs)
    heldout_text = write_documents(os.path.join(args.work_dir, "heldout.txt"), heldout_docs)
    vocab = vocabulary(args, train_text)
    tokens = load_vocabulary(vocab)
    heldout = os.path.join(args.work_dir, "heldout.tfrecord")
    summary = create_pretraining_data([heldout_text], [heldout], tokens,
                                      MaskingConfig(128, 20), dupe_factor=1, random_seed=1)
    print(f"held out: {summary}", flush=True)
    reference = baselines(train_text, heldout, tokens)
    print(f"baselines on the held-out masked positions: {reference}", flush=True)
    model_dir = os.path.join(args.work_dir, "model")
    shutil.rmtree(model_dir, ignore_errors=True)  # a fresh run, never a resume of an older one
    cmd = [sys.executable, os.path.join(ROOT, "trainers", "pretrain.py"),
           f"--model_dir={model_dir}", f"--train_text={train_text}", f"--eval_data={heldout}",
           f"--vocab_file={vocab}", f"--preset={args.preset}", f"--num_train_steps={args.steps}",
           f"--num_warmup_steps={args.steps // 10}", f"--learning_rate={args.learning_rate}",
           f"--train_batch_size={args.batch}", "--eval_steps=1000", f"--log_steps={WINDOW}",
           f"--eval_interval_steps={args.eval_every}",
           "--save_checkpoints_steps=1000", "--noprogress"]
    start = time.time()
    run = subprocess.run(cmd, capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if run.returncode:
        raise SystemExit(f"error: training failed:\n{run.stderr[-3000:]}")
    with open(os.path.join(model_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    with open(os.path.join(model_dir, "eval_metrics.json")) as f:
        heldout_metrics = json.load(f)
    with open(os.path.join(model_dir, "eval_metrics.jsonl")) as f:
        heldout_curve = [{k: round(v, 4) if isinstance(v, float) else v
                          for k, v in json.loads(line).items()} for line in f]
    report = {"command": " ".join(["bench/pretrain_brown.py", *sys.argv[1:]]),
              "preset": args.preset, "steps": args.steps, "batch": args.batch,
              "learning_rate": args.learning_rate, "vocab": os.path.basename(vocab),
              "vocab_tokens": len(tokens), "heldout_pairs": summary.instances,
              "train_minutes": round((time.time() - start) / 60, 1),
              "first_step_mlm_loss": round(rows[0]["mlm_loss"], 3), "train_curve": curve(rows),
              "heldout_curve": heldout_curve, "heldout": heldout_metrics,
              "heldout_baselines": reference}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "pretrain_brown.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
