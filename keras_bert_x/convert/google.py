"""Google's TF1 BERT checkpoints (google-research/bert): bert_config.json + bert_model.ckpt.*.

Their variable names are our canonical names, and their kernels are already [in, out].
"""

from keras_bert_x.convert import heads, tf_checkpoint
from keras_bert_x.convert.layout import SourceTensor, encoder_tensor_shapes, read_encoder

MARKER = "bert/embeddings/word_embeddings"


def source_map(config):
    return {name: SourceTensor(name, shape) for name, shape in encoder_tensor_shapes(config).items()}


def _ignorable(name):
    """Training state saved beside the weights: the step counter and optimizer slots."""
    return (name == "global_step" or name.endswith(("/adam_m", "/adam_v"))
            or name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH"))


def read(path):
    """(config, canonical encoder tensors, heads, other tensor groups) of a Google TF1 directory."""
    config, prefix, shapes, get = tf_checkpoint.open_directory(path)
    used = set()

    def get_and_record(name):
        value = get(name)
        if value is not None:
            used.add(name)
        return value

    tensors, found = read_encoder(config, source_map(config), get_and_record, prefix)
    found.update(heads.read_heads(config, "google", get_and_record, prefix))
    return config, tensors, found, heads.other_groups(shapes, used, _ignorable)
