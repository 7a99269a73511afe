"""The same weights as HF, Google TF1 and Model Garden checkpoints give the same encoder."""

import numpy as np
import pytest

import keras_bert_x as kbx
from keras_bert_x.convert import read_checkpoint
from keras_bert_x.models.weights import assign_encoder_weights, encoder_weights, head_variables
from tests.convert.writers import (model_garden_outputs, write_google_checkpoint,
                                   write_model_garden_checkpoint)
from tests.helpers import keras_outputs, max_diff_on_tokens


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    checkpoint = read_checkpoint(minilm_dir)
    return checkpoint, kbx.BertEncoder.from_pretrained(minilm_dir)


def test_google_tf1_checkpoint_gives_same_outputs(minilm, minilm_batch, tmp_path):
    checkpoint, reference = minilm
    write_google_checkpoint(checkpoint.all_tensors(), checkpoint.config, tmp_path)
    loaded = read_checkpoint(tmp_path)
    assert loaded.source == "google"

    enc = kbx.BertEncoder.from_pretrained(tmp_path)
    seq, pooled = keras_outputs(enc, minilm_batch)
    ref_seq, ref_pooled = keras_outputs(reference, minilm_batch)
    assert max_diff_on_tokens(seq, ref_seq, minilm_batch["input_mask"]) <= 1e-5
    assert np.abs(pooled - ref_pooled).max() <= 1e-5


def test_model_garden_checkpoint_gives_same_outputs(minilm, minilm_batch, tmp_path):
    checkpoint, reference = minilm
    net = write_model_garden_checkpoint(checkpoint.all_tensors(), checkpoint.config, tmp_path)
    assert read_checkpoint(tmp_path).source == "tfm"

    enc = kbx.BertEncoder.from_pretrained(tmp_path)
    seq, pooled = keras_outputs(enc, minilm_batch)
    ref_seq, ref_pooled = keras_outputs(reference, minilm_batch)
    mask = minilm_batch["input_mask"]
    assert max_diff_on_tokens(seq, ref_seq, mask) <= 1e-5
    assert np.abs(pooled - ref_pooled).max() <= 1e-5

    # Model Garden's own forward pass on the same weights agrees with ours.
    mg_seq, mg_pooled = model_garden_outputs(net, minilm_batch)
    mg_diff = max_diff_on_tokens(mg_seq, seq, mask)
    print(f"Model Garden BertEncoderV2 vs ours (MiniLM weights): sequence {mg_diff:.2e}, "
          f"pooled {np.abs(mg_pooled - pooled).max():.2e}")
    assert mg_diff <= 1e-5
    assert np.abs(mg_pooled - pooled).max() <= 1e-5


def test_encoder_weights_round_trip(tiny_config):
    """encoder_weights (ours -> canonical) inverts assign (canonical -> ours), fused QKV included."""
    a = kbx.BertEncoder(tiny_config)
    b = kbx.BertEncoder(tiny_config)
    assign_encoder_weights(b, encoder_weights(a))
    for (_, va), (_, vb) in zip(*(head_variables(m)["bert/pooler"] for m in (a, b))):
        vb.assign(va)
    for va, vb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
