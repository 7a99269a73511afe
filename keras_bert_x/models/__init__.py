"""Trainable networks: the encoder and the models with heads built on it."""

from keras_bert_x.models.encoder import BertEncoder
from keras_bert_x.models.masked_lm import BertMaskedLM
from keras_bert_x.models.pretrainer import BertPretrainer

__all__ = ["BertEncoder", "BertMaskedLM", "BertPretrainer"]
