"""The parity report on a held-out file: every form against Keras, and its bad input."""

import json
import os
import subprocess
import sys

from keras_bert_x.export.tflite import convert_to_tflite
from keras_bert_x.export.verify import run_verification
from tests.export.conftest import MAX_SEQ_LENGTH
from tests.helpers import SENTENCES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# As a user runs the commands: no log level of ours (the test session sets one).
USER_ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def test_parity_report_compares_every_form(model_dirs, exports, tmp_path):
    table = tmp_path / "eval.tsv"
    table.write_text("text\tlabel\n" + "".join(
        f"{s}\t{'positive' if i % 2 else 'negative'}\n" for i, s in enumerate(SENTENCES)),
        encoding="utf-8")
    lite = tmp_path / "clf.tflite"
    convert_to_tflite(model_dirs["classifier"], lite, max_seq_length=MAX_SEQ_LENGTH)
    markdown = run_verification(model_dirs["classifier"], str(table), exports["classifier"],
                                [str(lite)], str(tmp_path / "parity"),
                                max_seq_length=MAX_SEQ_LENGTH, latency_repeats=3)
    with open(tmp_path / "parity" / "parity.json") as f:
        report = json.load(f)
    assert report["examples"] == len(SENTENCES) and report["metric"] == "accuracy"
    forms = {row["form"]: row for row in report["forms"]}
    assert list(forms) == ["keras", "saved_model", "tflite clf.tflite"]
    assert forms["saved_model"]["max_abs_diff"] <= 1e-5
    assert forms["tflite clf.tflite"]["max_abs_diff"] <= 1e-4
    for row in forms.values():
        assert row["agreement"] == 1.0
        assert row["accuracy"] == forms["keras"]["accuracy"]
        assert row["latency_ms"] > 0
    assert forms["tflite clf.tflite"]["size_mb"] > 1
    assert markdown == (tmp_path / "parity" / "parity.md").read_text().strip()
    assert markdown.count("\n") == 4  # header, rule, three forms


def test_parity_report_refuses_bad_input(model_dirs, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, os.path.join(ROOT, "export", "verify.py"), *args],
                              capture_output=True, text=True, timeout=600, cwd=ROOT,
                              env=USER_ENV)

    cases = [(["--model_dir", model_dirs["classifier"], "--eval_file", str(tmp_path / "no.tsv")],
              "not found"),
             (["--model_dir", model_dirs["encoder"], "--eval_file", __file__], "no parity report"),
             (["--model_dir", model_dirs["classifier"], "--eval_file", __file__,
               "--tflite", str(tmp_path / "missing.tflite")], "missing.tflite: not found")]
    for args, message in cases:
        result = run(*args, f"--max_seq_length={MAX_SEQ_LENGTH}")
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
