"""Every exported form of a fine-tuned MR sentiment classifier, against the Keras model.

    make data                                   # once: the MR splits
    .venv/bin/python bench/export_mr.py [--model_dir runs/mr]

Without --model_dir, MiniLM-L6 is fine-tuned on MR first, exactly as `bench/finetune_real.py`
does (3 epochs, seq 64, seed 42; ~15 min), and its `final/` model is used (the last epoch: no
selection on the test split). Then: the TF Serving SavedModel (`export/savedmodel.py`), TFLite
files in each quantisation mode (`export/tflite.py`; int8 calibrated on 200 training
sentences), and the parity report (`export/verify.py`) on the whole MR test split at
max_seq_length 128: max abs logit difference, agreement, accuracy, size, batch-1 latency. The
tokenizer-in-graph TFLite files (fp32 and dynamic int8) read the raw test sentences. An
ablation converts int8 files that keep fewer ops in float than our recipe. Ends with one line
per target of the export issue. Writes bench/results/export_mr.json. Run it from a
checkout nobody edits meanwhile (TensorFlow reads a function's source when it traces it).
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
DATA = os.path.join(os.path.expanduser("~"), ".cache", "keras_bert_x", "data", "mr")
LENGTH = 128
MODES = ("none", "float16", "dynamic", "int8")


def command(script, *args):
    start = time.time()
    run = subprocess.run([sys.executable, os.path.join(ROOT, "export", script), *args],
                         capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if run.returncode:
        raise SystemExit(f"error: {script} {' '.join(args)}:\n{run.stderr[-3000:]}")
    return time.time() - start


def text_forms(model_dir, files, test, repeats=50):
    """Accuracy, agreement with Keras and latency of the tokenizer-in-graph TFLite files."""
    import numpy as np

    from keras_bert_x.data.tasks.classification import read_classification
    from keras_bert_x.export.savedmodel import load_model, make_tokenizer
    from keras_bert_x.export.tflite_runner import TFLiteModel
    from keras_bert_x.export.verify import keras_logits

    model, _ = load_model(model_dir)
    examples = read_classification(test, "sentence", "label")
    features = make_tokenizer(model, LENGTH)(examples.texts)
    reference = keras_logits(model, {k: v.numpy() for k, v in features.items()})["logits"]
    truth = np.array([model.labels.index(y) for y in examples.labels])
    rows = []
    for path in files:
        lite = TFLiteModel(path)
        logits, times = [], []
        for text in examples.texts:
            start = time.perf_counter()
            logits.append(lite(text=np.array([text], dtype=object))["logits"][0])
            times.append(time.perf_counter() - start)
        predictions = np.argmax(logits, -1)
        rows.append({"form": f"tflite {os.path.basename(path)} (text in)",
                     "size_mb": os.path.getsize(path) / 1e6,
                     "max_abs_diff": float(np.abs(np.array(logits) - reference).max()),
                     "agreement": float(np.mean(predictions == reference.argmax(-1))),
                     "accuracy": float(np.mean(predictions == truth)),
                     "latency_ms": 1000 * float(np.median(times[:repeats]))})
    return rows


# Which ops stay float32 in each int8 variant of the ablation (the last adds, in our recipe,
# GELU, tanh and the feed-forward output dense: `keras_bert_x.export.tflite.FLOAT_OPS`).
LAYER_NORM = ["SUB", "MUL", "MEAN", "SQUARED_DIFFERENCE", "RSQRT"]
ABLATION = {"every op int8": [],
            "softmax and every add (the mask's, residuals) in float": ["SOFTMAX", "ADD"],
            "+ LayerNorm in float": ["SOFTMAX", "ADD", *LAYER_NORM],
            "+ both attention matmuls in float": ["SOFTMAX", "ADD", *LAYER_NORM, "BATCH_MATMUL"]}


def int8_ablation(model_dir, work, representative, test):
    """Test accuracy and agreement with Keras of int8 files that keep fewer ops in float."""
    import numpy as np

    from keras_bert_x.data.tasks.classification import read_classification
    from keras_bert_x.export.savedmodel import load_model, make_tokenizer
    from keras_bert_x.export.tflite import convert_to_tflite
    from keras_bert_x.export.tflite_runner import TFLiteModel
    from keras_bert_x.export.verify import keras_logits

    model, _ = load_model(model_dir)
    examples = read_classification(test, "sentence", "label")
    features = {k: v.numpy() for k, v in make_tokenizer(model, LENGTH)(examples.texts).items()}
    reference = keras_logits(model, features)["logits"].argmax(-1)
    truth = np.array([model.labels.index(y) for y in examples.labels])
    rows = []
    for name, float_ops in ABLATION.items():
        path = os.path.join(work, "ablation.tflite")
        convert_to_tflite(model_dir, path, quantize="int8", max_seq_length=LENGTH,
                          representative_data=representative, overwrite=True,
                          int8_float_ops=float_ops)
        predictions = TFLiteModel(path).predict(features)["logits"].argmax(-1)
        rows.append({"variant": name, "float_ops": float_ops,
                     "accuracy": float(np.mean(predictions == truth)),
                     "agreement": float(np.mean(predictions == reference))})
        print(f"int8 ablation: {name}: accuracy {100 * rows[-1]['accuracy']:.2f}%", flush=True)
    return rows


def int8_share(path):
    """Multiply-accumulates of the dense layers and attention matmuls in a TFLite file, and the
    share of them that run on int8 inputs."""
    import numpy as np

    from keras_bert_x.export.tflite_runner import TFLiteModel

    lite = TFLiteModel(path)
    # Token-ids files take any length: run one call at 128 so that the shapes read are its.
    lite(**{n: np.zeros((1, 128), np.int32) for n in lite.input_names})
    interpreter = lite.interpreter
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    total = int8 = 0
    for op in interpreter._get_ops_details():
        if op["op_name"] not in ("FULLY_CONNECTED", "BATCH_MATMUL"):
            continue
        a = tensors[op["inputs"][0]]
        macs = int(np.prod(tensors[op["outputs"][0]]["shape"])) * int(a["shape"][-1])
        total += macs
        int8 += macs if a["dtype"] == np.int8 else 0
    return {"macs": total, "int8_macs": int8, "int8_share": int8 / total}


def targets(rows):
    by = {r["form"]: r for r in rows}
    keras = by["keras"]
    checks = [("savedmodel_max_abs_diff", by["saved_model"]["max_abs_diff"], 1e-5, "<="),
              ("tflite_fp32_max_abs_diff", by["tflite none.tflite"]["max_abs_diff"], 1e-4, "<=")]
    for mode in ("float16", "dynamic"):
        row = by[f"tflite {mode}.tflite"]
        checks += [(f"tflite_{mode}_agreement", row["agreement"], 0.99, ">="),
                   (f"tflite_{mode}_accuracy_loss_points",
                    100 * (keras["accuracy"] - row["accuracy"]), 0.5, "<=")]
    checks.append(("tflite_int8_accuracy_loss_points",
                   100 * (keras["accuracy"] - by["tflite int8.tflite"]["accuracy"]), 1.0, "<="))
    return [{"name": n, "measured": v, "target": t,
             "pass": v <= t if op == "<=" else v >= t} for n, v, t, op in checks]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_dir", help="a fine-tuned MR classifier (default: fine-tune)")
    parser.add_argument("--work_dir", help="where the exports go (default: a temporary folder)")
    args = parser.parse_args()
    train, test = os.path.join(DATA, "train.tsv"), os.path.join(DATA, "test.tsv")
    if not os.path.isfile(test):
        raise SystemExit(f"error: {test}: not found; run `make data` first")
    work = args.work_dir or tempfile.mkdtemp(prefix="export_mr-")
    model_dir = args.model_dir
    if model_dir is None:
        from bench.finetune_real import run_ours

        run_ours("mr", train, test, work, seed=42)
        model_dir = os.path.join(work, "ours_mr_42", "final")
    timings = {"savedmodel": command("savedmodel.py", f"--model_dir={model_dir}",
                                     f"--export_dir={work}/models/mr", "--version=1",
                                     f"--max_seq_length={LENGTH}")}
    representative = os.path.join(work, "representative.txt")
    with open(train, encoding="utf-8") as f, open(representative, "w", encoding="utf-8") as out:
        out.writelines(line.split("\t")[0] + "\n" for line in list(f)[1:201])
    for mode in MODES:
        timings[f"tflite_{mode}"] = command(
            "tflite.py", f"--model_dir={model_dir}", f"--output={work}/{mode}.tflite",
            f"--quantize={mode}", f"--representative_data={representative}",
            f"--max_seq_length={LENGTH}", "--overwrite")
    text_files = []
    for mode in ("none", "dynamic"):
        path = f"{work}/text_{mode}.tflite"
        timings[f"tflite_text_{mode}"] = command(
            "tflite.py", f"--model_dir={model_dir}", f"--output={path}", f"--quantize={mode}",
            "--with_tokenizer", f"--max_seq_length={LENGTH}", "--overwrite")
        text_files.append(path)
    command("verify.py", f"--model_dir={model_dir}", f"--eval_file={test}",
            f"--saved_model={work}/models/mr/1", *[f"--tflite={work}/{m}.tflite" for m in MODES],
            f"--output_dir={work}/parity", f"--max_seq_length={LENGTH}",
            "--text_column=sentence", "--label_column=label")
    with open(os.path.join(work, "parity", "parity.json")) as f:
        parity = json.load(f)
    rows = parity["forms"] + text_forms(model_dir, text_files, test)
    checks = targets(rows)
    ablation = int8_ablation(model_dir, work, representative, test)
    share = int8_share(f"{work}/int8.tflite")
    print(f"int8 file: {100 * share['int8_share']:.1f}% of the matmul MACs on int8 inputs")
    result = {"model_dir": model_dir, "test_examples": parity["examples"],
              "max_seq_length": LENGTH, "forms": rows, "int8_ablation": ablation, "int8_macs": share,
              "export_seconds": {k: round(v, 1) for k, v in timings.items()}, "targets": checks}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "export_mr.json"), "w") as f:
        json.dump(result, f, indent=2)
    from keras_bert_x.export.verify import markdown_table

    print(markdown_table(rows, "accuracy"))
    for c in checks:
        print(f"TARGET {c['name']}: {c['measured']:.4g} (target {c['target']}) "
              f"{'PASS' if c['pass'] else 'MISS'}")


if __name__ == "__main__":
    main()
