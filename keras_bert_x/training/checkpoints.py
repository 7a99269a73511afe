"""Checkpoints for resumable training, initial weights, and stopping cleanly on SIGTERM."""

import json
import os
import signal

import tensorflow as tf

from keras_bert_x.config import BertConfig
from keras_bert_x.errors import BertInputError

SHAPE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "max_position_embeddings", "type_vocab_size")


def check_same_shape(theirs, ours, where):
    for field in SHAPE_FIELDS:
        if getattr(theirs, field) != getattr(ours, field):
            raise BertInputError(f"{where}: {field} is {getattr(theirs, field)} but the training "
                                 f"config has {getattr(ours, field)}")


def initialize_from(path, pretrainer):
    """Loads encoder (and, when present, head) weights into `pretrainer` from any format."""
    from keras_bert_x.convert.heads import assign_head_weights, read_head_tensors
    from keras_bert_x.convert.layout import assign_encoder_weights
    from keras_bert_x.convert.reader import read_checkpoint
    from keras_bert_x.models.pretrained import CONFIG_FILE, FORMAT_KEY, WEIGHTS_FILE, is_our_format

    if not os.path.isdir(path):
        raise BertInputError(f"--init_checkpoint={path}: no such directory")
    if is_our_format(path):
        with open(os.path.join(path, CONFIG_FILE), encoding="utf-8") as f:
            data = json.load(f)
        kind = data.pop(FORMAT_KEY).get("class")
        check_same_shape(BertConfig.from_dict(data, source=path), pretrainer.config, path)
        target = pretrainer if kind == "BertPretrainer" else pretrainer.encoder
        try:
            target.load_weights(os.path.join(path, WEIGHTS_FILE))
        except (ValueError, OSError) as e:
            raise BertInputError(f"{path}: cannot load weights ({str(e).splitlines()[0]})") from None
        return "encoder and heads" if target is pretrainer else "encoder"
    checkpoint = read_checkpoint(path)
    check_same_shape(checkpoint.config, pretrainer.config, path)
    assign_encoder_weights(pretrainer.encoder, checkpoint.tensors)
    try:
        assign_head_weights(pretrainer, read_head_tensors(checkpoint, path))
        return "encoder and heads"
    except BertInputError:
        return "encoder (heads start fresh)"


class CheckpointKeeper:
    """tf.train.CheckpointManager over model, optimizer and step, with worker-aware paths.

    Under MultiWorkerMirroredStrategy every worker must save (the save is collective); only the
    chief writes into `directory`, the others into a scratch folder removed afterwards.
    """

    def __init__(self, directory, max_to_keep, is_chief, task_id=0, **trackables):
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self.is_chief = is_chief
        self.directory = directory
        target = directory if is_chief else os.path.join(directory, f".worker-{task_id}-scratch")
        self.manager = tf.train.CheckpointManager(self.checkpoint, target, max_to_keep=max_to_keep)

    @property
    def latest(self):
        """The chief's latest checkpoint: every worker resumes from the same one."""
        return tf.train.latest_checkpoint(self.directory)

    def restore_latest(self):
        if self.latest:
            self.checkpoint.restore(self.latest).assert_existing_objects_matched()
        return self.latest

    def save(self, step):
        path = self.manager.save(checkpoint_number=step)
        if not self.is_chief:
            tf.io.gfile.rmtree(self.manager.directory)
        return path


class StopFlag:
    """Set by SIGTERM (preemption, `kill`); the loop saves a checkpoint and exits."""

    def __init__(self):
        self.requested = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.requested = True
