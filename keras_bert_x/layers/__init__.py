"""Building blocks of the BERT encoder, one layer per file."""

from keras_bert_x.layers.attention import MultiHeadSelfAttention
from keras_bert_x.layers.dropout import Dropout
from keras_bert_x.layers.embeddings import BertEmbeddings
from keras_bert_x.layers.heads import MaskedLMHead, NextSentenceHead
from keras_bert_x.layers.pooler import BertPooler
from keras_bert_x.layers.transformer import TransformerEncoderBlock

__all__ = ["BertEmbeddings", "BertPooler", "Dropout", "MaskedLMHead", "MultiHeadSelfAttention",
           "NextSentenceHead", "TransformerEncoderBlock"]
