"""BertPretrainer and BertMaskedLM: head parity with HF (BertForPreTraining, BertForMaskedLM),
checkpoints that lack a head or carry extra ones, tied embeddings, save/load across classes."""

import logging

import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import load_file, save_file

import keras_bert_x as kbx
from keras_bert_x.convert import read_checkpoint
from tests.convert.writers import write_google_checkpoint
from tests.helpers import copy_dir, random_batch

POSITIONS = np.array([[1, 3, 4], [2, 5, 6], [1, 2, 7]], "int32")
VOCAB = 300


def _save_hf(path, model_class):
    """A random-init HF model of the bert_tiny shape (small vocab), saved as HF saves it."""
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=VOCAB, hidden_size=128, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=512)
    model = model_class(cfg).eval()
    with torch.no_grad():  # random-init biases are zero: make them count in the comparison
        model.cls.predictions.bias.normal_()
        model.cls.predictions.transform.LayerNorm.weight.normal_()
    model.save_pretrained(path)
    return path, model


@pytest.fixture(scope="module")
def hf_pretraining_dir(tmp_path_factory):
    return _save_hf(tmp_path_factory.mktemp("hf_pre"), transformers.BertForPreTraining)


@pytest.fixture(scope="module")
def hf_masked_lm_dir(tmp_path_factory):
    return _save_hf(tmp_path_factory.mktemp("hf_mlm"), transformers.BertForMaskedLM)


def _torch_logits(model, batch):
    with torch.no_grad():
        out = model(input_ids=torch.tensor(batch["input_word_ids"]).long(),
                    attention_mask=torch.tensor(batch["input_mask"]).long(),
                    token_type_ids=torch.tensor(batch["input_type_ids"]).long())
    logits = out.prediction_logits if hasattr(out, "prediction_logits") else out.logits
    mlm = np.take_along_axis(logits.numpy(), POSITIONS[..., None], axis=1)
    nsp = out.seq_relationship_logits.numpy() if hasattr(out, "seq_relationship_logits") else None
    return mlm, nsp


def _ours(model, batch):
    out = model({**batch, "masked_lm_positions": POSITIONS})
    return np.asarray(out["mlm_logits"]), (np.asarray(out["nsp_logits"])
                                           if "nsp_logits" in out else None)


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_pretraining_layout_matches_torch(hf_pretraining_dir, caplog):
    path, model = hf_pretraining_dir
    batch = random_batch(VOCAB, batch=3, seq_len=9)
    ref_mlm, ref_nsp = _torch_logits(model, batch)
    with caplog.at_level(logging.WARNING, logger="keras_bert_x"):
        mlm, nsp = _ours(kbx.BertPretrainer.from_pretrained(path), batch)
    print(f"BertForPreTraining -> BertPretrainer: mlm {np.abs(mlm - ref_mlm).max():.2e}, "
          f"nsp {np.abs(nsp - ref_nsp).max():.2e}")
    assert mlm.shape == (3, 3, VOCAB)
    assert np.abs(mlm - ref_mlm).max() <= 1e-4 and np.abs(nsp - ref_nsp).max() <= 1e-4
    assert _warnings(caplog) == []  # everything used, nothing fresh

    with caplog.at_level(logging.WARNING, logger="keras_bert_x"):
        mlm, _ = _ours(kbx.BertMaskedLM.from_pretrained(path), batch)
    assert np.abs(mlm - ref_mlm).max() <= 1e-4
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "ignored: cls/seq_relationship (next-sentence head)" in \
        warnings[0], warnings


