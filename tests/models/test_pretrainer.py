"""BertPretrainer: head parity with HF BertForPreTraining, tied embeddings, save/load."""

import numpy as np
import pytest
import torch
import transformers

import keras_bert_x as kbx
from keras_bert_x.convert import read_checkpoint
from tests.convert.writers import write_google_checkpoint
from tests.helpers import random_batch

POSITIONS = np.array([[1, 3, 4], [2, 5, 6], [1, 2, 7]], "int32")


@pytest.fixture(scope="module")
def hf_pretraining_dir(tmp_path_factory):
    """A random-init HF BertForPreTraining with the bert_tiny shape (small vocab)."""
    path = tmp_path_factory.mktemp("hf_pre")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=300, hidden_size=128, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=512)
    model = transformers.BertForPreTraining(cfg).eval()
    with torch.no_grad():  # random-init biases are zero: make them count in the comparison
        model.cls.predictions.bias.normal_()
        model.cls.predictions.transform.LayerNorm.weight.normal_()
    model.save_pretrained(path)
    return path, model


def _torch_logits(model, batch):
    with torch.no_grad():
        out = model(input_ids=torch.tensor(batch["input_word_ids"]).long(),
                    attention_mask=torch.tensor(batch["input_mask"]).long(),
                    token_type_ids=torch.tensor(batch["input_type_ids"]).long())
    mlm = np.take_along_axis(out.prediction_logits.numpy(), POSITIONS[..., None], axis=1)
    return mlm, out.seq_relationship_logits.numpy()


def _ours(pre, batch):
    out = pre({**batch, "masked_lm_positions": POSITIONS})
    return np.asarray(out["mlm_logits"]), np.asarray(out["nsp_logits"])


def test_heads_match_torch(hf_pretraining_dir):
    path, model = hf_pretraining_dir
    batch = random_batch(300, batch=3, seq_len=9)
    pre = kbx.BertPretrainer.from_pretrained(path)
    mlm, nsp = _ours(pre, batch)
    ref_mlm, ref_nsp = _torch_logits(model, batch)
    print(f"BertForPreTraining parity: mlm {np.abs(mlm - ref_mlm).max():.2e}, "
          f"nsp {np.abs(nsp - ref_nsp).max():.2e}")
    assert mlm.shape == (3, 3, 300)
    assert np.abs(mlm - ref_mlm).max() <= 1e-4
    assert np.abs(nsp - ref_nsp).max() <= 1e-4


def test_google_checkpoint_heads(hf_pretraining_dir, tmp_path):
    path, model = hf_pretraining_dir
    checkpoint = read_checkpoint(path)
    from keras_bert_x.convert.heads import read_head_tensors

    heads = read_head_tensors(checkpoint, "test")
    heads["cls/seq_relationship/output_weights"] = heads["cls/seq_relationship/output_weights"].T
    write_google_checkpoint({**checkpoint.tensors, **heads}, checkpoint.config, tmp_path)
    batch = random_batch(300, batch=3, seq_len=9)
    mlm, nsp = _ours(kbx.BertPretrainer.from_pretrained(tmp_path), batch)
    ref_mlm, ref_nsp = _torch_logits(model, batch)
    assert np.abs(mlm - ref_mlm).max() <= 1e-4 and np.abs(nsp - ref_nsp).max() <= 1e-4


def test_mlm_projection_is_tied_to_word_embeddings(tiny_config):
    pre = kbx.BertPretrainer(kbx.BertEncoder(tiny_config))
    names = [w.path for w in pre.weights]
    assert len(names) == len(set(names))
    assert sum("word_embeddings" in n for n in names) == 1
    batch = {**random_batch(tiny_config.vocab_size, seq_len=9),
             "masked_lm_positions": np.array([[1, 2]] * 3, "int32")}
    before = np.asarray(pre(batch)["mlm_logits"])
    pre.encoder.embeddings.word_embeddings.assign(
        pre.encoder.embeddings.word_embeddings.numpy() * 2)
    assert not np.allclose(before, np.asarray(pre(batch)["mlm_logits"]))


def test_save_pretrained_round_trip(tiny_config, tmp_path):
    pre = kbx.BertPretrainer(kbx.BertEncoder(tiny_config))
    pre.save_pretrained(tmp_path / "p")
    loaded = kbx.BertPretrainer.from_pretrained(tmp_path / "p")
    batch = {**random_batch(tiny_config.vocab_size, seq_len=9),
             "masked_lm_positions": np.array([[1, 2]] * 3, "int32")}
    np.testing.assert_array_equal(pre(batch)["mlm_logits"], loaded(batch)["mlm_logits"])
    with pytest.raises(kbx.BertInputError, match="holds a BertPretrainer, not a BertEncoder"):
        kbx.BertEncoder.from_pretrained(tmp_path / "p")
