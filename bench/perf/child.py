"""One benchmark variant in a fresh process: `python -m bench.perf.child '<json spec>'` prints
one JSON line. run.py starts one per variant, so no library's graph, thread pools or dtype
policy leaks into another's timing."""

import json
import os
import sys


def peak_matmul(dtype, steps):
    """GFLOP/s of a 2048³ matmul in this dtype: the machine's ceiling for our MFU."""
    import tensorflow as tf

    from bench.perf.common import time_calls

    n = 2048
    a = tf.random.normal((n, n), dtype=tf.float32)
    a = tf.cast(a, tf.bfloat16 if dtype == "bfloat16" else tf.float32)
    matmul = tf.function(lambda x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
    timing = time_calls(lambda: matmul(a).numpy(), steps)
    return dict(timing, gflops=2 * n ** 3 / timing["median_s"] / 1e9)


def main():
    spec = json.loads(sys.argv[1])
    suite, steps = spec["suite"], spec["steps"]
    from bench.perf.common import time_calls

    if suite == "peak":
        result = peak_matmul(spec["dtype"], steps)
    elif suite == "train":
        from bench.perf import train

        options = {k: spec[k] for k in ("steps_per_loop", "jit_compile") if k in spec}
        step, per_call = train.BUILDERS[spec["impl"]](spec["size"], spec["batch"],
                                                      spec["dtype"], **options)
        result = time_calls(step, steps, per_call)  # `steps` calls of per_call steps each
    elif suite == "infer":
        from bench.perf import infer

        call = infer.BUILDERS[spec["impl"]](spec["size"], spec["batch"], spec["dtype"],
                                            spec.get("work"))
        result = time_calls(call, steps)
    elif suite == "tflite":
        from bench.perf import tflite

        call, size = tflite.latency(spec["impl"], spec["work"])
        result = dict(time_calls(call, steps), bytes=size)
    elif suite == "serve":
        from bench.perf import serve

        result = serve.measure(spec)
    elif suite == "prepare":
        from bench.perf import infer, serve, tflite

        prepare = {"infer": infer.prepare, "tflite": tflite.prepare, "serve": serve.prepare}
        result = prepare[spec["impl"]](spec["work"]) or {}
    elif suite == "dynamic_masking":
        from bench.perf import data

        result = data.dynamic_masking(spec["batch"], steps, spec["work"])
    else:
        raise SystemExit(f"error: unknown suite {suite!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