def test_masked_lm_layout_matches_torch(hf_masked_lm_dir, caplog):
    path, model = hf_masked_lm_dir
    batch = random_batch(VOCAB, batch=3, seq_len=9)
    ref_mlm, _ = _torch_logits(model, batch)
    with caplog.at_level(logging.WARNING, logger="keras_bert_x"):
        mlm, _ = _ours(kbx.BertMaskedLM.from_pretrained(path), batch)
    print(f"BertForMaskedLM -> BertMaskedLM: mlm {np.abs(mlm - ref_mlm).max():.2e}")
    assert np.abs(mlm - ref_mlm).max() <= 1e-4
    # BertForMaskedLM has no pooler (HF builds it with add_pooling_layer=False); ours does not
    # use it either: nothing to warn about.
    assert _warnings(caplog) == []
    with caplog.at_level(logging.WARNING, logger="keras_bert_x"):
        kbx.BertEncoder.from_pretrained(path)  # an encoder's pooled_output does need it
    assert _warnings(caplog) == [
        f"{path}: has no pooler (bert/pooler); BertEncoder initialises it fresh: train before use",
        f"{path}: not used by BertEncoder, ignored: cls/predictions (masked-LM head)"]


def test_masked_lm_checkpoint_into_pretrainer_starts_nsp_fresh(hf_masked_lm_dir, caplog):
    path, model = hf_masked_lm_dir
    batch = random_batch(VOCAB, batch=3, seq_len=9)
    ref_mlm, _ = _torch_logits(model, batch)
    with caplog.at_level(logging.WARNING, logger="keras_bert_x"):
        pre = kbx.BertPretrainer.from_pretrained(path)
    mlm, nsp = _ours(pre, batch)
    assert np.abs(mlm - ref_mlm).max() <= 1e-4 and nsp.shape == (3, 2)
    warnings = _warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "has no pooler (bert/pooler), next-sentence head (cls/seq_relationship)" in warnings[0]
    assert "BertPretrainer initialises them fresh" in warnings[0]


def test_extra_heads_are_listed_in_one_line(hf_masked_lm_dir, tmp_path, caplog):
    path, _ = hf_masked_lm_dir
    extra = copy_dir(path, tmp_path / "extra")
    state = load_file(extra / "model.safetensors")
    state["classifier.weight"] = np.zeros((3, 128), "float32")  # a classification head
    state["classifier.bias"] = np.zeros(3, "float32")
    state["adapter.down.weight"] = np.zeros((8, 128), "float32")  # something unknown
    state["adapter.down.bias"] = np.zeros(8, "float32")
    state["extra_scale"] = np.ones(1, "float32")
    save_file(state, extra / "model.safetensors")
    with caplog.at_level(logging.WARNING, logger="keras_bert_x"):
        kbx.BertMaskedLM.from_pretrained(extra)
    ignored = [w for w in _warnings(caplog) if "ignored" in w]
    assert ignored == [f"{extra}: not used by BertMaskedLM, ignored: cls/classifier "
                       "(classification head), adapter.down (2 tensors), extra_scale (1 tensor)"]


@pytest.mark.parametrize("case", ["head_shape", "partial_head", "encoder_tensor", "untied"])
def test_what_cannot_be_right_is_refused(hf_masked_lm_dir, tmp_path, case):
    path, _ = hf_masked_lm_dir
    bad = copy_dir(path, tmp_path / "bad")
    state = load_file(bad / "model.safetensors")
    if case == "head_shape":
        state["cls.predictions.transform.dense.bias"] = np.zeros(64, "float32")
        expected = r"'cls.predictions.transform.dense.bias' has shape \(64,\), the config needs"
    elif case == "partial_head":
        del state["cls.predictions.transform.LayerNorm.bias"]
        expected = ("the masked-LM head is incomplete: missing tensor "
                    "'cls.predictions.transform.LayerNorm.bias'")
    elif case == "encoder_tensor":
        del state["bert.encoder.layer.1.output.dense.bias"]
        expected = "missing tensor 'encoder.layer.1.output.dense.bias'"
    else:
        state["cls.predictions.decoder.weight"] = np.ones((VOCAB, 128), "float32")
        expected = "differs from the word embeddings"
    save_file(state, bad / "model.safetensors")
    with pytest.raises(kbx.BertInputError, match=expected):
        kbx.BertPretrainer.from_pretrained(bad)


