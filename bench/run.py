"""Speed against keras-hub, Model Garden and HF transformers (torch), measured in one run.

    .venv/bin/python bench/run.py --suite all            # train, infer, data, tflite (~40 min)
    .venv/bin/python bench/run.py --suite train --repeats 1
    .venv/bin/python bench/run.py --suite serve          # raw text -> prediction (needs make data)

Every variant runs in a fresh process (bench/perf/child.py): warm-up calls excluded, then the
median of --steps timed steps. Each run measures this machine's matmul peak (2048³, fp32 and
bf16), so the results are ratios against peers measured in the same run, and model FLOP
utilisation (MFU) = model FLOPs per step / step time / peak of the step's compute dtype, with
model FLOPs = 6·N·tokens (N: the encoder's matmul weights) + 3·(attention QKᵀ and PV,
2·2·B·T²·H per layer) + 3·(MLM head on the masked positions: 2·B·P·(H² + H·V)) + pooler/NSP
(bench/perf/common.py). With --repeats R every variant runs R times in rounds (A B C, A B C)
and its fastest median counts, for every library alike: the machine is shared and noisy.

Writes bench/results/perf.json, perf.md and perf.png, and ends with one line per target:
`TARGET <name>: <measured ratio> (target <t>) PASS|MISS`. The serve suite (bench/perf/serve.py,
not part of `all`: it reads the `make data` sets) writes perf_serve.{json,md}.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.perf.common import MODELS, PREDICTIONS, SEQ, forward_flops, train_flops  # noqa: E402

PEERS = ("keras_hub", "model_garden", "hf_torch")
LIBRARY = {"ours": "keras_bert_x", "ours_loop10": "keras_bert_x, --steps_per_loop 10",
           "ours_savedmodel": "keras_bert_x SavedModel", "keras_hub": "keras-hub",
           "model_garden": "Model Garden", "hf_torch": "HF transformers (torch)",
           "ours_text": "keras_bert_x SavedModel (text in)",
           "keras_hub_text": "keras-hub preprocessor + classifier",
           "ours_bucketed": "keras_bert_x SavedModel", "ours_fixed": "keras_bert_x SavedModel",
           "hf": "HF transformers (torch)", "keras_hub_128": "keras-hub"}
# Targets whose measured ratio must stay at or under the goal (besides names saying "lower").
LOWER_IS_BETTER = {"serve_b1_latency_vs_hf"}
DTYPES = {"float32": "fp32", "mixed_bfloat16": "bf16"}


def variants(suite, steps, quick=False):
    """The child specs of a suite, in the order they run."""
    out = []
    if suite == "train":
        for dtype in DTYPES:
            for impl in ("ours", "ours_loop10", *PEERS):
                spec = dict(suite="train", impl=impl, size="bert_mini", batch=8, dtype=dtype,
                            steps=steps)
                if impl == "ours_loop10":
                    spec.update(impl="ours", steps_per_loop=10, name="ours_loop10")
                out.append(spec)
        for impl in ("ours", *PEERS):  # ~4 s a step here: one process each, not --repeats
            out.append(dict(suite="train", impl=impl, size="bert_base", batch=8,
                            dtype="float32", steps=steps, repeats=1))
    elif suite == "infer":
        for batch in (1, 8, 32):
            for impl in ("ours", "ours_savedmodel", *PEERS):
                out.append(dict(suite="infer", impl=impl, size="bert_mini", batch=batch,
                                dtype="float32", steps=steps))
        for impl in ("ours", *PEERS):
            out.append(dict(suite="infer", impl=impl, size="bert_mini", batch=8,
                            dtype="mixed_bfloat16", steps=steps))
        for impl in ("ours_text", "keras_hub_text"):
            out.append(dict(suite="infer", impl=impl, size="bert_mini", batch=8,
                            dtype="float32", steps=steps))
    elif suite == "tflite":
        from bench.perf.tflite import FORMS

        out = [dict(suite="tflite", impl=form, steps=max(steps, 50)) for form in FORMS]
    elif suite == "data":
        out = [dict(suite="dynamic_masking", impl="ours", batch=8, steps=200)]
    elif suite == "serve":
        from bench.perf.serve import specs

        out = specs(quick)
    return out


def child(spec, work):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT, KERAS_BACKEND="tensorflow")
    spec = dict(spec, work=work)
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "bench.perf.child", json.dumps(spec)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"error: benchmark child {json.dumps(spec)} failed:\n"
                         f"{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = time.time() - start
    return result


def key(spec):
    parts = [spec["suite"], spec.get("name", spec["impl"]), spec.get("task", ""),
             spec.get("size", ""), str(spec.get("batch", "")), spec.get("dtype", "")]
    return "/".join(p for p in parts if p)


def measure(specs, repeats, work, log):
    """{key: the run with the fastest median of `repeats` fresh processes}, in rounds."""
    best = {}
    for round_ in range(repeats):
        for spec in specs:
            if round_ >= spec.get("repeats", repeats):
                continue
            result = child(spec, work)
            k = key(spec)
            shown = (f"{result['median_s'] * 1e3:.1f} ms" if "median_s" in result
                     else f"{result['examples_per_s']:.0f} examples/s")
            log(f"  [{round_ + 1}/{repeats}] {k}: {shown}")
            result["spec"] = spec
            # Seconds per step, or (the input pipeline) examples/s: the better run counts.
            if k not in best or (result["median_s"] < best[k]["median_s"] if "median_s" in result
                                 else result["examples_per_s"] > best[k]["examples_per_s"]):
                best[k] = result
    return best


def train_table(results, peak):
    rows = []
    for k, r in results.items():
        s = r["spec"]
        if s["suite"] != "train":
            continue
        # HF's BertForPreTraining scores every position, not the 20 masked ones: its MFU
        # counts the work it does (its seq/s is what a user gets either way).
        predictions = SEQ if s["impl"] == "hf_torch" else PREDICTIONS
        flops = train_flops(MODELS[s["size"]], s["batch"], predictions=predictions)
        peak_gflops = peak["bfloat16" if s["dtype"] == "mixed_bfloat16" else "float32"]
        rows.append(dict(key=k, library=s.get("name", s["impl"]), size=s["size"],
                         batch=s["batch"], dtype=DTYPES[s["dtype"]],
                         ms=r["median_s"] * 1e3, seq_per_s=s["batch"] / r["median_s"],
                         mfu=flops / r["median_s"] / (peak_gflops * 1e9)))
    return rows


def infer_table(results):
    rows = []
    for k, r in results.items():
        s = r["spec"]
        if s["suite"] != "infer":
            continue
        text = s["impl"].endswith("_text")
        rows.append(dict(key=k, library=s["impl"], batch=s["batch"], dtype=DTYPES[s["dtype"]],
                         what="text -> label" if text else "encoder forward",
                         ms=r["median_s"] * 1e3, seq_per_s=s["batch"] / r["median_s"],
                         gflops=None if text else
                         forward_flops(MODELS[s["size"]], s["batch"]) / r["median_s"] / 1e9))
    return rows


def serve_table(results):
    """Rows of the serve suite; `agreement`: share of predictions (labels, answer texts) equal to
    HF's on the same requests."""
    rows = []
    for k, r in results.items():
        s = r["spec"]
        hf = results.get(key(dict(s, name="hf", impl="hf")), {}).get("predictions")
        same = [a == b for a, b in zip(r["predictions"], hf or [])]
        rows.append(dict(key=k, library=s["name"], task=s["task"], batch=s["batch"],
                         padding=r["padding"], ms=r["median_s"] * 1e3,
                         seq_per_s=s["batch"] / r["median_s"],
                         tokens_per_s=r["tokens_per_request"] / r["median_s"],
                         agreement=sum(same) / len(same) if same else None))
    return rows


