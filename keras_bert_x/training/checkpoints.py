"""Checkpoints for resumable training, initial weights, and stopping cleanly on SIGTERM and
Ctrl-C (SIGINT)."""

import os
import signal
import sys
import threading

import tensorflow as tf

from keras_bert_x.errors import BertInputError

SHAPE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "max_position_embeddings", "type_vocab_size")


def check_same_shape(theirs, ours, where):
    for field in SHAPE_FIELDS:
        if getattr(theirs, field) != getattr(ours, field):
            raise BertInputError(f"{where}: {field} is {getattr(theirs, field)} but the training "
                                 f"config has {getattr(ours, field)}")


def initialize_from(path, model):
    """Loads the encoder and the heads `model` has from any format `from_pretrained` reads; a
    head the checkpoint lacks stays freshly initialised (one warning line names it)."""
    from keras_bert_x.models.pretrained import read_pretrained
    from keras_bert_x.models.weights import load_checkpoint_weights

    if not os.path.isdir(path):
        raise BertInputError(f"--init_checkpoint={path}: no such directory")
    checkpoint = read_pretrained(path)
    check_same_shape(checkpoint.config, model.config, path)
    return load_checkpoint_weights(model, checkpoint, path)


def random_states(model):
    """The state variables of the model's dropout seed generators.

    Keras keeps them out of what `tf.train.Checkpoint(model=...)` tracks; saving them makes a
    resumed run draw the same dropout masks as an uninterrupted one.
    """
    return [v.value for v in model.variables if v.path.endswith("seed_generator_state")]


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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, honoured by the training loop after it saved a checkpoint (and said so)."""


class StopFlag:
    """Set by SIGTERM (preemption, `kill`) or SIGINT (Ctrl-C); the loop saves a checkpoint and
    exits. Ctrl-C is a flag too, not Python's KeyboardInterrupt: that is raised wherever the
    main thread is when the signal comes, and in a TensorFlow loop that is often a finalizer
    (a tensor's or a resource's `__del__`), where Python prints "Exception ignored" and drops
    it, so the Ctrl-C was lost. A second Ctrl-C stops the process at once (exit 130, nothing
    more saved). A context manager: the previous handlers come back on exit. Off the main
    thread (where Python delivers no signals) it installs nothing and is never set."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)
    KINDS = (None, "SIGTERM", "SIGINT")  # workers agree on the last of these any one saw

    def __init__(self):
        self.requested = None  # the signal's name, "SIGTERM" or "SIGINT"
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if signum == signal.SIGINT and self.requested == "SIGINT":
            # Not a KeyboardInterrupt: that could be dropped as the first was.
            os.write(2, b"interrupted again (Ctrl-C): stopped at once\n")
            os._exit(130)
        self.requested = signal.Signals(signum).name

    @staticmethod
    def exit(kind, step):
        """After the checkpoint of `step` is saved: one line, then SystemExit(143) for SIGTERM
        or `Interrupted` (a KeyboardInterrupt: the command lines exit 130) for Ctrl-C."""
        if kind == "SIGTERM":
            print(f"SIGTERM: saved checkpoint at step {step}, exiting", file=sys.stderr)
            raise SystemExit(143)
        print(f"interrupted (Ctrl-C): saved checkpoint at step {step}; run the same command "
              "again to resume", file=sys.stderr)
        raise Interrupted
