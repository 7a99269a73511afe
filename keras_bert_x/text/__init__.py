"""Text handling: the in-graph WordPiece tokenizer and vocabulary training."""

from keras_bert_x.text.tokenizer import RESERVED_TOKENS, BertTokenizer, load_vocabulary

__all__ = ["RESERVED_TOKENS", "BertTokenizer", "load_vocabulary"]
