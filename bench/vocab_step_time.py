"""What the vocabulary size costs a small BERT's training step (the tied output projection,
the embedding gradient and its AdamW update all scale with it).

    .venv/bin/python bench/vocab_step_time.py                       # 30,522 vs 8,000 tokens
    .venv/bin/python bench/vocab_step_time.py --preset bert_mini --vocab_sizes 30522,16000,8000

Each vocabulary size runs in a fresh process: the real training step (`TrainingLoop`, MLM on 20
positions + NSP, AdamW, clip 1.0) on a fixed random batch, 3 warm-up steps, then the median of
--steps timed steps. Writes bench/results/vocab_step_time.json.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.abspath(os.path.dirname(__file__)))

CHILD = """
import json, statistics, sys, time
import numpy as np, tensorflow as tf
import keras_bert_x as kbx
from keras_bert_x.training.losses import PretrainingTask
from keras_bert_x.training.loop import TrainingLoop
from keras_bert_x.training.optimization import create_optimizer
preset, vocab, batch, seq, predictions, steps = sys.argv[1], *map(int, sys.argv[2:])
rng = np.random.default_rng(0)
data = {"input_word_ids": rng.integers(5, vocab, (batch, seq)).astype("int32"),
        "input_mask": np.ones((batch, seq), "int32"),
        "input_type_ids": np.zeros((batch, seq), "int32"),
        "masked_lm_positions": rng.integers(1, seq, (batch, predictions)).astype("int32"),
        "masked_lm_ids": rng.integers(5, vocab, (batch, predictions)).astype("int32"),
        "masked_lm_weights": np.ones((batch, predictions), "float32"),
        "next_sentence_labels": rng.integers(0, 2, batch).astype("int32"),
        "example_weights": np.ones(batch, "float32")}
model = kbx.BertPretrainer(kbx.BertEncoder(kbx.BertConfig.from_preset(preset, vocab_size=vocab)))
loop = TrainingLoop(tf.distribute.get_strategy(), model, create_optimizer("adamw", 1e-4, 1000, 10),
                    PretrainingTask())
iterator = iter(tf.data.Dataset.from_tensors(data).repeat())
for _ in range(3):
    loop.train_step(iterator)
times = []
for _ in range(steps):
    start = time.perf_counter()
    loop.train_step(iterator)
    times.append(time.perf_counter() - start)
print(json.dumps({"median_s": statistics.median(times), "min_s": min(times),
                  "parameters": model.count_params()}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="bert_tiny")
    parser.add_argument("--vocab_sizes", default="30522,8000")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--predictions", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    results = {}
    for vocab in map(int, args.vocab_sizes.split(",")):
        run = subprocess.run([sys.executable, "-c", CHILD, args.preset, str(vocab),
                              str(args.batch), str(args.seq), str(args.predictions),
                              str(args.steps)], capture_output=True, text=True, env=env)
        if run.returncode:
            raise SystemExit(f"error: benchmark child failed:\n{run.stderr[-3000:]}")
        results[vocab] = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"vocab {vocab:6d}: {results[vocab]['median_s']:.3f} s/step (median of "
              f"{args.steps}; min {results[vocab]['min_s']:.3f}), "
              f"{results[vocab]['parameters']:,} parameters", flush=True)
    sizes = sorted(results)
    report = {"command": "bench/vocab_step_time.py " + " ".join(sys.argv[1:]),
              "preset": args.preset, "batch": args.batch, "seq": args.seq,
              "predictions": args.predictions, "cpus": os.cpu_count(),
              "results": {str(k): v for k, v in results.items()},
              "ratio_largest_to_smallest": results[sizes[-1]]["median_s"]
              / results[sizes[0]]["median_s"]}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "vocab_step_time.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"step time ratio {sizes[-1]} / {sizes[0]} tokens: "
          f"{report['ratio_largest_to_smallest']:.2f}x")


if __name__ == "__main__":
    main()
