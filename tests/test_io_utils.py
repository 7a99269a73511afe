"""`native_logs_held`: what native code writes to fd 2 is held back, shown on an error."""

import subprocess
import sys

CODE = """
import os, sys
from keras_bert_x.io_utils import native_logs_held
with native_logs_held():
    os.write(2, b"native chatter\\n")
os.write(2, b"after the block\\n")
try:
    with native_logs_held():
        os.write(2, b"why it failed\\n")
        raise ValueError("conversion failed")
except ValueError:
    pass
try:
    with native_logs_held():
        os.write(2, b"interrupted chatter\\n")
        raise KeyboardInterrupt
except KeyboardInterrupt:
    pass
sys.stderr.write("python stderr still works\\n")
"""


def test_held_on_success_shown_on_error_and_fd_restored():
    run = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == ["after the block", "why it failed",
                                       "python stderr still works"]