def rate(rows, library, **match):
    for row in rows:
        if row["library"] == library and all(row[k] == v for k, v in match.items()):
            return row["seq_per_s"]
    return None


def targets(report):
    """[(name, measured, target)] for the issue's targets whose rows this run measured."""
    out = []
    train, infer = report.get("train", []), report.get("infer", [])

    def ratio(name, rows, goal, ours, peers, **match):
        mine = rate(rows, ours, **match)
        theirs = [rate(rows, peer, **match) for peer in peers]
        if mine and all(theirs):
            out.append((name, mine / max(theirs), goal))

    mini = dict(size="bert_mini", batch=8)
    ratio("train fp32 vs faster of keras-hub/Model Garden", train, 1.3, "ours",
          ["keras_hub", "model_garden"], dtype="fp32", **mini)
    ratio("train bf16 vs Model Garden bf16", train, 1.3, "ours", ["model_garden"],
          dtype="bf16", **mini)
    for row in train:
        if row["library"] == "ours" and row["dtype"] == "fp32" and row["size"] == "bert_mini":
            out.append(("train fp32 MFU (share of the matmul peak)", row["mfu"], 0.65))
    for dtype in ("fp32", "bf16"):
        for peer in ("keras_hub", "model_garden"):
            ratio(f"encoder forward {dtype} batch 8 vs {LIBRARY[peer]}", infer, 1.2, "ours",
                  [peer], batch=8, dtype=dtype)
    if "data" in report:
        out.append(("create_pretraining_data vs Model Garden",
                    report["data"]["create_pretraining_data_speedup"], 10.0))
    serve = report.get("serve", [])
    # Batch 1: latency ratio = the inverse of the requests/s ratio.
    ratio("serve_b1_latency_vs_hf", serve, 0.7, "hf", ["ours_bucketed"], task="mr", batch=1)
    ratio("serve_b32_throughput_vs_hf", serve, 1.5, "ours_bucketed", ["hf"], task="mr", batch=32)
    ratio("serve_b32_vs_fixed", serve, 3.0, "ours_bucketed", ["ours_fixed"], task="mr", batch=32)
    if "tflite" in report:
        forms = {row["form"]: row for row in report["tflite"]}
        out.append(("TFLite dynamic int8 latency / fp32 SavedModel (lower is better)",
                    forms["dynamic"]["ms"] / forms["savedmodel"]["ms"], 0.6))
    return out


