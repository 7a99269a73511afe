"""`PretrainedModel`: `save_pretrained` / `from_pretrained` for every keras_bert_x model.

Our format is a directory with `config.json` (the BertConfig fields at top level, so other BERT
tools can read it, plus a `keras_bert_x` section naming the class and its head arguments),
`vocab.txt` when the vocabulary is known, and `model.weights.h5`.

Any model class loads any directory: ours, Hugging Face, Google TF1 or Model Garden. Weights go
through the canonical layout (`keras_bert_x.models.weights`), so a `BertEncoder` can be taken
from a pretraining run's output and a `BertPretrainer` from an MLM-only checkpoint (its missing
next-sentence head starts fresh, with a warning).
"""

import json
import os

import keras

from keras_bert_x.config import BertConfig
from keras_bert_x.errors import BertInputError, first_line
from keras_bert_x.io_utils import atomic_output_dir, read_vocab, write_vocab

CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.txt"
WEIGHTS_FILE = "model.weights.h5"
FORMAT_KEY = "keras_bert_x"

# Our model classes by name, for loading a directory saved by another class.
MODEL_CLASSES = {}


def _same(a, b):
    """Head arguments compare equal as saved in JSON (lists) or given (tuples)."""
    normal = lambda x: tuple(x) if isinstance(x, (list, tuple)) else x  # noqa: E731
    return normal(a) == normal(b)


def is_our_format(path):
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(config_path):
        return False
    try:
        with open(config_path, encoding="utf-8") as f:
            return FORMAT_KEY in json.load(f)
    except (ValueError, UnicodeDecodeError):
        return False


def _read_ours(path):
    """(saved class, BertConfig, head config, lower_case) of one of our directories."""
    import keras_bert_x.models  # noqa: F401  (registers every model class)

    config_path = os.path.join(path, CONFIG_FILE)
    with open(config_path, encoding="utf-8") as f:
        data = json.load(f)
    head_config = dict(data.pop(FORMAT_KEY))
    name = head_config.pop("class", None)
    lower_case = head_config.pop("lower_case", None)
    if name not in MODEL_CLASSES:
        raise BertInputError(f"{config_path}: unknown model class {name!r}")
    return (MODEL_CLASSES[name], BertConfig.from_dict(data, source=config_path), head_config,
            lower_case)


def read_pretrained(path, source=None):
    """A `keras_bert_x.convert.Checkpoint` of any directory we load, our own format included."""
    from keras_bert_x.convert import Checkpoint, read_checkpoint

    path = os.fspath(path)
    if not os.path.isdir(path):
        raise BertInputError(f"{path}: no such directory")
    if source not in (None, FORMAT_KEY) or not is_our_format(path):
        return read_checkpoint(path, source=source)
    from keras_bert_x.models.weights import encoder_weights, head_weights

    saved_class, config, head_config, lower_case = _read_ours(path)
    model = saved_class._load_ours(path, saved_class, config, head_config, dtype=None)
    labels = getattr(model, "labels", None)
    return Checkpoint(config=config, tensors=encoder_weights(getattr(model, "encoder", model)),
                      source=FORMAT_KEY, vocabulary=model.vocabulary, lower_case=lower_case,
                      heads=head_weights(model), labels=tuple(labels) if labels else None,
                      head_options=model._head_options())


