"""Fixtures for trainer tests: a small TFRecord file and a dropout-free tiny config."""

import json
import os
import subprocess
import sys

import pytest

from keras_bert_x.data.create_pretraining_data import create_pretraining_data
from keras_bert_x.data.instances import MaskingConfig
from keras_bert_x.text.tokenizer import load_vocabulary
from tests.helpers import write_brown_subset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
T, P = 32, 5


@pytest.fixture(scope="session")
def train_files(tmp_path_factory, minilm_dir):
    """(records, vocab.txt, config.json): 60 Brown documents, a 2-layer model without dropout
    (dropout draws differ per device, so strategies can only agree without it)."""
    out = tmp_path_factory.mktemp("train")
    write_brown_subset(out / "corpus.txt", 60)
    vocab_file = os.path.join(minilm_dir, "vocab.txt")
    create_pretraining_data([str(out / "corpus.txt")], [str(out / "train.tfrecord")],
                            load_vocabulary(vocab_file), MaskingConfig(T, P), dupe_factor=1)
    config = {"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2,
              "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64,
              "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (out / "config.json").write_text(json.dumps(config))
    return str(out / "train.tfrecord"), vocab_file, str(out / "config.json")


def common_args(train_files, **overrides):
    records, vocab, config = train_files
    args = {"train_data": records, "vocab_file": vocab, "config": config,
            "max_seq_length": T, "max_predictions_per_seq": P, "train_batch_size": 8,
            "num_train_steps": 6, "num_warmup_steps": 2, "learning_rate": 1e-3,
            "save_checkpoints_steps": 3, "log_steps": 2, "noprogress": None}
    args.update(overrides)
    return [f"--{k}" if v is None else f"--{k}={v}" for k, v in args.items()]


def run_script(script, *args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, os.path.join(ROOT, "trainers", script), *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def losses(model_dir):
    with open(os.path.join(model_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return {r["step"]: r["loss"] for r in rows}
