"""Creating a tf.distribute strategy from a name, failing fast where TensorFlow would hang."""

import os
import socket
from urllib.parse import urlparse

import tensorflow as tf

from keras_bert_x.errors import BertInputError, first_line

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def split_cpu(num_devices):
    """Exposes `num_devices` logical CPUs (call before TensorFlow initialises its devices)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])


def _probe(address, timeout):
    """Raises BertInputError unless host:port of a grpc:// address accepts a TCP connection."""
    parsed = urlparse(address)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 8470), timeout=timeout):
            return
    except (OSError, ValueError) as e:
        raise BertInputError(f"--tpu={address}: cannot reach the TPU ({e})") from None


def tpu_strategy(tpu, probe_timeout=5.0):
    # Connecting to a grpc:// address with nothing behind it hangs in
    # experimental_connect_to_cluster, so the socket is tried first with a timeout.
    if tpu.startswith("grpc://"):
        _probe(tpu, probe_timeout)
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, OSError, tf.errors.OpError, RuntimeError) as e:
        raise BertInputError(f"--tpu={tpu}: {first_line(e)}") from None
    return tf.distribute.TPUStrategy(resolver)


def create_strategy(name="default", tpu=None, cluster_timeout=120.0):
    """The strategy for `name`; `tpu` implies "tpu".

    MultiWorkerMirroredStrategy waits forever for peers that never come up: a watchdog ends the
    process with one error line after `cluster_timeout` seconds.
    """
    if tpu:
        return tpu_strategy(tpu)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise BertInputError("--strategy=multi_worker needs TF_CONFIG (or use "
                                 "trainers/launch_local.py)")
        watchdog = _watchdog(cluster_timeout)
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            # The first collective op is where a missing peer blocks.
            strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)
        finally:
            watchdog.kill()
            watchdog.wait()
        return strategy
    if name == "tpu":
        raise BertInputError("--strategy=tpu needs --tpu=NAME (or 'local', or grpc://host:port)")
    raise BertInputError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def _watchdog(seconds):
    """A process that kills this one, with one error line, unless it is killed first.

    A thread cannot do this: the blocked TensorFlow call holds the interpreter lock.
    """
    import subprocess
    import sys

    message = (f"error: multi-worker cluster did not come up within {seconds:.0f}s "
               "(check TF_CONFIG and that every worker started)")
    code = (f"import os, signal, sys, time\ntime.sleep({seconds})\n"
            f"print({message!r}, file=sys.stderr, flush=True)\n"
            f"os.kill({os.getpid()}, signal.SIGKILL)\n")
    return subprocess.Popen([sys.executable, "-c", code])
