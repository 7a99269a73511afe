"""Hugging Face `BertModel` / `BertFor*` directories: config.json + safetensors or pytorch_model.bin.

Weights are read with numpy (safetensors, or our torch-free pickle reader), so conversion needs
no torch. Keys may carry the `bert.` prefix (task models) or not (a bare BertModel), and old
checkpoints name LayerNorm parameters `gamma`/`beta` instead of `weight`/`bias`.
"""

import json
import os

import numpy as np

from keras_bert_x.config import BertConfig
from keras_bert_x.convert import heads
from keras_bert_x.convert.layout import SourceTensor, encoder_tensor_shapes, read_encoder
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


def shard_files(index_path):
    """The shard paths an index names. Shards live beside the index: a name with a directory
    part (`../x`, `/etc/x`) would read a file outside the model directory, so it is refused."""
    try:
        with open(index_path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        names = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise BertInputError(f"{index_path}: not a safetensors index with a 'weight_map' "
                             f"({type(e).__name__})") from None
    for name in names:
        if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
            raise BertInputError(f"{index_path}: shard name {name!r} is not a file name in the "
                                 "model directory")
    return [os.path.join(os.path.dirname(index_path), name) for name in names]


def load_state_dict(weights_path):
    """{name: numpy array} of an HF weights file (sharded safetensors index included)."""
    if weights_path.endswith(".index.json"):
        state = {}
        for shard in shard_files(weights_path):
            state.update(_load_safetensors(shard))
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


# Tensors of HF files that hold nothing to load: buffers, and the MLM decoder tied to the
# word embeddings (checked against them in `read`).
_DECODER = "cls.predictions.decoder.weight"


def _ignorable(name):
    return name.endswith("position_ids") or name in (_DECODER, "cls.predictions.decoder.bias")


def tensor_getter(state, used=None):
    """get_tensor(name) that also tries the `bert.` prefix, old gamma/beta LayerNorm names and
    old names of the MLM bias; the keys it returned are added to `used`."""
    aliases = {"cls.predictions.bias": ["cls.predictions.decoder.bias"],
               "embeddings.word_embeddings.weight": [_DECODER]}

    def get(name):
        candidates = [name, "bert." + name]
        if "LayerNorm." in name:
            old = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
                "LayerNorm.bias", "LayerNorm.beta")
            candidates += [old, "bert." + old]
        candidates += aliases.get(name, [])
        for candidate in candidates:
            if candidate in state:
                if used is not None:
                    used.add(candidate)
                return state[candidate]
        return None

    return get


def read_config(path):
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        raise BertInputError(f"{config_path}: config file not found")
    return BertConfig.from_json_file(config_path)


def read_task_info(path):
    """(the group an HF `classifier.*` head belongs to, label names by id or None), from the
    `architectures` and `id2label` of config.json."""
    with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
        raw = json.load(f)
    architectures = raw.get("architectures") or []
    group = "cls/token_classifier" if any(a in heads.TOKEN_ARCHITECTURES
                                          for a in architectures) else "cls/classifier"
    id2label = raw.get("id2label")
    labels = None
    if isinstance(id2label, dict) and id2label:
        try:
            by_id = {int(k): str(v) for k, v in id2label.items()}
        except (TypeError, ValueError):
            by_id = {}
        if sorted(by_id) == list(range(len(by_id))):
            labels = tuple(by_id[i] for i in range(len(by_id)))
    return group, labels


def read(path):
    """(config, canonical encoder tensors, heads, other tensor groups, labels) of an HF BERT
    directory; labels (id2label) only when it has a classifier head."""
    config = read_config(path)
    classifier_group, labels = read_task_info(path)
    weights_path = find_weights_file(path)
    if weights_path is None:
        raise BertInputError(f"{path}: no {' / '.join(WEIGHT_FILES)} found")
    state = load_state_dict(weights_path)
    used = set()
    get = tensor_getter(state, used)
    tensors, found = read_encoder(config, source_map(config), get, weights_path)
    decoder = state.get(_DECODER)
    if decoder is not None and not np.array_equal(
            np.asarray(decoder, np.float32), tensors["bert/embeddings/word_embeddings"]):
        raise BertInputError(f"{weights_path}: '{_DECODER}' differs from the word embeddings; "
                             "BERT's masked-LM projection is tied to them (so is ours)")
    found.update(heads.read_heads(config, "hf", get, weights_path, classifier_group))
    classes = found.get(classifier_group, {}).get(f"{classifier_group}/output_bias")
    if classes is None or labels is None or len(labels) != len(classes):
        labels = None
    return config, tensors, found, heads.other_groups(state, used, _ignorable), labels
