"""What the command lines share: quiet start-up, absl flags from dataclasses, `--tpu` forms.

Importing this module loads neither TensorFlow nor Keras, so `quiet_tensorflow()` can run first.
"""

import contextlib
import dataclasses
import importlib.abc
import os
import sys
import time
from typing import Optional

# When a command line began, near enough (its first import); where /proc is missing, the
# trainers' "first step done" line counts from here.
IMPORTED_AT = time.time()


def quiet_tensorflow():
    """Keeps TensorFlow's C++ start-up lines out of what users read; call before TensorFlow is
    imported. Level 3: even the "errors" it prints on a healthy machine go (`failed call to
    cuInit` without a GPU, `oneDNN supports DT_HALF only ...`); real failures still raise in
    Python. An explicit TF_CPP_MIN_LOG_LEVEL wins."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# What Keras imports whenever it is installed, for its scikit-learn wrappers, its plotting
# utilities and its DataFrame inputs: a trainer uses none of them, and on 2 CPU cores they
# are about 2 s of the 8 s TensorFlow takes to import (TensorFlow imports Keras).
KERAS_EXTRAS = ("sklearn", "matplotlib", "pandas")


class _Absent(importlib.abc.MetaPathFinder):
    """Makes `import NAME` (and its submodules) fail as if NAME were not installed."""

    def __init__(self, names):
        self.names = names

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


@contextlib.contextmanager
def without_keras_extras():
    """Import TensorFlow and Keras in this block (they are imported once per process) for a
    command line that needs neither Keras's scikit-learn wrappers, nor its plots, nor pandas
    inputs: Keras falls back as it does where those packages are absent (their features
    raise an ImportError if used). After the block they import as usual (seqeval, which the
    token-classification metrics use, imports scikit-learn itself)."""
    if "keras" in sys.modules:  # too late to matter: imported already
        yield
        return
    finder = _Absent(KERAS_EXTRAS)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def warnings_only():
    """absl (and TensorFlow's Python logging through it) at WARNING: no INFO lines such as
    `functional_saver.py` interleaved with the progress bar."""
    from absl import logging

    logging.set_verbosity(logging.WARNING)


def with_bare_tpu(argv):
    """argv with a bare `--tpu` (no value) read as `--tpu=local`, the TPU of this VM.

    absl would take the next argument as the value, or fail when `--tpu` comes last.
    """
    return [("--tpu=local" if a in ("--tpu", "-tpu") else a) for a in argv]


def parse_flags(argv):
    """absl's parser, with the `--tpu` forms above."""
    from absl import app

    return app.parse_flags_with_usage(with_bare_tpu(argv))


def define_dataclass_flags(cls, help_texts):
    """One absl flag per field of dataclass `cls`, typed by its default."""
    from absl import flags

    for field in dataclasses.fields(cls):
        help_text = help_texts.get(field.name, field.name.replace("_", " ") + ".")
        default = None if field.default is dataclasses.MISSING else field.default
        if field.type in (bool, "bool", Optional[bool]) or isinstance(default, bool):
            flags.DEFINE_bool(field.name, default, help_text)
        elif isinstance(default, int):
            flags.DEFINE_integer(field.name, default, help_text)
        elif isinstance(default, float):
            flags.DEFINE_float(field.name, default, help_text)
        else:
            flags.DEFINE_string(field.name, default, help_text)


def dataclass_from_flags(cls):
    from absl import flags

    return cls(**{f.name: getattr(flags.FLAGS, f.name) for f in dataclasses.fields(cls)})


def refuse_extra_arguments(argv, tpu_hint=True):
    """One error line for positional arguments absl left over (`--tpu NAME` among them)."""
    if len(argv) > 1:
        hint = " (a TPU name goes as --tpu=NAME)" if (
            tpu_hint and argv[1] and not argv[1].startswith("-")) else ""
        print(f"error: unexpected argument {argv[1]!r}{hint}", file=sys.stderr)
        return True
    return False


def run_command(argv, action):
    """A command line's main(): refuses extra arguments, runs `action()` (which returns what to
    print) and turns bad input into one `error:` line and exit status 1."""
    from keras_bert_x.errors import BertInputError

    if refuse_extra_arguments(argv, tpu_hint=False):
        return 1
    warnings_only()
    try:
        message = action()
    except BertInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(message)
    return 0


# Flags both trainers have.
TRAINER_HELP = {
    "steps_per_loop": "Optimizer steps per tf.function call: the host waits, logs metrics "
                      "and checks for SIGTERM and Ctrl-C once per loop (cut short at checkpoints, "
                      "evaluations and the end). Large values keep a TPU/GPU busy.",
    "jit_compile": "Compile each replica's train and eval step with XLA (static shapes; what "
                   "a TPU needs). No speed-up on CPU.",
}


def define_trainer_flags(config_class, help_texts):
    """A trainer's flags: one per field of its config, and --num_cpu_devices. The script must
    call `flags.adopt_module_key_flags(cli)` for its --help to list them (absl files a flag
    under the module that defines it)."""
    from absl import flags

    define_dataclass_flags(config_class, {**TRAINER_HELP, **help_texts})
    flags.DEFINE_integer("num_cpu_devices", 0, "Split the CPU into N logical devices (testing "
                         "--strategy=mirrored without accelerators).")


def run_trainer(argv, config_class, run):
    """A trainer's main(): builds its config from the flags and calls `run(config)`; bad input
    is one `error:` line and exit status 1, Ctrl-C exit status 130 (training has saved a
    checkpoint and said so), success prints the final metrics."""
    from absl import flags

    from keras_bert_x.errors import BertInputError
    from keras_bert_x.training.checkpoints import Interrupted

    if refuse_extra_arguments(argv):
        return 1
    warnings_only()
    cfg = dataclass_from_flags(config_class)
    try:
        if flags.FLAGS.num_cpu_devices:
            from keras_bert_x.training.strategy import split_cpu

            split_cpu(flags.FLAGS.num_cpu_devices)
        metrics = run(cfg)
    except BertInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        if not isinstance(e, Interrupted):  # before training or after it: nothing to resume
            print("interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    print("final " + " ".join(f"{k}={v:.6g}" for k, v in sorted(metrics.items())))
    return 0
