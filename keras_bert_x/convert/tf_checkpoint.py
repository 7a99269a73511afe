"""Finding and reading TensorFlow checkpoints (Google TF1 and Model Garden TF2) in a directory."""

import glob
import os

from keras_bert_x.errors import BertInputError, first_line


def find_checkpoint_prefix(path):
    """The checkpoint prefix in `path` (from its `checkpoint` file, else the one `*.index`)."""
    import tensorflow as tf

    try:
        latest = tf.train.latest_checkpoint(path)
    except (tf.errors.OpError, ValueError):
        latest = None
    if latest:
        return latest
    indexes = sorted(glob.glob(os.path.join(path, "*.index")))
    if len(indexes) > 1:
        raise BertInputError(f"{path}: several checkpoints ({', '.join(map(os.path.basename, indexes))}); "
                             "keep one or add a 'checkpoint' file naming it")
    return indexes[0][: -len(".index")] if indexes else None


def open_checkpoint(prefix):
    """(reader, {variable name: shape}) for a checkpoint prefix; BertInputError if unreadable."""
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
        return reader, reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as e:
        raise BertInputError(f"{prefix}: cannot read TensorFlow checkpoint ({first_line(e)})") from None


def tensor_getter(reader, shapes, prefix):
    import tensorflow as tf

    def get(name):
        if name not in shapes:
            return None
        try:
            return reader.get_tensor(name)
        except tf.errors.OpError as e:
            raise BertInputError(f"{prefix}: cannot read tensor '{name}' ({type(e).__name__})") from None

    return get


def read_bert_config(path):
    """Google and Model Garden directories carry `bert_config.json` (some name it `config.json`)."""
    from keras_bert_x.config import BertConfig

    for name in ("bert_config.json", "config.json"):
        if os.path.isfile(os.path.join(path, name)):
            return BertConfig.from_json_file(os.path.join(path, name))
    raise BertInputError(f"{os.path.join(path, 'bert_config.json')}: config file not found")


def open_directory(path):
    """(config, prefix, {name: shape}, get_tensor) of a directory with a TF checkpoint."""
    config = read_bert_config(path)
    prefix = find_checkpoint_prefix(path)
    if prefix is None:
        raise BertInputError(f"{path}: no TensorFlow checkpoint (*.index) found")
    reader, shapes = open_checkpoint(prefix)
    return config, prefix, shapes, tensor_getter(reader, shapes, prefix)