def test_google_checkpoint_heads(hf_pretraining_dir, tmp_path):
    path, model = hf_pretraining_dir
    tensors = read_checkpoint(path).all_tensors()
    tensors["cls/seq_relationship/output_weights"] = tensors["cls/seq_relationship/output_weights"].T
    write_google_checkpoint(tensors, read_checkpoint(path).config, tmp_path)
    batch = random_batch(VOCAB, batch=3, seq_len=9)
    mlm, nsp = _ours(kbx.BertPretrainer.from_pretrained(tmp_path), batch)
    ref_mlm, ref_nsp = _torch_logits(model, batch)
    assert np.abs(mlm - ref_mlm).max() <= 1e-4 and np.abs(nsp - ref_nsp).max() <= 1e-4


def test_mlm_projection_is_tied_to_word_embeddings(tiny_config):
    """Changing the embedding row of a token that is not in the input leaves the encoder's
    output alone; the logit of that token changes only if the projection is the same table."""
    pre = kbx.BertPretrainer(kbx.BertEncoder(tiny_config))
    names = [w.path for w in pre.weights]
    assert len(names) == len(set(names))
    assert sum("word_embeddings" in n for n in names) == 1
    batch = {**random_batch(tiny_config.vocab_size, seq_len=9),
             "masked_lm_positions": np.array([[1, 2]] * 3, "int32")}
    unused = sorted(set(range(tiny_config.vocab_size)) - set(batch["input_word_ids"].ravel()))[0]
    inputs = {k: v for k, v in batch.items() if k != "masked_lm_positions"}
    before, encoded = pre(batch), pre.encoder(inputs)["sequence_output"]
    table = pre.encoder.embeddings.word_embeddings
    values = table.numpy()
    values[unused] += np.random.default_rng(0).normal(size=values.shape[1]).astype("float32")
    table.assign(values)
    after = pre(batch)
    np.testing.assert_array_equal(encoded, pre.encoder(inputs)["sequence_output"])
    changed = np.abs(np.asarray(after["mlm_logits"]) - np.asarray(before["mlm_logits"]))
    assert changed[..., unused].min() > 1e-3
    assert np.delete(changed, unused, axis=-1).max() < 1e-6


@pytest.mark.parametrize("model_class", [kbx.BertPretrainer, kbx.BertMaskedLM])
def test_save_pretrained_round_trip(tiny_config, tmp_path, model_class):
    model = model_class(kbx.BertEncoder(tiny_config))
    model.save_pretrained(tmp_path / "p")
    loaded = model_class.from_pretrained(tmp_path / "p")
    batch = {**random_batch(tiny_config.vocab_size, seq_len=9),
             "masked_lm_positions": np.array([[1, 2]] * 3, "int32")}
    np.testing.assert_array_equal(model(batch)["mlm_logits"], loaded(batch)["mlm_logits"])
    # Any class takes what it needs from the directory of another.
    encoder = kbx.BertEncoder.from_pretrained(tmp_path / "p")
    inputs = {k: v for k, v in batch.items() if k != "masked_lm_positions"}
    np.testing.assert_array_equal(model.encoder(inputs)["pooled_output"],
                                  encoder(inputs)["pooled_output"])


def test_pretrainer_from_masked_lm_directory(tiny_config, tmp_path, caplog):
    mlm = kbx.BertMaskedLM(kbx.BertEncoder(tiny_config))
    mlm.save_pretrained(tmp_path / "mlm")
    with caplog.at_level(logging.WARNING, logger="keras_bert_x"):
        pre = kbx.BertPretrainer.from_pretrained(tmp_path / "mlm")
    batch = {**random_batch(tiny_config.vocab_size, seq_len=9),
             "masked_lm_positions": np.array([[1, 2]] * 3, "int32")}
    np.testing.assert_array_equal(mlm(batch)["mlm_logits"], pre(batch)["mlm_logits"])
    assert [w for w in _warnings(caplog) if "fresh" in w] == [
        f"{tmp_path / 'mlm'}: has no next-sentence head (cls/seq_relationship); BertPretrainer "
        "initialises it fresh: train before use"]
