"""Building blocks of the BERT encoder, one layer per file."""

from keras_bert_x.layers.attention import MultiHeadSelfAttention
from keras_bert_x.layers.embeddings import BertEmbeddings
from keras_bert_x.layers.heads import MaskedLMHead, NextSentenceHead
from keras_bert_x.layers.pooler import BertPooler
from keras_bert_x.layers.transformer import TransformerEncoderBlock

__all__ = ["BertEmbeddings", "BertPooler", "MaskedLMHead", "MultiHeadSelfAttention",
           "NextSentenceHead", "TransformerEncoderBlock"]
