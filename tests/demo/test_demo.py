"""`make demo`'s pipeline end to end at a toy scale, imported from the installed wheel: every stage
runs on real data (the bundled Brown corpus, MiniLM, MR), an interrupt (Ctrl-C) leaves finished
stages kept and the next run resumes, and a run after a finished one redoes nothing."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

TOY = ["--documents=12", "--vocab_size=400", "--dupe_factor=1", "--pretrain_steps=300",
       "--train_examples=48", "--eval_examples=24", "--latency_repeats=2", "--noprogress"]
STAGES = ("vocab", "data", "pretrain", "finetune", "export", "parity", "report")


def wheel_env(site):
    """What a user's shell has, with the package imported from the installed wheel (`site`),
    not from this checkout: the bundled corpus must come as package data."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(site)
    return env


def demo(output_dir, site, *extra):
    return subprocess.Popen([sys.executable, "-m", "keras_bert_x.demo",
                             f"--output_dir={output_dir}", *TOY, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=wheel_env(site), cwd=os.path.dirname(output_dir))


def wait_for(path, process, timeout=600):
    start = time.time()
    while not os.path.exists(path):
        assert process.poll() is None, process.communicate()
        assert time.time() - start < timeout, f"{path} never appeared"
        time.sleep(0.2)


@pytest.mark.slow
def test_interrupted_demo_resumes_and_a_finished_one_is_kept(installed_wheel, tmp_path):
    _, site = installed_wheel
    out = tmp_path / "demo_out"
    first = demo(out, site)
    # Interrupt in the middle of pretraining, after its first checkpoint.
    wait_for(out / ".partial" / "pretrain" / "run" / "checkpoints" / "checkpoint", first)
    first.send_signal(signal.SIGINT)
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 130, stderr[-3000:]
    # honoured by pretraining at its next step (a flag: the KeyboardInterrupt used to be lost)
    assert "interrupted (Ctrl-C): saved checkpoint at step" in stderr
    assert "interrupted: finished stages are kept" in stderr
    assert (out / "vocab" / "result.json").is_file() and (out / "data" / "result.json").is_file()
    assert not (out / "pretrain").exists()  # an unfinished stage never looks finished

    second = demo(out, site)
    stdout, stderr = second.communicate(timeout=1200)
    assert second.returncode == 0, stderr[-3000:]
    kept = re.findall(r"\] (.+): done before", stdout)
    assert len(kept) == 2  # vocab and data were not redone
    assert "pretrain bert_tiny (MLM + NSP): resuming" in stdout
    assert "resumed from" in stderr  # pretraining went on from its checkpoint
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*STAGES, "report.md", ".keras_bert_x_demo"])
    pretrain = json.loads((out / "pretrain" / "result.json").read_text())
    steps = [row["step"] for row in pretrain["curve"]]
    assert steps == sorted(set(steps)) and steps[-1] == 300  # one row a step, resumed or not
    assert not (out / "pretrain" / "run" / "checkpoints").exists()
    parity = json.loads((out / "parity" / "result.json").read_text())
    assert sum(map(sum, parity["confusion"])) == parity["test_examples"] == 24
    raw = parity["raw_text"]
    diagonal = sum(parity["confusion"][i][i] for i in range(len(parity["labels"])))
    assert abs(raw["accuracy"] - diagonal / 24) < 1e-9 and raw["agreement"] >= 0.95
    report = (out / "report.md").read_text()
    for heading in ("## Stages", "## 1. WordPiece vocabulary", "## 2. Pretraining data",
                    "## 3. Pretraining bert_tiny", "## 4. Fine-tuning MiniLM-L6",
                    "## 5. Export", "## 6. Parity"):
        assert heading in report
    assert "None" not in report and "nan" not in report.lower()
    keras_row_without_size = "| keras |  |"
    empty_cells = [line for line in report.splitlines() if line.startswith("|") and
                   re.search(r"\|\s*\|", line.replace(keras_row_without_size, ""))]
    assert empty_cells == []
    for form in ("keras", "saved_model", "tflite mr_fp32.tflite",
                 "tflite mr_dynamic_int8.tflite"):
        row = next(line for line in report.splitlines()  # the parity table's row
                   if line.startswith(f"| {form} |") and line.count("|") == 7)
        assert re.search(r"\| [\d.]+% \| [\d.]+% \| [\d.]+ \|$", row), row
    for png in ("pretraining_curves.png", "finetuning_loss.png", "confusion_matrix.png"):
        assert f"](report/{png})" in report
        assert (out / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "[7/7] report: tables and plots" in stdout
    noise = [line for line in (stdout + stderr).splitlines()
             if "oneDNN" in line or "cuInit" in line or "cpu_feature_guard" in line
             or "functional_saver" in line
             or line.startswith(("I0000", "W0000", "I1", "W1", "E1", "WARNING: All log"))]
    assert noise == [], noise

    (out / "report.md").unlink()
    # A run that finds everything done loads no TensorFlow: it only reads what is there.
    code = ("import runpy, sys; sys.argv = sys.argv[1:]\ntry:\n"
            "    runpy.run_module('keras_bert_x.demo', run_name='__main__')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "print('tensorflow loaded:', 'tensorflow' in sys.modules)")
    third = subprocess.run([sys.executable, "-c", code, "demo", f"--output_dir={out}", *TOY],
                           capture_output=True, text=True, timeout=600, env=wheel_env(site),
                           cwd=tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert len(re.findall(r"\] (.+): done before", third.stdout)) == len(STAGES)
    assert "tensorflow loaded: False" in third.stdout
    assert (out / "report.md").read_text() == report  # written again from the kept stage


def test_bad_flags_and_a_foreign_output_dir_are_one_error_line(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "keras_bert_x.demo", *args],
                              capture_output=True, text=True, timeout=300)

    stray = run(f"--output_dir={tmp_path / 'out'}", "stray")
    assert stray.returncode == 1
    assert stray.stderr.strip() == "error: unexpected argument 'stray'"
    assert "--latency_repeats" in run(f"--output_dir={tmp_path / 'out'}",
                                      "--latency_repeats=0").stderr
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    foreign = run(f"--output_dir={tmp_path / 'mine'}")
    assert foreign.returncode == 1
    assert foreign.stderr.strip() == (f"error: {tmp_path / 'mine'}: not empty and not a demo "
                                      "output folder; choose another --output_dir (nothing "
                                      "there is touched)")
    assert os.listdir(tmp_path / "mine") == ["notes.txt"]
