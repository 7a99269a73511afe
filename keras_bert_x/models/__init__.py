"""Trainable networks: the encoder and (in later modules) the heads built on it."""

from keras_bert_x.models.encoder import BertEncoder

__all__ = ["BertEncoder"]
