"""Trainable networks: the encoder and the models with heads built on it."""

from keras_bert_x.models.classifier import BertClassifier
from keras_bert_x.models.encoder import BertEncoder
from keras_bert_x.models.masked_lm import BertMaskedLM
from keras_bert_x.models.pretrainer import BertPretrainer
from keras_bert_x.models.span_qa import BertSpanQA
from keras_bert_x.models.token_classifier import BertTokenClassifier

__all__ = ["BertClassifier", "BertEncoder", "BertMaskedLM", "BertPretrainer", "BertSpanQA",
           "BertTokenClassifier"]
