"""Checkpoint import: Hugging Face, Google TF1 and Model Garden BERT weights into our models.

Command line: `python -m keras_bert_x.convert --source {hf,google,tfm} --input DIR --output DIR`.
"""

from keras_bert_x.convert.converter import convert_checkpoint
from keras_bert_x.convert.layout import assign_encoder_weights, encoder_weights
from keras_bert_x.convert.reader import SOURCES, Checkpoint, read_checkpoint

__all__ = ["SOURCES", "Checkpoint", "assign_encoder_weights", "convert_checkpoint", "encoder_weights",
           "read_checkpoint"]
