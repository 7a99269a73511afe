"""`python -m keras_bert_x.convert`: conversions succeed, bad input fails cleanly."""

import json
import os

import numpy as np
import pytest
import torch
import transformers

import keras_bert_x as kbx
from keras_bert_x.convert import read_checkpoint
from tests.convert.writers import write_google_checkpoint, write_model_garden_checkpoint
from tests.helpers import convert, copy_dir, error_lines, keras_outputs, random_batch

VOCAB = 60


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A random-init HF BertModel with a vocab.txt, as `save_pretrained` writes it."""
    path = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=48,
                                  max_position_embeddings=20)
    transformers.BertModel(cfg).eval().save_pretrained(path)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]
    (path / "vocab.txt").write_text("\n".join(tokens) + "\n")
    return path


@pytest.mark.parametrize("source", ["hf", "google", "tfm"])
def test_converts_each_source(hf_dir, tmp_path, source):
    checkpoint = read_checkpoint(hf_dir)
    src = {"hf": lambda: hf_dir,
           "google": lambda: (write_google_checkpoint(checkpoint.all_tensors(), checkpoint.config,
                                                      tmp_path / "g"), tmp_path / "g")[1],
           "tfm": lambda: (write_model_garden_checkpoint(checkpoint.all_tensors(), checkpoint.config,
                                                         tmp_path / "m"), tmp_path / "m")[1]}[source]()
    run = convert("--source", source, "--input", src, "--output", tmp_path / "out")
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"converted {source} checkpoint" in run.stdout

    converted = kbx.BertEncoder.from_pretrained(tmp_path / "out")
    reference = kbx.BertEncoder.from_pretrained(hf_dir)
    batch = random_batch(VOCAB)
    for ours, ref in zip(keras_outputs(converted, batch), keras_outputs(reference, batch)):
        np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert (converted.vocabulary is not None) == (source == "hf")


def _assert_clean_failure(run, output, before, *fragments):
    assert run.returncode != 0
    lines = error_lines(run)
    assert len(lines) == 1, run.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in run.stderr
    assert sorted(os.listdir(output)) == before if before is not None else not output.exists()


def test_truncated_safetensors_leaves_output_untouched(hf_dir, tmp_path):
    bad = copy_dir(hf_dir, tmp_path / "bad")
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    run = convert("--input", bad, "--output", out, "--overwrite")
    _assert_clean_failure(run, out, ["keep.txt"], "model.safetensors")
    assert (out / "keep.txt").read_text() == "precious"


def test_shape_mismatch_names_tensor_and_both_shapes(hf_dir, tmp_path):
    bad = copy_dir(hf_dir, tmp_path / "bad")
    config = json.loads((bad / "config.json").read_text())
    config["intermediate_size"] = 64
    (bad / "config.json").write_text(json.dumps(config))
    run = convert("--source", "hf", "--input", bad, "--output", tmp_path / "out")
    _assert_clean_failure(run, tmp_path / "out", None,
                          "encoder.layer.0.intermediate.dense.weight", "(48, 32)", "(64, 32)")


def test_missing_files_and_dirs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run = convert("--input", empty, "--output", tmp_path / "out")
    _assert_clean_failure(run, tmp_path / "out", None, "no BERT checkpoint found")
    run = convert("--input", tmp_path / "nowhere", "--output", tmp_path / "out")
    _assert_clean_failure(run, tmp_path / "out", None, "no such directory")


def test_non_empty_output_is_refused(hf_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    run = convert("--input", hf_dir, "--output", out)
    _assert_clean_failure(run, out, ["keep.txt"], "not empty")


# The remaining bad inputs need no subprocess: the CLI prints the same BertInputError.
def test_missing_tensor_is_named(hf_dir, tmp_path):
    from safetensors.numpy import load_file, save_file

    bad = copy_dir(hf_dir, tmp_path / "bad")
    state = load_file(bad / "model.safetensors")
    del state["encoder.layer.1.output.dense.bias"]
    save_file(state, bad / "model.safetensors")
    with pytest.raises(kbx.BertInputError, match="missing tensor 'encoder.layer.1.output.dense.bias'"):
        read_checkpoint(bad)


def test_vocab_size_mismatch(hf_dir, tmp_path):
    bad = copy_dir(hf_dir, tmp_path / "bad")
    (bad / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    with pytest.raises(kbx.BertInputError, match="2 tokens, but the config's vocab_size is 60"):
        read_checkpoint(bad)
    config = json.loads((bad / "config.json").read_text())
    config["vocab_size"] = 61
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(kbx.BertInputError, match=r"has shape \(60, 32\), the config needs \(61, 32\)"):
        read_checkpoint(bad)


def test_corrupt_tf_checkpoint(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "bert_model.ckpt.index").write_bytes(b"not an index")
    (bad / "bert_config.json").write_text(kbx.BertConfig.from_preset("bert_tiny").to_json())
    with pytest.raises(kbx.BertInputError, match="cannot read TensorFlow checkpoint"):
        read_checkpoint(bad)
