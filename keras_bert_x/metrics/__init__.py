"""Task metrics computed as the benchmarks compute them: classification and regression scores,
entity F1 (seqeval), SQuAD exact match and F1 (the official normalisation)."""

from keras_bert_x.metrics.classification import (accuracy, macro_f1, matthews_corrcoef,
                                                 pearson, spearman)
from keras_bert_x.metrics.entities import entity_scores
from keras_bert_x.metrics.squad import squad_scores

__all__ = ["accuracy", "entity_scores", "macro_f1", "matthews_corrcoef", "pearson", "spearman",
           "squad_scores"]
