"""`PretrainedModel`: `save_pretrained` / `from_pretrained` for every keras_bert_x model.

Our format is a directory with `config.json` (the BertConfig fields at top level, so other BERT
tools can read it, plus a `keras_bert_x` section naming the class and its head arguments),
`vocab.txt` when the vocabulary is known, and `model.weights.h5`.
"""

import json
import os

import keras

from keras_bert_x.config import BertConfig
from keras_bert_x.errors import BertInputError
from keras_bert_x.io_utils import atomic_output_dir, read_vocab, write_vocab

CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.txt"
WEIGHTS_FILE = "model.weights.h5"
FORMAT_KEY = "keras_bert_x"


def is_our_format(path):
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(config_path):
        return False
    try:
        with open(config_path, encoding="utf-8") as f:
            return FORMAT_KEY in json.load(f)
    except (ValueError, UnicodeDecodeError):
        return False


class PretrainedModel(keras.Model):
    """Base for models that save and load as a directory (see module docstring).

    Subclasses implement `_from_checkpoint(checkpoint, dtype)` (weights converted from another
    format) and, if they carry head arguments, `_head_config()` / `_from_saved(...)`.
    """

    # Tokens of the WordPiece vocabulary the weights were trained with, when known.
    vocabulary = None

    def _head_config(self):
        return {}

    @classmethod
    def _from_saved(cls, config, head_config, dtype=None):
        return cls(config, dtype=dtype, **head_config)

    def save_pretrained(self, path, overwrite=False):
        """Writes config.json, vocab.txt (if known) and model.weights.h5 into `path`, atomically."""
        with atomic_output_dir(path, overwrite=overwrite) as tmp:
            data = self.config.to_dict()
            data[FORMAT_KEY] = {"class": type(self).__name__, **self._head_config()}
            with open(os.path.join(tmp, CONFIG_FILE), "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2, sort_keys=True)
            if self.vocabulary is not None:
                write_vocab(os.path.join(tmp, VOCAB_FILE), self.vocabulary)
            self.save_weights(os.path.join(tmp, WEIGHTS_FILE))

    @classmethod
    def from_pretrained(cls, path, dtype=None):
        """Loads our format, or converts a Hugging Face / Google TF1 / Model Garden checkpoint."""
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise BertInputError(f"{path}: no such directory")
        if is_our_format(path):
            model = cls._load_ours(path, dtype)
        else:
            from keras_bert_x.convert import read_checkpoint

            model = cls.from_checkpoint(read_checkpoint(path), dtype=dtype)
        return model

    @classmethod
    def from_checkpoint(cls, checkpoint, dtype=None):
        """Builds the model from a `keras_bert_x.convert.Checkpoint` read from another format."""
        model = cls._from_checkpoint(checkpoint, dtype=dtype)
        model.vocabulary = checkpoint.vocabulary
        return model

    @classmethod
    def _load_ours(cls, path, dtype):
        config_path = os.path.join(path, CONFIG_FILE)
        with open(config_path, encoding="utf-8") as f:
            data = json.load(f)
        head_config = dict(data.pop(FORMAT_KEY))
        saved_class = head_config.pop("class", cls.__name__)
        if saved_class != cls.__name__:
            raise BertInputError(f"{config_path}: holds a {saved_class}, not a {cls.__name__}")
        config = BertConfig.from_dict(data, source=config_path)
        model = cls._from_saved(config, head_config, dtype=dtype)
        weights_path = os.path.join(path, WEIGHTS_FILE)
        if not os.path.isfile(weights_path):
            raise BertInputError(f"{weights_path}: weights file not found")
        try:
            model.load_weights(weights_path)
        except (ValueError, OSError, KeyError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BertInputError(f"{weights_path}: cannot load weights ({first_line})") from None
        vocab_path = os.path.join(path, VOCAB_FILE)
        if os.path.isfile(vocab_path):
            model.vocabulary = read_vocab(vocab_path)
        return model
