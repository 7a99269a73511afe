"""Weight files are untrusted input: truncated or crafted files are refused with one line that
names the tensor or file, nothing outside the model directory is read, and `--overwrite` never
deletes a folder that is not one of our model directories."""

import json
import os
import zipfile

import pytest
import torch
import transformers

import keras_bert_x as kbx
from keras_bert_x.convert import read_checkpoint
from keras_bert_x.convert.torch_pickle import load_torch_state_dict
from tests.convert.test_cli import convert, error_lines
from tests.helpers import copy_dir


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory):
    """A random-init HF BertModel saved as pytorch_model.bin (torch's zip format)."""
    path = tmp_path_factory.mktemp("bin")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=24,
                                  max_position_embeddings=12)
    model = transformers.BertModel(cfg)
    cfg.save_pretrained(path)
    torch.save(model.state_dict(), path / "pytorch_model.bin")
    return path


def _rewrite_zip(path, change):
    """Rewrites the zip at `path`, passing each (name, bytes) through `change`."""
    with zipfile.ZipFile(path) as z:
        members = [(info.filename, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(name, change(name, data))


def test_clean_bin_file_loads(bin_dir):
    assert read_checkpoint(bin_dir).config.hidden_size == 16


def test_storage_shorter_than_its_tensors_is_refused(bin_dir, tmp_path):
    bad = copy_dir(bin_dir, tmp_path / "bad")
    state = torch.load(bad / "pytorch_model.bin")
    name = "embeddings.word_embeddings.weight"
    # Which storage file holds the embedding table: cut that one to a quarter.
    with zipfile.ZipFile(bad / "pytorch_model.bin") as z:
        sizes = {n: z.getinfo(n).file_size for n in z.namelist() if "/data/" in n}
    table_bytes = state[name].numel() * 4
    victim = next(n for n, size in sizes.items() if size == table_bytes)
    _rewrite_zip(bad / "pytorch_model.bin",
                 lambda n, data: data[: len(data) // 4] if n == victim else data)
    with pytest.raises(kbx.BertInputError, match=f"tensor '{name}' reads elements up to 640 but "
                                                 "its storage holds 160"):
        load_torch_state_dict(str(bad / "pytorch_model.bin"))
    run = convert("--input", bad, "--output", tmp_path / "out")
    assert run.returncode == 1 and len(error_lines(run)) == 1, run.stderr[-2000:]
    assert name in error_lines(run)[0] and not (tmp_path / "out").exists()


def test_crafted_shape_cannot_ask_for_a_huge_copy(tmp_path):
    """Stride 0 keeps every read inside a one-element storage while the shape asks for 10^12
    elements (4 TB): refused before any copy."""
    path = tmp_path / "pytorch_model.bin"
    torch.save({"x": torch.zeros(1).expand(1_000_000, 1_000_000)}, path)
    with pytest.raises(kbx.BertInputError, match="tensor 'x' has 1000000000000 elements but its "
                                                 "storage holds 1"):
        load_torch_state_dict(str(path))


def test_zip_bomb_storage_is_refused(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    torch.save({"x": torch.zeros(4_000_000)}, path)  # 16 MB of zeros compress 1000-fold
    with zipfile.ZipFile(path) as z:
        members = [(info.filename, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    with pytest.raises(kbx.BertInputError, match="expands 16000000 bytes from"):
        load_torch_state_dict(str(path))


def test_code_in_the_pickle_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "pytorch_model.bin"
    torch.save({"x": Payload()}, path)
    with pytest.raises(kbx.BertInputError, match="refusing to load global"):
        load_torch_state_dict(str(path))


@pytest.mark.parametrize("shard", ["../outside.safetensors", "/etc/passwd",
                                   "sub/model.safetensors"])
def test_shard_names_outside_the_directory_are_refused(tmp_path, shard):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=24).save_pretrained(model_dir)
    (tmp_path / "outside.safetensors").write_bytes(b"not read")
    (model_dir / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {"embeddings.word_embeddings.weight": shard}}))
    with pytest.raises(kbx.BertInputError, match="is not a file name in the model directory"):
        read_checkpoint(model_dir)


def test_overwrite_refuses_a_folder_that_is_not_ours(bin_dir, tmp_path):
    folder = tmp_path / "my_thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("precious")
    run = convert("--input", bin_dir, "--output", folder, "--overwrite")
    assert run.returncode == 1 and len(error_lines(run)) == 1, run.stderr[-2000:]
    assert "not a keras_bert_x model directory" in error_lines(run)[0]
    assert sorted(os.listdir(folder)) == ["chapter1.tex"]
    # Not even the input itself (an HF directory has a config.json too, but not ours).
    before = sorted(os.listdir(bin_dir))
    run = convert("--input", bin_dir, "--output", bin_dir, "--overwrite")
    assert run.returncode == 1 and sorted(os.listdir(bin_dir)) == before
    # One of ours is replaced.
    assert convert("--input", bin_dir, "--output", tmp_path / "ours").returncode == 0
    run = convert("--input", bin_dir, "--output", tmp_path / "ours", "--overwrite")
    assert run.returncode == 0, run.stderr[-2000:]
