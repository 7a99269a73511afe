"""keras_bert_x: BERT as Keras 3 layers, from raw text to a served model.

>>> import keras_bert_x as kbx
>>> enc = kbx.BertEncoder(kbx.BertConfig.from_preset("bert_tiny"))
"""

from keras_bert_x.config import PRESETS, BertConfig
from keras_bert_x.errors import BertInputError
from keras_bert_x.models.encoder import BertEncoder
from keras_bert_x.models.pretrainer import BertPretrainer

__version__ = "0.1.0"
__all__ = ["PRESETS", "BertConfig", "BertEncoder", "BertInputError", "BertPretrainer",
           "BertTokenizer"]


def __getattr__(name):
    # The tokenizer needs TensorFlow and tf-text; import them only when it is asked for, so the
    # models stay importable under other Keras backends.
    if name == "BertTokenizer":
        from keras_bert_x.text.tokenizer import BertTokenizer

        return BertTokenizer
    raise AttributeError(f"module 'keras_bert_x' has no attribute {name!r}")
