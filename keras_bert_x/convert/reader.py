"""`read_checkpoint`: one entry point for every checkpoint layout we load."""

import dataclasses
import os
from typing import Optional

from keras_bert_x.config import BertConfig
from keras_bert_x.errors import BertInputError
from keras_bert_x.io_utils import read_vocab

SOURCES = ("hf", "google", "tfm", "keras_hub")


@dataclasses.dataclass
class Checkpoint:
    config: BertConfig
    tensors: dict                      # the encoder's: canonical (Google) name -> float32 array
    source: str                        # one of SOURCES, or "keras_bert_x"
    vocabulary: Optional[tuple] = None
    heads: dict = dataclasses.field(default_factory=dict)   # head group -> {canonical: array}
    other: tuple = ()                  # groups of tensors that are neither (listed, not loaded)
    labels: Optional[tuple] = None     # class / tag names of a classifier head, by id
    lower_case: Optional[bool] = None  # whether the vocabulary is uncased, when the files say
    # Arguments of a head that differ from what the config implies: {group: {argument: value}}
    # (keras-hub's masked-LM head: {"cls/predictions": {"activation", "layer_norm_eps"}}).
    head_options: dict = dataclasses.field(default_factory=dict)

    def all_tensors(self):
        """{canonical name: array} of everything read: the encoder's, the pooler's, the heads'."""
        out = dict(self.tensors)
        for group in self.heads.values():
            out.update(group)
        return out


def detect_source(path):
    """One of SOURCES from the files in `path`; BertInputError if none fits."""
    from keras_bert_x.convert import google, hf, keras_hub, tf_checkpoint, tfm

    if keras_hub.is_preset(path):
        return "keras_hub"
    if hf.find_weights_file(path):
        return "hf"
    prefix = tf_checkpoint.find_checkpoint_prefix(path)
    if prefix is not None:
        _, shapes = tf_checkpoint.open_checkpoint(prefix)
        if google.MARKER in shapes:
            return "google"
        if tfm.find_root(shapes) is not None:
            return "tfm"
        raise BertInputError(f"{prefix}: neither a Google BERT nor a Model Garden BertEncoder "
                             "checkpoint (no embedding table found)")
    raise BertInputError(f"{path}: no BERT checkpoint found (expected model.safetensors, "
                         "pytorch_model.bin, a TensorFlow checkpoint with bert_config.json, "
                         "or a keras-hub preset)")


def _read_vocabulary(path, config):
    vocab_path = os.path.join(path, "vocab.txt")
    if not os.path.isfile(vocab_path):
        return None
    tokens = read_vocab(vocab_path)
    if len(tokens) != config.vocab_size:
        raise BertInputError(f"{vocab_path}: {len(tokens)} tokens, but the config's vocab_size "
                             f"is {config.vocab_size}")
    return tokens


def _read_lower_case(path):
    """`do_lower_case` of an HF tokenizer_config.json beside the weights, or None."""
    import json

    config_path = os.path.join(path, "tokenizer_config.json")
    try:
        with open(config_path, encoding="utf-8") as f:
            value = json.load(f).get("do_lower_case")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, bool) else None


def read_checkpoint(path, source=None):
    """Reads the encoder tensors of a HF, Google TF1, Model Garden checkpoint directory or a
    keras-hub preset.

    `source` forces the layout; by default it is detected from the files present.
    """
    from keras_bert_x.convert import google, hf, keras_hub, tfm

    path = os.fspath(path)
    if not os.path.isdir(path):
        raise BertInputError(f"{path}: no such directory")
    source = source or detect_source(path)
    if source == "keras_hub":
        config, tensors, found, options, vocabulary, lower_case = keras_hub.read(path)
        return Checkpoint(config=config, tensors=tensors, source=source, vocabulary=vocabulary,
                          heads=found, lower_case=lower_case, head_options=options)
    found, other, labels = {}, (), None
    if source == "hf":
        config, tensors, found, other, labels = hf.read(path)
    elif source == "google":
        config, tensors, found, other = google.read(path)
    elif source == "tfm":  # Model Garden heads are not read: they start fresh (with a warning)
        config, tensors, found = tfm.read(path)
    else:
        raise BertInputError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    return Checkpoint(config=config, tensors=tensors, source=source,
                      vocabulary=_read_vocabulary(path, config), heads=found, other=other,
                      labels=labels, lower_case=_read_lower_case(path))
