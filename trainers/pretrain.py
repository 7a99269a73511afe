"""python trainers/pretrain.py --model_dir=runs/bert --train_data='data/*.tfrecord' [--tpu=NAME]

Pretrains BERT (masked LM + next sentence) on tf.distribute: --strategy=default|mirrored|
multi_worker|tpu. Resumes from the latest checkpoint in --model_dir; SIGTERM saves one first.
A thin command line over keras_bert_x.training.pretraining.run_pretraining.
"""

import dataclasses
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_bert_x.errors import BertInputError  # noqa: E402
from keras_bert_x.training.pretraining import PretrainConfig  # noqa: E402

FLAGS = flags.FLAGS
_HELP = {
    "model_dir": "Checkpoints, TensorBoard logs, metrics.jsonl and the final model go here.",
    "train_data": "TFRecord glob(s), comma-separated (ours, Google's or Model Garden's).",
    "train_text": "Text glob(s) for dynamic masking instead of --train_data.",
    "eval_data": "TFRecord glob(s) evaluated at the end.",
    "config": "BertConfig JSON (ours, HF or Google). Overrides --preset.",
    "preset": "bert_tiny, bert_mini, bert_small, bert_medium, bert_base or bert_large.",
    "vocab_file": "vocab.txt: sets vocab_size and is saved with the model.",
    "init_checkpoint": "Directory to start from (ours, HF, Google TF1 or Model Garden).",
    "train_batch_size": "Global batch per optimizer step (split over replicas and "
                        "--grad_accum_steps).",
    "strategy": "default, mirrored, multi_worker (TF_CONFIG) or tpu.",
    "tpu": "TPU name, 'local' or grpc://host:port (implies --strategy=tpu).",
    "mixed_precision": "float32, mixed_bfloat16 or mixed_float16 (with loss scaling).",
}


def _define_flags():
    for field in dataclasses.fields(PretrainConfig):
        help_text = _HELP.get(field.name, field.name.replace("_", " ") + ".")
        default = None if field.default is dataclasses.MISSING else field.default
        if field.type in (bool, "bool") or isinstance(default, bool):
            flags.DEFINE_bool(field.name, default, help_text)
        elif isinstance(default, int):
            flags.DEFINE_integer(field.name, default, help_text)
        elif isinstance(default, float):
            flags.DEFINE_float(field.name, default, help_text)
        else:
            flags.DEFINE_string(field.name, default, help_text)
    flags.DEFINE_integer("num_cpu_devices", 0, "Split the CPU into N logical devices (testing "
                         "--strategy=mirrored without accelerators).")
    flags.mark_flag_as_required("model_dir")


def main(argv):
    del argv
    cfg = PretrainConfig(**{f.name: getattr(FLAGS, f.name)
                            for f in dataclasses.fields(PretrainConfig)})
    try:
        if FLAGS.num_cpu_devices:
            from keras_bert_x.training.strategy import split_cpu

            split_cpu(FLAGS.num_cpu_devices)
        from keras_bert_x.training.pretraining import run_pretraining

        metrics = run_pretraining(cfg)
    except BertInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("final " + " ".join(f"{k}={v:.6g}" for k, v in sorted(metrics.items())))
    return 0


if __name__ == "__main__":
    _define_flags()
    app.run(main)
