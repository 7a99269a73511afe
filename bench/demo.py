"""`make demo`'s program timed as a user meets it: a first run from nothing, then a second run
that finds every stage done. Writes bench/results/demo.json (per-stage seconds, both wall
times, the parity table and the fine-tuned accuracy) and copies the report (demo_report.md,
plots in demo/) beside it.

    .venv/bin/python bench/demo.py [--output_dir /tmp/demo_bench]   # the program, .venv made
    .venv/bin/python bench/demo.py --clean_clone   # `make demo` twice in a fresh clone of HEAD
                                                   # (the first creates its .venv)

Run it alone on the machine (it times a 2-core CPU) from a checkout nobody edits meanwhile.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
STAGES = ("vocab", "data", "pretrain", "finetune", "export", "parity", "report")


def run_demo(output_dir):
    start = time.time()
    run = subprocess.run([sys.executable, "-m", "keras_bert_x.demo",
                          f"--output_dir={output_dir}", "--noprogress"], cwd=ROOT,
                         capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"error: the demo failed:\n{run.stderr[-3000:]}")
    return time.time() - start, run.stdout


def run_make_demo(clone):
    start = time.time()
    run = subprocess.run(["make", "demo", "DEMO_ARGS=--noprogress"], cwd=clone,
                         capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"error: make demo failed:\n{run.stderr[-3000:]}")
    return time.time() - start, run.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output_dir", default="/tmp/demo_bench")
    parser.add_argument("--clean_clone", action="store_true",
                        help="time `make demo` in a fresh clone (venv creation included)")
    args = parser.parse_args()
    if args.clean_clone:
        clone = tempfile.mkdtemp(prefix="demo_clone-")
        subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
        args.output_dir = os.path.join(clone, "demo_out")
        first, log = run_make_demo(clone)
        second, second_log = run_make_demo(clone)
    else:
        args.output_dir = os.path.abspath(args.output_dir)
        shutil.rmtree(args.output_dir, ignore_errors=True)
        first, log = run_demo(args.output_dir)
        second, second_log = run_demo(args.output_dir)
    results = {}
    for stage in STAGES:
        with open(os.path.join(args.output_dir, stage, "result.json"), encoding="utf-8") as f:
            results[stage] = json.load(f)
    finetune = results["finetune"]["evaluations"][-1]
    keras = next(f for f in results["parity"]["forms"] if f["form"] == "keras")
    out = {"command": "make demo in a fresh clone (creates .venv)" if args.clean_clone
           else "python -m keras_bert_x.demo (.venv made)",
           "first_run_seconds": round(first, 1), "second_run_seconds": round(second, 1),
           "stage_seconds": {s: results[s]["seconds"] for s in STAGES},
           "stages_kept_on_second_run": second_log.count("done before"),
           "pretrain_eval": results["pretrain"]["eval"],
           "finetune_dev_accuracy": finetune["accuracy"],
           "test_accuracy_keras": keras["accuracy"],
           "raw_text_serving": results["parity"]["raw_text"],
           "test_examples": results["parity"]["test_examples"],
           "parity": results["parity"]["forms"], "cpu_count": os.cpu_count(),
           "targets": [{"name": "first run <= 15 min", "measured": round(first / 60, 2),
                        "pass": first <= 15 * 60},
                       {"name": "every stage kept on the second run",
                        "measured": second_log.count("done before"),
                        "pass": second_log.count("done before") == len(STAGES)},
                       {"name": "second run < 1 min", "measured": round(second, 1),
                        "pass": second < 60}]}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "demo_clean_clone.json" if args.clean_clone
                           else "demo.json"), "w") as f:
        json.dump(out, f, indent=2)
    # The report and its plots, for the record (links rewritten to the copies).
    plots = os.path.join(RESULTS, "demo")
    shutil.rmtree(plots, ignore_errors=True)
    os.makedirs(plots)
    for name in os.listdir(os.path.join(args.output_dir, "report")):
        if name.endswith(".png"):
            shutil.copyfile(os.path.join(args.output_dir, "report", name),
                            os.path.join(plots, name))
    with open(os.path.join(args.output_dir, "report.md"), encoding="utf-8") as f:
        report = f.read().replace("](report/", "](demo/")
    with open(os.path.join(RESULTS, "demo_report.md"), "w", encoding="utf-8") as f:
        f.write(report)
    print(log)
    for target in out["targets"]:
        verdict = "PASS" if target["pass"] else "MISS"
        print(f"TARGET {target['name']}: {target['measured']} {verdict}")


if __name__ == "__main__":
    main()
