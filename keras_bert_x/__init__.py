"""keras_bert_x: BERT as Keras 3 layers, from raw text to a served model.

>>> import keras_bert_x as kbx
>>> enc = kbx.BertEncoder(kbx.BertConfig.from_preset("bert_tiny"))
"""

import importlib

from keras_bert_x.config import PRESETS, BertConfig
from keras_bert_x.errors import BertInputError

__version__ = "0.1.0"

# Names that need Keras/TensorFlow are imported when first asked for: importing the package
# stays cheap and side-effect free, so a command line can quiet TensorFlow's start-up logs
# before TensorFlow loads, and the models stay importable under other Keras backends.
_LAZY = {**{name: "keras_bert_x.models" for name in (
    "BertClassifier", "BertEncoder", "BertMaskedLM", "BertPretrainer", "BertSpanQA",
    "BertTokenClassifier")}, "BertTokenizer": "keras_bert_x.text.tokenizer"}

__all__ = ["PRESETS", "BertConfig", "BertInputError", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_bert_x' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
