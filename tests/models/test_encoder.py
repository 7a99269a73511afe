"""BertEncoder: shapes for any batch/length, serialization round trips, mixed precision."""

import numpy as np
import pytest
import keras

import keras_bert_x as kbx
from tests.helpers import keras_outputs, max_diff_on_tokens, random_batch


@pytest.mark.parametrize("batch,seq_len", [(1, 1), (2, 7), (5, 32)])
def test_any_batch_and_length_up_to_max_positions(tiny_config, batch, seq_len):
    enc = kbx.BertEncoder(tiny_config)
    out = enc(random_batch(tiny_config.vocab_size, batch=batch, seq_len=seq_len))
    assert tuple(out["sequence_output"].shape) == (batch, seq_len, 128)
    assert tuple(out["pooled_output"].shape) == (batch, 128)
    assert len(out["encoder_outputs"]) == tiny_config.num_hidden_layers
    np.testing.assert_array_equal(out["encoder_outputs"][-1], out["sequence_output"])


def test_longer_than_max_positions_is_refused(tiny_config):
    enc = kbx.BertEncoder(tiny_config)
    with pytest.raises(ValueError, match="max_positions"):
        enc(random_batch(tiny_config.vocab_size, seq_len=tiny_config.max_position_embeddings + 1))


def test_padding_does_not_change_real_tokens(tiny_config):
    """Extra padding (mask 0) must not move the outputs of the real tokens."""
    enc = kbx.BertEncoder(tiny_config)
    short = random_batch(tiny_config.vocab_size, batch=1, seq_len=6)
    short["input_mask"][:] = 1
    padded = {k: np.pad(v, ((0, 0), (0, 5)), constant_values=(0 if k != "input_word_ids" else 0))
              for k, v in short.items()}
    padded["input_word_ids"][0, 6:] = 17  # garbage under the padding must not leak through
    a, pa = keras_outputs(enc, short)
    b, pb = keras_outputs(enc, padded)
    np.testing.assert_allclose(a[0], b[0, :6], atol=1e-5)
    np.testing.assert_allclose(pa, pb, atol=1e-5)


def test_int64_inputs_accepted(tiny_config):
    enc = kbx.BertEncoder(tiny_config)
    batch = random_batch(tiny_config.vocab_size)
    a, _ = keras_outputs(enc, batch)
    b, _ = keras_outputs(enc, {k: v.astype("int64") for k, v in batch.items()})
    np.testing.assert_array_equal(a, b)


def test_dropout_only_in_training(tiny_config):
    enc = kbx.BertEncoder(tiny_config)
    batch = random_batch(tiny_config.vocab_size)
    a = np.asarray(enc(batch, training=True)["sequence_output"])
    b = np.asarray(enc(batch, training=True)["sequence_output"])
    c = np.asarray(enc(batch)["sequence_output"])
    d = np.asarray(enc(batch)["sequence_output"])
    assert np.abs(a - b).max() > 1e-3
    np.testing.assert_array_equal(c, d)


def test_keras_file_round_trip(tiny_config, tmp_path):
    enc = kbx.BertEncoder(tiny_config)
    batch = random_batch(tiny_config.vocab_size)
    enc.save(tmp_path / "enc.keras")
    loaded = keras.models.load_model(tmp_path / "enc.keras")
    assert isinstance(loaded, kbx.BertEncoder) and loaded.config == tiny_config
    for k in ("sequence_output", "pooled_output"):
        np.testing.assert_array_equal(enc(batch)[k], loaded(batch)[k])


def test_save_pretrained_round_trip(tiny_config, tmp_path):
    enc = kbx.BertEncoder(tiny_config)
    enc.vocabulary = tuple(f"tok{i}" for i in range(tiny_config.vocab_size))
    enc.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json", "model.weights.h5", "vocab.txt"]
    loaded = kbx.BertEncoder.from_pretrained(tmp_path / "model")
    assert loaded.config == tiny_config and loaded.vocabulary == enc.vocabulary
    batch = random_batch(tiny_config.vocab_size)
    for k in ("sequence_output", "pooled_output"):
        np.testing.assert_array_equal(enc(batch)[k], loaded(batch)[k])


def test_save_pretrained_refuses_non_empty_dir_and_leaves_it(tiny_config, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(kbx.BertInputError, match="not empty"):
        kbx.BertEncoder(tiny_config).save_pretrained(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_from_pretrained_refuses_other_class(tiny_config, tmp_path):
    enc = kbx.BertEncoder(tiny_config)
    enc.save_pretrained(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config_path.write_text(config_path.read_text().replace('"BertEncoder"', '"SomethingElse"'))
    with pytest.raises(kbx.BertInputError, match="SomethingElse"):
        kbx.BertEncoder.from_pretrained(tmp_path / "m")


@pytest.fixture
def bf16_policy():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_mixed_bfloat16_close_to_fp32(minilm_dir, minilm_batch, bf16_policy):
    enc16 = kbx.BertEncoder.from_pretrained(minilm_dir)
    assert enc16.embeddings.word_embeddings.dtype == "float32"  # variables stay fp32
    seq16, pooled16 = keras_outputs(enc16, minilm_batch)
    assert seq16.dtype.name == "bfloat16"
    keras.mixed_precision.set_global_policy("float32")
    seq32, pooled32 = keras_outputs(kbx.BertEncoder.from_pretrained(minilm_dir), minilm_batch)

    mask = minilm_batch["input_mask"]
    seq_diff = max_diff_on_tokens(seq16.astype("float32"), seq32, mask)
    real = mask.astype(bool)
    a, b = seq16.astype("float32")[real], seq32[real]
    cosine = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    print(f"MiniLM mixed_bfloat16 vs fp32: sequence max abs {seq_diff:.3f} "
          f"(fp32 values span ±{np.abs(seq32[real]).max():.1f}), min token cosine {cosine.min():.4f}, "
          f"pooled max abs {np.abs(pooled16.astype('float32') - pooled32).max():.3f}")
    assert np.isfinite(seq16.astype("float32")).all()
    assert cosine.min() > 0.99
    assert np.abs(pooled16.astype("float32") - pooled32).max() < 0.1
