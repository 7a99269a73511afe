"""Checkpoint reading: Hugging Face, Google TF1 and Model Garden BERT weights as canonical tensors.

Readers only produce tensors (`Checkpoint`); putting them into our layers is
`keras_bert_x.models.weights`. Command line: `python -m keras_bert_x.convert --source
{hf,google,tfm} --input DIR --output DIR`.
"""

from keras_bert_x.convert.reader import SOURCES, Checkpoint, read_checkpoint

__all__ = ["SOURCES", "Checkpoint", "read_checkpoint"]
