"""BertConfig: presets, the three JSON dialects, and clear errors on bad fields."""

import json

import pytest

import keras_bert_x as kbx
from keras_bert_x.config import PRESETS

PRESET_SHAPES = {"bert_tiny": (2, 128, 2), "bert_mini": (4, 256, 4), "bert_small": (4, 512, 8),
                 "bert_medium": (8, 512, 8), "bert_base": (12, 768, 12),
                 "bert_large": (24, 1024, 16)}


@pytest.mark.parametrize("name", PRESETS)
def test_presets(name):
    cfg = kbx.BertConfig.from_preset(name)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads) == PRESET_SHAPES[name]
    assert cfg.intermediate_size == 4 * cfg.hidden_size
    assert (cfg.vocab_size, cfg.max_position_embeddings, cfg.type_vocab_size) == (30522, 512, 2)
    assert (cfg.hidden_act, cfg.layer_norm_eps, cfg.hidden_dropout_prob, cfg.initializer_range) \
        == ("gelu", 1e-12, 0.1, 0.02)


def test_preset_overrides_and_unknown_preset():
    assert kbx.BertConfig.from_preset("bert_tiny", vocab_size=8000).vocab_size == 8000
    with pytest.raises(kbx.BertInputError, match="unknown preset 'bert_huge'"):
        kbx.BertConfig.from_preset("bert_huge")


def test_json_round_trip(tmp_path):
    cfg = kbx.BertConfig.from_preset("bert_mini", hidden_act="gelu_new", layer_norm_eps=1e-6)
    cfg.to_json_file(tmp_path / "c.json")
    assert kbx.BertConfig.from_json_file(tmp_path / "c.json") == cfg


def test_reads_hf_config(minilm_dir):
    cfg = kbx.BertConfig.from_json_file(f"{minilm_dir}/config.json")
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads) == (6, 384, 12)
    assert cfg.intermediate_size == 1536 and cfg.vocab_size == 30522


def test_reads_google_config_without_layer_norm_eps(tmp_path):
    google = {"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
              "intermediate_size": 3072, "max_position_embeddings": 512,
              "num_attention_heads": 12, "num_hidden_layers": 12, "type_vocab_size": 2,
              "vocab_size": 30522}
    (tmp_path / "bert_config.json").write_text(json.dumps(google))
    cfg = kbx.BertConfig.from_json_file(tmp_path / "bert_config.json")
    assert cfg == kbx.BertConfig.from_preset("bert_base")


@pytest.mark.parametrize("change,message", [
    ({"hidden_size": 129}, "not divisible by 'num_attention_heads'"),
    ({"vocab_size": 0}, "field 'vocab_size' must be a positive integer"),
    ({"hidden_act": "tanh"}, "field 'hidden_act' is 'tanh'"),
    ({"position_embedding_type": "relative_key"}, "only 'absolute' is supported"),
    ({"model_type": "roberta"}, "not 'bert'"),
    ({"hidden_dropout_prob": 1.5}, "field 'hidden_dropout_prob'"),
])
def test_bad_fields_name_file_and_field(tmp_path, change, message):
    data = kbx.BertConfig.from_preset("bert_tiny").to_dict()
    data.update(change)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(kbx.BertInputError, match=message) as err:
        kbx.BertConfig.from_json_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(kbx.BertInputError, match="config file not found"):
        kbx.BertConfig.from_json_file(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(kbx.BertInputError, match="not valid JSON"):
        kbx.BertConfig.from_json_file(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text('{"hidden_size": 8}')
    with pytest.raises(kbx.BertInputError, match="missing field 'vocab_size'"):
        kbx.BertConfig.from_json_file(tmp_path / "partial.json")
