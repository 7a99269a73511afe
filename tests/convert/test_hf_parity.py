"""Numerical parity with Hugging Face transformers' PyTorch BertModel."""

import numpy as np
import pytest
import torch
import transformers

import keras_bert_x as kbx
from tests.helpers import keras_outputs, max_diff_on_tokens, random_batch, torch_outputs


def test_minilm_real_weights_match_torch(minilm_dir, minilm_batch):
    assert minilm_batch["input_word_ids"].shape[0] >= 8
    lengths = minilm_batch["input_mask"].sum(1)
    assert len(set(lengths.tolist())) >= 5, "sentences should differ in length (real padding)"

    ref = transformers.BertModel.from_pretrained(minilm_dir).eval()
    ref_seq, ref_pooled = torch_outputs(ref, minilm_batch)
    enc = kbx.BertEncoder.from_pretrained(minilm_dir)
    seq, pooled = keras_outputs(enc, minilm_batch)

    seq_diff = max_diff_on_tokens(seq, ref_seq, minilm_batch["input_mask"])
    pooled_diff = float(np.abs(pooled - ref_pooled).max())
    print(f"MiniLM-L6 fp32 parity: sequence_output {seq_diff:.2e}, pooled_output {pooled_diff:.2e}")
    assert seq_diff <= 1e-4
    assert pooled_diff <= 1e-4
    assert len(enc.vocabulary) == 30522 and enc.vocabulary[101] == "[CLS]"


def _random_hf_model(**overrides):
    torch.manual_seed(0)
    fields = dict(vocab_size=211, hidden_size=96, num_hidden_layers=3, num_attention_heads=3,
                  intermediate_size=200, max_position_embeddings=40, type_vocab_size=3,
                  layer_norm_eps=1e-7, hidden_act="gelu")
    fields.update(overrides)
    return transformers.BertModel(transformers.BertConfig(**fields)).eval()


@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_new", "relu"])
def test_random_init_non_default_config_matches_torch(tmp_path, hidden_act):
    ref = _random_hf_model(hidden_act=hidden_act)
    ref.save_pretrained(tmp_path)
    batch = random_batch(211, batch=4, seq_len=11, type_vocab_size=3)

    enc = kbx.BertEncoder.from_pretrained(tmp_path)
    assert enc.config.num_attention_heads == 3 and enc.config.layer_norm_eps == 1e-7
    seq, pooled = keras_outputs(enc, batch)
    ref_seq, ref_pooled = torch_outputs(ref, batch)
    assert max_diff_on_tokens(seq, ref_seq, batch["input_mask"]) <= 1e-4
    assert np.abs(pooled - ref_pooled).max() <= 1e-4


def test_bert_tiny_shape_matches_torch(tmp_path):
    cfg = kbx.BertConfig.from_preset("bert_tiny")
    ref = _random_hf_model(vocab_size=cfg.vocab_size, hidden_size=128, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=512,
                           max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12)
    ref.save_pretrained(tmp_path)
    batch = random_batch(cfg.vocab_size, batch=3, seq_len=16)
    enc = kbx.BertEncoder.from_pretrained(tmp_path)
    assert enc.config == cfg
    seq, pooled = keras_outputs(enc, batch)
    ref_seq, ref_pooled = torch_outputs(ref, batch)
    assert max_diff_on_tokens(seq, ref_seq, batch["input_mask"]) <= 1e-4
    assert np.abs(pooled - ref_pooled).max() <= 1e-4


def test_pytorch_bin_with_prefixed_keys_loads(tmp_path):
    """pytorch_model.bin (zip pickle) of a BertForPreTraining: keys carry the `bert.` prefix."""
    torch.manual_seed(1)
    cfg = transformers.BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=64,
                                  max_position_embeddings=24)
    ref = transformers.BertForPreTraining(cfg).eval()
    # transformers 5 writes only safetensors; torch.save gives the classic pytorch_model.bin.
    ref.config.save_pretrained(tmp_path)
    torch.save(ref.state_dict(), tmp_path / "pytorch_model.bin")
    assert any(k.startswith("bert.") for k in ref.state_dict())

    batch = random_batch(97, batch=2, seq_len=7)
    enc = kbx.BertEncoder.from_pretrained(tmp_path)
    seq, pooled = keras_outputs(enc, batch)
    ref_seq, ref_pooled = torch_outputs(ref.bert, batch)
    assert max_diff_on_tokens(seq, ref_seq, batch["input_mask"]) <= 1e-4
    assert np.abs(pooled - ref_pooled).max() <= 1e-4


def test_torch_pickle_reader_matches_torch_load(tmp_path):
    from keras_bert_x.convert.torch_pickle import load_torch_state_dict

    state = {"a": torch.randn(3, 4), "b": torch.arange(6).reshape(2, 3).t(),  # non-contiguous
             "c": torch.randn(5).half(), "d": torch.tensor(7)}
    torch.save(state, tmp_path / "w.bin")
    ours = load_torch_state_dict(str(tmp_path / "w.bin"))
    for k, v in state.items():
        np.testing.assert_array_equal(ours[k], v.numpy())
        assert ours[k].dtype == v.numpy().dtype


def test_torch_pickle_reader_refuses_arbitrary_globals(tmp_path):
    from keras_bert_x.convert.torch_pickle import load_torch_state_dict

    torch.save({"x": torch.zeros(1), "evil": np.random.default_rng(0)}, tmp_path / "w.bin")
    with pytest.raises(kbx.BertInputError, match="refusing to load global"):
        load_torch_state_dict(str(tmp_path / "w.bin"))
