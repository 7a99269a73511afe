"""Hugging Face `BertModel` / `BertFor*` directories: config.json + safetensors or pytorch_model.bin.

Weights are read with numpy (safetensors, or our torch-free pickle reader), so conversion needs
no torch. Keys may carry the `bert.` prefix (task models) or not (a bare BertModel), and old
checkpoints name LayerNorm parameters `gamma`/`beta` instead of `weight`/`bias`.
"""

import json
import os

from keras_bert_x.config import BertConfig
from keras_bert_x.convert.layout import SourceTensor, encoder_tensor_shapes, gather_tensors
from keras_bert_x.errors import BertInputError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def find_weights_file(path):
    for name in WEIGHT_FILES:
        if os.path.isfile(os.path.join(path, name)):
            return os.path.join(path, name)
    return None


def _load_safetensors(path):
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise BertInputError(f"{path}: cannot read safetensors file ({e})") from None


def load_state_dict(weights_path):
    """{name: numpy array} of an HF weights file (sharded safetensors index included)."""
    if weights_path.endswith(".index.json"):
        with open(weights_path, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state = {}
        for shard in shards:
            state.update(_load_safetensors(os.path.join(os.path.dirname(weights_path), shard)))
        return state
    if weights_path.endswith(".safetensors"):
        return _load_safetensors(weights_path)
    from keras_bert_x.convert.torch_pickle import load_torch_state_dict

    return load_torch_state_dict(weights_path)


def _hf_name(canonical):
    """Canonical (Google) name -> HF name without the `bert.` prefix, and whether to transpose."""
    name = canonical[len("bert/"):]
    name = name.replace("encoder/layer_", "encoder/layer/").replace("/", ".")
    for google, torch_name in (("kernel", "weight"), ("gamma", "weight"), ("beta", "bias")):
        if name.endswith("." + google):
            name = name[: -len(google)] + torch_name
    if name.endswith("_embeddings"):
        name += ".weight"
    return name, canonical.endswith("/kernel")


def source_map(config):
    """{canonical: SourceTensor} for an HF BertModel of `config` (names without prefix)."""
    out = {}
    for canonical, shape in encoder_tensor_shapes(config).items():
        name, transpose = _hf_name(canonical)
        out[canonical] = SourceTensor(name, tuple(reversed(shape)) if transpose else shape,
                                      "transpose" if transpose else "identity")
    return out


def tensor_getter(state):
    """get_tensor(name) that also tries the `bert.` prefix and old gamma/beta LayerNorm names."""

    def get(name):
        candidates = [name, "bert." + name]
        if "LayerNorm." in name:
            old = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
                "LayerNorm.bias", "LayerNorm.beta")
            candidates += [old, "bert." + old]
        for candidate in candidates:
            if candidate in state:
                return state[candidate]
        return None

    return get


def read_config(path):
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        raise BertInputError(f"{config_path}: config file not found")
    return BertConfig.from_json_file(config_path)


def read(path):
    """(config, canonical tensors, state dict) of an HF BERT directory."""
    config = read_config(path)
    weights_path = find_weights_file(path)
    if weights_path is None:
        raise BertInputError(f"{path}: no {' / '.join(WEIGHT_FILES)} found")
    state = load_state_dict(weights_path)
    tensors = gather_tensors(config, source_map(config), tensor_getter(state), weights_path)
    return config, tensors, state