class PretrainedModel(keras.Model):
    """Base for models that save and load as a directory (see module docstring).

    Subclasses implement `_new(config, head_config, dtype)` (a fresh model of that shape) and,
    if they carry head arguments, `_head_config()`.
    """

    # Tokens of the WordPiece vocabulary the weights were trained with, and whether their text
    # was lower-cased (uncased) or not, when known.
    vocabulary = None
    lower_case = None

    def __setattr__(self, name, value):
        # Plain data, stored as given: Keras's attribute tracking would walk (and copy) a 30k
        # token vocabulary element by element, ~0.07 s per assignment (two per fine-tuning),
        # looking for layers or variables it cannot hold.
        if name in ("vocabulary", "lower_case"):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        MODEL_CLASSES[cls.__name__] = cls

    def _head_config(self):
        return {}

    def _head_options(self):
        """`Checkpoint.head_options` of this model's heads."""
        return {}

    @classmethod
    def _new(cls, config, head_config, dtype=None):
        return cls(config, dtype=dtype, **head_config)

    @classmethod
    def _head_config_from(cls, checkpoint):
        """Head arguments a checkpoint implies (a classifier's classes and labels)."""
        return {}

    def save_pretrained(self, path, overwrite=False, format=FORMAT_KEY):
        """Writes config.json, vocab.txt (if known) and model.weights.h5 into `path`, atomically.

        With `overwrite`, an existing directory is replaced only if it is one of ours.
        `format="keras_hub"` writes a keras-hub preset instead (`BertBackbone.from_preset`,
        `BertMaskedLM` / `BertTextClassifier` for head models; see
        `keras_bert_x.convert.keras_hub.write`), and returns how far keras-hub's outputs are
        from this model's on a probe batch.
        """
        if format == "keras_hub":
            from keras_bert_x.convert import keras_hub

            return keras_hub.write(self, path, overwrite=overwrite)
        if format != FORMAT_KEY:
            raise ValueError(f"format must be {FORMAT_KEY!r} or 'keras_hub', got {format!r}")
        with atomic_output_dir(path, overwrite=overwrite, replaceable=is_our_format) as tmp:
            data = self.config.to_dict()
            data[FORMAT_KEY] = {"class": type(self).__name__, **self._head_config()}
            if self.lower_case is not None:
                data[FORMAT_KEY]["lower_case"] = bool(self.lower_case)
            with open(os.path.join(tmp, CONFIG_FILE), "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2, sort_keys=True)
            if self.vocabulary is not None:
                write_vocab(os.path.join(tmp, VOCAB_FILE), self.vocabulary)
            self.save_weights(os.path.join(tmp, WEIGHTS_FILE))

    @classmethod
    def from_pretrained(cls, path, dtype=None, source=None, **head_config):
        """Loads our format, or converts a Hugging Face / Google TF1 / Model Garden checkpoint
        or a keras-hub preset.

        `source` ("hf", "google", "tfm", "keras_hub") forces the layout; by default it is
        detected.
        `head_config` gives head arguments the directory does not (`num_classes`, `labels`
        of a classifier started on a plain encoder); a head it has must agree with them.
        """
        path = os.fspath(path)
        if source is None and os.path.isdir(path) and is_our_format(path):
            saved_class, config, saved_head_config, lower_case = _read_ours(path)
            if saved_class is cls and all(_same(saved_head_config.get(k), v)
                                          for k, v in head_config.items()):
                model = cls._load_ours(path, cls, config, saved_head_config, dtype)
                model.lower_case = lower_case
                return model
        return cls.from_checkpoint(read_pretrained(path, source), dtype=dtype, where=path,
                                   **head_config)

    @classmethod
    def from_checkpoint(cls, checkpoint, dtype=None, where=None, **head_config):
        """Builds the model from a `keras_bert_x.convert.Checkpoint` (any format's tensors)."""
        from keras_bert_x.models.weights import load_checkpoint_weights

        where = where or f"{checkpoint.source} checkpoint"
        checkpoint, fresh = cls._fit_head(checkpoint, head_config, where)
        implied = cls._head_config_from(checkpoint)
        if head_config:  # the caller's labels or count decide
            implied = {k: v for k, v in implied.items()
                       if k not in ("num_classes", "num_labels", "labels")}
        model = cls._new(checkpoint.config, {**implied, **head_config}, dtype=dtype)
        load_checkpoint_weights(model, checkpoint, where, already_reported=fresh)
        model.vocabulary, model.lower_case = checkpoint.vocabulary, checkpoint.lower_case
        return model

    @classmethod
    def _fit_head(cls, checkpoint, head_config, where):
        """(checkpoint, groups whose fresh start was reported): a class with a labelled head
        fits the checkpoint's to the labels asked for (see `head_model.fit_label_head`)."""
        return checkpoint, ()

    @staticmethod
    def _load_ours(path, saved_class, config, head_config, dtype):
        model = saved_class._new(config, head_config, dtype=dtype)
        weights_path = os.path.join(path, WEIGHTS_FILE)
        if not os.path.isfile(weights_path):
            raise BertInputError(f"{weights_path}: weights file not found")
        try:
            model.load_weights(weights_path)
        except (ValueError, OSError, KeyError) as e:
            raise BertInputError(f"{weights_path}: cannot load weights ({first_line(e)})") from None
        vocab_path = os.path.join(path, VOCAB_FILE)
        if os.path.isfile(vocab_path):
            model.vocabulary = read_vocab(vocab_path)
        return model
