"""Google's TF1 BERT checkpoints (google-research/bert): bert_config.json + bert_model.ckpt.*.

Their variable names are our canonical names, and their kernels are already [in, out].
"""

from keras_bert_x.convert import tf_checkpoint
from keras_bert_x.convert.layout import SourceTensor, encoder_tensor_shapes, gather_tensors

MARKER = "bert/embeddings/word_embeddings"


def source_map(config):
    return {name: SourceTensor(name, shape) for name, shape in encoder_tensor_shapes(config).items()}


def read(path):
    """(config, canonical tensors, getter for any other tensor) of a Google TF1 BERT directory."""
    config, prefix, _, get = tf_checkpoint.open_directory(path)
    return config, gather_tensors(config, source_map(config), get, prefix), get
