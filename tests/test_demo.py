"""`make demo`'s program end to end at a small scale, and what it prints: only its own lines."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_runs_and_its_output_is_clean(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-m", "keras_bert_x.demo", f"--work_dir={tmp_path}",
                          "--pretrain_steps=4"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "BertEncoder L6/H384/A12" in run.stdout
    assert "pretrained bert_tiny saved to" in run.stdout
    noise = [line for line in (run.stdout + run.stderr).splitlines()
             if "oneDNN" in line or "cuInit" in line or "cpu_feature_guard" in line
             or "functional_saver" in line or line.startswith(("I1", "W1", "E1", "I0000"))]
    assert noise == [], noise