def run_data(work, log):
    from bench.create_pretraining_data import MODEL_GARDEN, OURS, run
    from keras_bert_x.data.corpus import bundled_documents, write_documents
    from keras_bert_x.demo.stages import minilm_dir

    documents = bundled_documents()
    corpus = write_documents(os.path.join(work, "brown.txt"), documents)
    vocab = os.path.join(minilm_dir(), "vocab.txt")
    common = [vocab, "10", "12345"]  # bench/create_pretraining_data.py's flags
    ours = run(OURS, [corpus, os.path.join(work, "ours.tfrecord"), *common])
    theirs = run(MODEL_GARDEN, [corpus, os.path.join(work, "mg.tfrecord"), *common])
    n = len(documents)
    log(f"  create_pretraining_data: ours {n / ours['seconds']:.1f} docs/s, Model Garden "
        f"{n / theirs['seconds']:.1f} docs/s")
    return {"documents": n, "dupe_factor": 10, "ours_docs_per_s": n / ours["seconds"],
            "model_garden_docs_per_s": n / theirs["seconds"],
            "create_pretraining_data_speedup": theirs["seconds"] / ours["seconds"]}


def markdown(report):
    lines = [f"Machine: {report['machine']}; matmul peak {report['peak_gflops']['float32']:.0f} "
             f"GFLOP/s fp32, {report['peak_gflops']['bfloat16']:.0f} bf16. Command: "
             f"`{report['command']}`.", ""]
    if report.get("train"):
        lines += ["Training step (MLM on 20 positions + NSP, AdamW, clip 1.0, seq 128). MFU = "
                  "model FLOPs per step / step time / matmul peak of the step's dtype; model "
                  "FLOPs = 6·N·tokens (N: encoder matmul weights) + 3·(2·2·B·T²·H·L attention "
                  "+ 2·B·P·(H² + H·V) MLM head + pooler and NSP); 28.5 GFLOP for bert_mini B8 "
                  "(HF: P = 128, the positions its head scores).", "",
                  "| model | dtype | library | ms/step | seq/s | MFU |", "|---|---|---|---|---|---|"]
        for r in report["train"]:
            lines.append(f"| {r['size']} B{r['batch']} | {r['dtype']} | {LIBRARY[r['library']]}"
                         f" | {r['ms']:.0f} | {r['seq_per_s']:.1f} | {r['mfu']:.0%} |")
        lines.append("")
    if report.get("infer"):
        lines += ["Inference (bert_mini, seq 128):", "",
                  "| what | batch | dtype | library | ms | seq/s | GFLOP/s |",
                  "|---|---|---|---|---|---|---|"]
        for r in report["infer"]:
            g = f"{r['gflops']:.0f}" if r["gflops"] else ""
            lines.append(f"| {r['what']} | {r['batch']} | {r['dtype']} | {LIBRARY[r['library']]}"
                         f" | {r['ms']:.1f} | {r['seq_per_s']:.0f} | {g} |")
        lines.append("")
    if report.get("data"):
        d = report["data"]
        lines += [f"Data: create_pretraining_data on {d['documents']} Brown documents "
                  f"(dupe_factor {d['dupe_factor']}): ours {d['ours_docs_per_s']:.1f} docs/s, "
                  f"Model Garden {d['model_garden_docs_per_s']:.1f} "
                  f"({d['create_pretraining_data_speedup']:.1f}x). Dynamic masking: "
                  f"{d['dynamic_masking_examples_per_s']:.0f} examples/s vs "
                  f"{d['train_consumes_examples_per_s']:.0f} consumed by the bert_mini fp32 "
                  "step.", ""]
    if report.get("tflite"):
        lines += ["Export, batch 1, seq 128 (MiniLM-L6 classifier):", "",
                  "| form | MB | ms |", "|---|---|---|"]
        for r in report["tflite"]:
            lines.append(f"| {r['form']} | {r['mb']:.1f} | {r['ms']:.1f} |")
        lines.append("")
    if report.get("serve"):
        fixed = "" if report.get("serve_length_buckets") else (
            " The export had no length_buckets option: both of ours are fixed-length.")
        lines += ["Serving, raw text -> prediction, MiniLM-L6 (random heads, the same weights in "
                  "every library; bench/perf/serve.py): MR test sentences (up to 128 tokens) -> "
                  "label; SQuAD v1.1 dev question + context -> answer (windows of 384; ours 128 "
                  "apart, HF's overlapping by 128). ms: median per request of `batch` sentences "
                  "or questions; real tokens: the inputs' non-padding WordPiece tokens, counted "
                  "once with our tokenizer; agreement: predictions equal to HF's." + fixed, "",
                  "| data | batch | library | padded to | ms | requests/s | real tokens/s | "
                  "agrees with HF |", "|---|---|---|---|---|---|---|---|"]
        for r in report["serve"]:
            agree = "" if r["agreement"] is None else f"{r['agreement']:.1%}"
            lines.append(f"| {r['task']} | {r['batch']} | {LIBRARY[r['library']]} | "
                         f"{r['padding']} | {r['ms']:.1f} | {r['seq_per_s']:.1f} | "
                         f"{r['tokens_per_s']:.0f} | {agree} |")
        lines.append("")
    lines += ["Targets:", ""] + [f"- {line}" for line in report["target_lines"]]
    return "\n".join(lines) + "\n"


