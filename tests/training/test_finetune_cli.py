"""trainers/finetune.py: each task trains and its saved model predicts labels, entities and
answers; mirrored equals one device; bad input ends with one error line."""

import json
import os
import re

import numpy as np
import pytest

import keras_bert_x as kbx
from tests.training.conftest import run_script

NAMES = ["John", "Mary", "Peter", "Anna", "Paul", "Kate"]
CITIES = ["Paris", "London", "Berlin", "Madrid", "Rome", "Vienna"]
GOOD, BAD = ["good", "great", "fine", "nice"], ["bad", "awful", "poor", "dull"]


@pytest.fixture(scope="module")
def init_dir(tmp_path_factory, vocab_file):
    """A small random encoder with MiniLM's vocabulary and no dropout, in our format."""
    import keras

    keras.utils.set_random_seed(0)
    config = kbx.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=64,
                            max_position_embeddings=64, hidden_dropout_prob=0.0,
                            attention_probs_dropout_prob=0.0)
    encoder = kbx.BertEncoder(config)
    encoder.vocabulary = kbx.BertTokenizer(vocab_file).vocabulary
    path = tmp_path_factory.mktemp("init") / "encoder"
    encoder.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def task_files(tmp_path_factory):
    """Small, learnable data for each task: (train, eval) paths."""
    out = tmp_path_factory.mktemp("tasks")
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", 200), ("eval", 40)):
        rows = ["text\tlabel"]
        for _ in range(n):
            label = int(rng.integers(0, 2))
            word = rng.choice(GOOD if label else BAD)
            rows.append(f"the film was {word} and long\t{'pos' if label else 'neg'}")
        (out / f"cls_{split}.tsv").write_text("\n".join(rows) + "\n")
        (out / f"reg_{split}.tsv").write_text("\n".join(
            [rows[0]] + [f"{r.split(chr(9))[0]}\t{1.0 if r.endswith('pos') else -1.0}"
                         for r in rows[1:]]) + "\n")
        sentences = []
        for _ in range(n):
            name, city = rng.choice(NAMES), rng.choice(CITIES)
            sentences.append(f"{name}\tB-PER\nlives\tO\nin\tO\n{city}\tB-LOC\n.\tO")
        (out / f"ner_{split}.txt").write_text("\n\n".join(sentences) + "\n")
        qas, contexts = [], []
        for i in range(n // 2):
            name, city = rng.choice(NAMES), rng.choice(CITIES)
            context = f"{name} was born in {city} and works there."
            contexts.append({"context": context, "qas": [{
                "id": f"{split}{i}", "question": f"Where was {name} born?",
                "answers": [{"text": city, "answer_start": context.index(city)}]}]})
        (out / f"squad_{split}.json").write_text(json.dumps(
            {"version": "1.1", "data": [{"title": "t", "paragraphs": contexts}]}))
    for task, prefix, suffix in (("classification", "cls", "tsv"), ("regression", "reg", "tsv"),
                                 ("token_classification", "ner", "txt"),
                                 ("squad", "squad", "json")):
        files[task] = (str(out / f"{prefix}_train.{suffix}"), str(out / f"{prefix}_eval.{suffix}"))
    return files


def _args(task, init_dir, files, model_dir, **overrides):
    train, evaluation = files[task]
    args = {"task": task, "init_checkpoint": init_dir, "train_file": train,
            "eval_file": evaluation, "model_dir": model_dir, "max_seq_length": 32,
            "epochs": 8, "train_batch_size": 16, "eval_batch_size": 16,
            "learning_rate": 3e-3, "warmup_ratio": 0.1, "log_steps": 5, "noprogress": None}
    if task == "squad":
        args.update(max_seq_length=48, doc_stride=16, max_query_length=16)
    args.update(overrides)
    return [f"--{k}" if v is None else f"--{k}={v}" for k, v in args.items()]


def _losses(model_dir):
    with open(os.path.join(model_dir, "metrics.jsonl")) as f:
        return {row["step"]: row["loss"] for row in map(json.loads, f)}


@pytest.mark.parametrize("task,metric,at_least", [
    ("classification", "accuracy", 0.9), ("regression", "pearson", 0.8),
    ("token_classification", "f1", 0.6), ("squad", "f1", 40.0)])
def test_each_task_trains_and_predicts(init_dir, task_files, tmp_path, task, metric, at_least):
    run = run_script("finetune.py", *_args(task, init_dir, task_files, tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    # where start-up went, in the phases the benchmark reads (bench/finetune_real.py)
    assert re.search(r"^first step done [\d.]+ s after start \(imports [\d.]+ s, data [\d.]+ s, "
                     r"model and input pipeline [\d.]+ s, first step [\d.]+ s\)$", run.stderr,
                     re.M), run.stderr[-3000:]
    losses = _losses(tmp_path)
    assert losses[max(losses)] < losses[1]
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert len(results["epochs"]) == 8 and results["main_metric"] == metric
    assert results["best"][metric] >= at_least, results["best"]

    tokenizer = kbx.BertTokenizer(os.path.join(init_dir, "vocab.txt"), max_seq_length=32)
    if task in ("classification", "regression"):
        model = kbx.BertClassifier.from_pretrained(tmp_path / "best")
        scores = np.asarray(model(tokenizer(["the film was great and long",
                                             "the film was awful and long"])))
        if task == "classification":
            assert [model.labels[i] for i in scores.argmax(-1)] == ["pos", "neg"]
        else:
            assert scores[0, 0] > scores[1, 0]
    elif task == "token_classification":
        from keras_bert_x.data.tasks.conll import (predicted_tags, read_conll,
                                                   token_classification_features)

        model = kbx.BertTokenClassifier.from_pretrained(tmp_path / "best")
        path = tmp_path / "one.txt"
        path.write_text("Anna\tO\nlives\tO\nin\tO\nRome\tO\n.\tO\n")
        features = token_classification_features(tokenizer, read_conll(str(path)), model.labels)
        logits = model({k: features[k] for k in ("input_word_ids", "input_mask",
                                                 "input_type_ids")})
        tags = predicted_tags(np.asarray(logits).argmax(-1), features["labels"],
                              features["word_counts"], model.labels)[0]
        assert tags == ["B-PER", "O", "O", "B-LOC", "O"], tags  # both entities, exact spans
    else:  # the answers of the saved best model, decoded back to text
        from keras_bert_x import metrics
        from keras_bert_x.data.tasks.squad import read_squad, squad_features
        from keras_bert_x.data.tasks.squad_postprocess import squad_predictions

        model = kbx.BertSpanQA.from_pretrained(tmp_path / "best")
        data = read_squad(task_files["squad"][1], is_training=False)
        features = squad_features(kbx.BertTokenizer(model.vocabulary, max_seq_length=48), data,
                                  max_seq_length=48, doc_stride=16, max_query_length=16)
        out = model({k: features.arrays[k] for k in ("input_word_ids", "input_mask",
                                                     "input_type_ids")})
        answers, _ = squad_predictions(data, features, np.asarray(out["start_logits"]),
                                       np.asarray(out["end_logits"]), model.vocabulary)
        assert set(answers.values()) <= set(CITIES) | {""}, answers  # spans, cut to words
        scores = metrics.squad_scores({e.qid: e.answers for e in data.examples}, answers)
        assert scores["f1"] == pytest.approx(results["best"]["f1"])


@pytest.mark.parametrize("task,policy,tolerance", [
    ("classification", "float32", 1e-5), ("squad", "float32", 1e-5),
    ("classification", "mixed_float16", 1e-3)])  # fp16 with loss scaling, as GPU users run it
def test_mirrored_matches_one_device(init_dir, task_files, tmp_path, task, policy, tolerance):
    """The same per-step losses and the same evaluations (predictions gathered from both
    replicas, padding dropped, examples put back in order) as one device."""
    losses, evaluations = {}, {}
    for name, extra in (("one", []), ("mirrored", ["--strategy=mirrored",
                                                   "--num_cpu_devices=2"])):
        model_dir = tmp_path / name
        # A global batch of 12 leaves the last batch of the epoch padded (200 = 16 x 12 + 8);
        # 40 evaluation examples in batches of 16 leave a padded last one too.
        run = run_script("finetune.py", *_args(task, init_dir, task_files, model_dir,
                                               epochs=2, train_batch_size=12,
                                               mixed_precision=policy), *extra)
        assert run.returncode == 0, run.stderr[-3000:]
        losses[name] = _losses(model_dir)
        evaluations[name] = json.loads((model_dir / "eval_results.json").read_text())["epochs"]
    assert sorted(losses["one"]) == sorted(losses["mirrored"]) and len(losses["one"]) >= 5
    worst = max(abs(losses["one"][s] - losses["mirrored"][s]) for s in losses["one"])
    print(f"{task} {policy}: one device vs mirrored, worst per-step loss difference {worst:.2e}")
    assert worst <= tolerance
    assert len(evaluations["one"]) == len(evaluations["mirrored"]) == 2
    for one, mirrored in zip(evaluations["one"], evaluations["mirrored"]):
        assert one.keys() == mirrored.keys()
        for key, value in one.items():
            assert mirrored[key] == pytest.approx(value, abs=tolerance * max(1.0, abs(value))), key


def test_compiled_graph_loops_on_two_replicas_match_the_plain_loop(init_dir, task_files,
                                                                     tmp_path):
    """SQuAD (padded batches, predictions gathered for host metrics) with --jit_compile and
    --steps_per_loop=5 on two replicas: the same losses at the steps it logs, and the same
    evaluations, as one device stepping one batch at a time."""
    runs = {}
    for name, extra in (("plain", []), ("fast", ["--strategy=mirrored", "--num_cpu_devices=2",
                                                 "--jit_compile", "--steps_per_loop=5"])):
        model_dir = tmp_path / name
        # Different widths (auto: each batch at its longest without XLA, multiples of 16 with
        # it): the same losses, as padding is out of the span softmax.
        run = run_script("finetune.py", *_args("squad", init_dir, task_files, model_dir,
                                               epochs=2, train_batch_size=12), *extra)
        assert run.returncode == 0, run.stderr[-3000:]
        runs[name] = (_losses(model_dir),
                      json.loads((model_dir / "eval_results.json").read_text())["epochs"])
    (plain, plain_evals), (fast, fast_evals) = runs["plain"], runs["fast"]
    assert len(fast) < len(plain) and max(fast) == max(plain)  # logged once per loop
    steps = sorted(fast)
    for start, step in zip([0] + steps, steps):  # a loop's loss is over its steps
        window = [plain[s] for s in range(start + 1, step + 1)]
        assert min(window) - 1e-4 <= fast[step] <= max(window) + 1e-4, (step, window)
    for a, b in zip(plain_evals, fast_evals):
        for key, value in a.items():
            assert b[key] == pytest.approx(value, abs=1e-3 * max(1.0, abs(value))), key


@pytest.mark.parametrize("case", ["unseen_label", "conll_fields", "empty_file",
                                  "missing_column", "squad_offset"])
def test_bad_input(init_dir, task_files, tmp_path, case):
    bad = tmp_path / ("bad.tsv" if case in ("unseen_label", "empty_file") else "bad")
    task, overrides, expected = "classification", {}, None
    if case == "unseen_label":
        bad.write_text("text\tlabel\nfine\tpos\nodd\tmaybe\n")
        overrides = {"eval_file": bad}
        expected = "bad.tsv:3: label 'maybe' is not one of the training labels (neg, pos)"
    elif case == "conll_fields":
        task = "token_classification"
        bad.write_text("John\tB-PER\nlives in\tO\n")
        overrides, expected = {"train_file": bad}, "bad:2: 3 fields, expected 2"
    elif case == "empty_file":
        bad.write_text("")
        overrides, expected = {"train_file": bad}, "bad.tsv: file is empty"
    elif case == "missing_column":
        overrides, expected = {"text_column": "sentence"}, "no column 'sentence'"
    else:  # a counted, reported skip, as Google's run_squad does: training goes on
        task = "squad"
        data = json.loads(open(task_files["squad"][0]).read())
        data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 0
        bad.write_text(json.dumps(data))
        overrides = {"train_file": bad, "epochs": 0.2, "eval_file": ""}
    model_dir = tmp_path / "run"
    run = run_script("finetune.py", *_args(task, init_dir, task_files, model_dir, **overrides))
    if expected is None:
        assert run.returncode == 0, run.stderr[-3000:]
        assert "skipped 1 answers whose answer_start does not point at their text" in run.stderr
        return
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode == 1 and len(errors) == 1, run.stderr[-3000:]
    assert expected in errors[0], errors[0]
    assert "Traceback" not in run.stderr
    assert not model_dir.exists()  # nothing half-written


def test_mixed_bfloat16(init_dir, task_files, tmp_path):
    run = run_script("finetune.py", *_args("classification", init_dir, task_files, tmp_path,
                                           mixed_precision="mixed_bfloat16"))
    assert run.returncode == 0, run.stderr[-3000:]
    best = json.loads((tmp_path / "eval_results.json").read_text())["best"]
    assert best["accuracy"] >= 0.9, best


def test_ctrl_c_saves_a_checkpoint_exits_130_and_the_run_resumes(init_dir, task_files,
                                                                 tmp_path):
    """Ctrl-C after the first checkpoint, as a user presses it: honoured at the next step (it
    used to be lost in a finalizer and the run trained on), one line, exit status 130."""
    import signal
    import subprocess
    import sys
    import time

    from tests.training.conftest import ROOT

    args = _args("classification", init_dir, task_files, tmp_path, epochs=20,
                 save_checkpoints_steps=10)
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "trainers", "finetune.py"),
                             *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and max(_losses(tmp_path) if (tmp_path / "metrics.jsonl")
                                         .exists() else {0: 0}, default=0) < 12:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    step = int(lines[0].split("at step ")[1].split(";")[0])
    assert 12 <= step < 260 and max(_losses(tmp_path)) == step
    assert (tmp_path / "checkpoints" / f"ckpt-{step}.index").is_file()
    run = run_script("finetune.py", *args)
    assert run.returncode == 0 and f"at step {step}" in run.stderr, run.stderr[-3000:]
    assert max(_losses(tmp_path)) == 260


def test_kill_9_then_resume(init_dir, task_files, tmp_path):
    """Killed mid-epoch and run again: the same per-step losses as an uninterrupted run, and
    every epoch's evaluation in eval_results.json."""
    import signal
    import subprocess
    import sys
    import time

    from tests.training.conftest import ROOT

    args = lambda model_dir: _args("classification", init_dir, task_files, model_dir,  # noqa
                                   save_checkpoints_steps=10)
    assert run_script("finetune.py", *args(tmp_path / "reference")).returncode == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "trainers", "finetune.py"),
                             *args(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and max(_losses(killed) if (killed / "metrics.jsonl").exists()
                                         else {0: 0}, default=0) < 35:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert max(_losses(killed)) < 104, "finished before it was killed"
    run = run_script("finetune.py", *args(killed))
    assert run.returncode == 0 and "resumed from" in run.stderr, run.stderr[-3000:]
    expected, got = _losses(tmp_path / "reference"), _losses(killed)
    assert max(abs(expected[s] - got[s]) for s in expected) <= 1e-5
    epochs = json.loads((killed / "eval_results.json").read_text())["epochs"]
    assert [e["step"] for e in epochs] == [13 * i for i in range(1, 9)]


def test_keras_extras_are_kept_out_of_a_trainers_imports_and_come_back_after():
    """trainers/finetune.py imports TensorFlow and Keras without Keras's scikit-learn, plot and
    DataFrame extras (seconds of start-up); after that block they import as usual (seqeval, the
    NER metrics, imports scikit-learn)."""
    import subprocess
    import sys

    code = ("import sys\nfrom keras_bert_x import cli\n"
            "with cli.without_keras_extras():\n    import keras, tensorflow\n"
            "print([m for m in cli.KERAS_EXTRAS if m in sys.modules])\n"
            "import sklearn, seqeval.metrics\nprint('sklearn' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["[]", "True"]
