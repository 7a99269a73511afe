"""Where a training step's time goes: TensorFlow profiler trace of our pretraining step, per op.

    .venv/bin/python bench/profile_step.py                          # bert_mini B8, fp32
    .venv/bin/python bench/profile_step.py --dtype mixed_bfloat16

Builds the step `bench/run.py --suite train` times (bench/perf/train.py: trainers/pretrain.py's
model, optimizer and loop), runs warm-up steps, then traces --steps steps with
`tf.profiler.experimental` and sums the time of every op executed on the CPU by op type and by
the part of the model it belongs to. Times are the ops' own durations summed over TensorFlow's
threads (ops run concurrently, so the sum exceeds the step's wall time). Writes
bench/results/profile_<dtype>.json and .md.
"""

import argparse
import collections
import glob
import json
import os
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PARTS = (("optimizer and clipping", r"adam|clip_by_global_norm|global_norm"),
         ("masked LM head + loss", r"masked_lm|SparseSoftmax|ArgMax"),
         ("dropout", r"dropout"),
         ("LayerNorm", r"layer_norm"),
         ("attention", r"attention(_\d+)?/"),
         ("feed-forward, GELU, residual", r"transformer_layer"),
         ("embeddings", r"embeddings"))


def part(name):
    for label, pattern in PARTS:
        if re.search(pattern, name):
            return label
    return "other"


def op_times(logdir, steps):
    """({op type: ms/step}, {part: ms/step}, {backward?: ms/step}) from the trace's CPU plane."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    plane = next(p for p in space.planes if p.name == "/host:CPU")
    by_type, by_part, by_pass = collections.Counter(), collections.Counter(), \
        collections.Counter()
    for line in plane.lines:
        if not line.name.startswith("tf_Compute"):
            continue
        for event in line.events:
            name = plane.event_metadata[event.metadata_id].name
            if ":" not in name or "::" in name:  # executor and thread-pool regions, not ops
                continue
            op, kind = name.rsplit(":", 1)
            ms = event.duration_ps / 1e9 / steps
            by_type[kind.lstrip("_").replace("Mkl", "")] += ms
            by_part[part(op)] += ms
            # Inside the graph loop op names start with while/body/...: match anywhere.
            by_pass["backward" if "gradient_tape/" in op else
                    "optimizer and clipping" if part(op).startswith("optimizer") else
                    "gradient sums (AddN)" if re.search(r"(^|/)AddN", op) else
                    "forward"] += ms
    return by_type, by_part, by_pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="bert_mini")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--dtype", default="float32", choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    from bench.perf import train

    step, _ = train.ours(args.size, args.batch, args.dtype)
    for _ in range(5):
        step()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        wall = (time.perf_counter() - start) / args.steps * 1e3
        tf.profiler.experimental.stop()
        by_type, by_part, by_pass = op_times(logdir, args.steps)
    total = sum(by_type.values())
    report = {"command": "bench/profile_step.py " + " ".join(sys.argv[1:]), "size": args.size,
              "batch": args.batch, "dtype": args.dtype, "cpus": os.cpu_count(),
              "wall_ms_per_step_traced": wall, "op_ms_per_step": total,
              "by_type": dict(by_type.most_common()), "by_part": dict(by_part.most_common()),
              "by_pass": dict(by_pass.most_common())}
    lines = [f"{args.size} B{args.batch} {args.dtype}: {wall:.0f} ms/step traced; ops "
             f"{total:.0f} ms/step summed over threads.", "",
             "| part of the step | ms/step | share |", "|---|---|---|"]
    lines += [f"| {k} | {v:.1f} | {v / total:.0%} |" for k, v in by_part.most_common()]
    lines += ["", "| op type | ms/step | share |", "|---|---|---|"]
    lines += [f"| {k} | {v:.1f} | {v / total:.0%} |" for k, v in by_type.most_common(12)]
    lines += ["", "| pass | ms/step | share |", "|---|---|---|"]
    lines += [f"| {k} | {v:.1f} | {v / total:.0%} |" for k, v in by_pass.most_common()]
    out = os.path.join(ROOT, "bench", "results", f"profile_{args.dtype}")
    with open(out + ".json", "w") as f:
        json.dump(report, f, indent=2)
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