def chart(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = []
    for r in report.get("train", []):
        groups.append((f"train {r['size']} {r['dtype']}", r["library"], r["seq_per_s"]))
    for r in report.get("infer", []):
        if r["what"] == "encoder forward" and r["batch"] == 8:
            groups.append((f"forward B8 {r['dtype']}", r["library"], r["seq_per_s"]))
    if not groups:
        return
    names = list(dict.fromkeys(g for g, _, _ in groups))
    libraries = list(dict.fromkeys(lib for _, lib, _ in groups))
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.6))
    axes = axes if len(names) > 1 else [axes]
    for ax, name in zip(axes, names):
        # Normalised to the fastest peer of each group: > 1 is ahead of all of them.
        values = {lib: v for g, lib, v in groups if g == name}
        peer = max(v for lib, v in values.items() if not lib.startswith("ours")) or 1.0
        libs = [lib for lib in libraries if lib in values]
        ax.bar(range(len(libs)), [values[lib] / peer for lib in libs],
               color=["C0" if lib.startswith("ours") else "C7" for lib in libs])
        ax.set_xticks(range(len(libs)), [LIBRARY[lib] for lib in libs], rotation=60,
                      ha="right", fontsize=7)
        ax.axhline(1.0, color="k", lw=0.5)
        ax.set_title(name, fontsize=8)
    axes[0].set_ylabel("seq/s ÷ fastest peer")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write(report, args, started):
    """perf[_suite].json, .md and .png; called after every suite, so a later failure keeps the
    earlier suites' results."""
    lower = lambda name: "lower" in name or name in LOWER_IS_BETTER  # noqa: E731
    report["target_lines"] = [
        f"TARGET {name}: {value:.2f} (target {'<=' if lower(name) else '>='} {goal}) "
        f"{'PASS' if (value <= goal if lower(name) else value >= goal) else 'MISS'}"
        for name, value, goal in targets(report)]
    report["minutes"] = (time.time() - started) / 60
    os.makedirs(args.output_dir, exist_ok=True)
    name = "perf" if args.suite == "all" else f"perf_{args.suite}"
    with open(os.path.join(args.output_dir, name + ".json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(args.output_dir, name + ".md"), "w") as f:
        f.write(markdown(report))
    chart(report, os.path.join(args.output_dir, name + ".png"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="all", choices=["train", "infer", "data", "tflite",
                                                          "serve", "all"])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--repeats", type=int, default=2, help="fresh processes per variant")
    parser.add_argument("--output_dir", default=os.path.join(ROOT, "bench", "results"))
    parser.add_argument("--quick", action="store_true",
                        help="bert_mini rows of ours, keras-hub and Model Garden only; serve: "
                             "every variant on a few requests, one process each (a smoke test "
                             "of the suite, not a measurement)")
    args = parser.parse_args()
    suites = ["train", "infer", "data", "tflite"] if args.suite == "all" else [args.suite]
    started = time.time()
    log = lambda message: print(message, flush=True)  # noqa: E731
    report = {"command": "bench/run.py " + " ".join(sys.argv[1:]),
              "machine": f"{platform.processor() or platform.machine()}, "
                         f"{os.cpu_count()} CPUs, {platform.platform()}",
              "steps": args.steps, "repeats": args.repeats, "seq": SEQ,
              "predictions": PREDICTIONS}
    with tempfile.TemporaryDirectory() as work:
        peak = {d: child(dict(suite="peak", impl="matmul", dtype=d, steps=10), work)["gflops"]
                for d in ("float32", "bfloat16")}
        report["peak_gflops"] = peak
        log(f"matmul peak: {peak['float32']:.0f} GFLOP/s fp32, {peak['bfloat16']:.0f} bf16")
        for suite in suites:
            log(f"suite {suite}")
            if suite in ("infer", "tflite", "serve"):
                prepared = child(dict(suite="prepare", impl=suite, steps=0), work)
                log(f"  prepared in {prepared['process_s']:.0f} s")
            specs = variants(suite, args.steps, args.quick)
            if args.quick and suite != "serve":
                specs = [s for s in specs if s.get("size", "bert_mini") == "bert_mini"
                         and s.get("name", s["impl"]) in ("ours", "keras_hub", "model_garden")
                         and s.get("batch", 8) == 8 and s.get("dtype") != "mixed_bfloat16"
                         ] or specs
            results = measure(specs, args.repeats, work, log)
            report.setdefault("raw", {}).update(results)
            if suite == "train":
                report["train"] = train_table(results, peak)
            elif suite == "infer":
                report["infer"] = infer_table(results)
            elif suite == "serve":
                report["serve"] = serve_table(results)
                report["serve_length_buckets"] = prepared["length_buckets"]
                for r in results.values():  # in the table as `agreement`; too long to keep
                    r.pop("predictions")
            elif suite == "tflite":
                report["tflite"] = [dict(form=r["spec"]["impl"], ms=r["median_s"] * 1e3,
                                         mb=r["bytes"] / 1e6) for r in results.values()]
            else:
                data = run_data(work, log)
                masking = next(iter(results.values()))
                data["dynamic_masking_examples_per_s"] = masking["examples_per_s"]
                step = report.get("train") or train_table(measure(
                    [dict(suite="train", impl="ours", size="bert_mini", batch=8,
                          dtype="float32", steps=args.steps)], 1, work, log), peak)
                data["train_consumes_examples_per_s"] = rate(step, "ours", dtype="fp32",
                                                             size="bert_mini", batch=8)
                report["data"] = data
            write(report, args, started)
    print(markdown(report))


if __name__ == "__main__":
    main()
