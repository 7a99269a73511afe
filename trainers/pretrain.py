"""python trainers/pretrain.py --model_dir=runs/bert --train_data='data/*.tfrecord' [--tpu[=NAME]]

Pretrains BERT (masked LM + next sentence; --nonsp for MLM only) on tf.distribute:
--strategy=default|mirrored|multi_worker, or --tpu. Resumes from the latest checkpoint in
--model_dir; SIGTERM saves one first. A thin command line over
keras_bert_x.training.pretraining.run_pretraining.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_bert_x import cli  # noqa: E402  (loads no TensorFlow)

cli.quiet_tensorflow()

from absl import app, flags  # noqa: E402

from keras_bert_x.training.pretraining import PretrainConfig  # noqa: E402

FLAGS = flags.FLAGS
_HELP = {
    "model_dir": "Checkpoints, TensorBoard logs, metrics.jsonl and the final model go here.",
    "train_data": "TFRecord glob(s), comma-separated (ours, Google's or Model Garden's).",
    "train_text": "Text glob(s) for dynamic masking instead of --train_data.",
    "eval_data": "TFRecord glob(s) evaluated at the end (and every --eval_interval_steps).",
    "config": "BertConfig JSON (ours, HF or Google). Overrides --preset.",
    "preset": "bert_tiny, bert_mini, bert_small, bert_medium, bert_base or bert_large.",
    "vocab_file": "vocab.txt: sets vocab_size and is saved with the model.",
    "init_checkpoint": "Directory to start from (ours, HF, Google TF1 or Model Garden); heads "
                       "it lacks start fresh, with a warning.",
    "train_batch_size": "Global batch per optimizer step (split over replicas and "
                        "--grad_accum_steps; each share must be whole).",
    "strategy": "default, mirrored, multi_worker (TF_CONFIG) or tpu.",
    "tpu": "The TPU: a bare --tpu means this VM's TPU ('local'); --tpu=NAME a named one; "
           "--tpu=grpc://host:port an address. Implies --strategy=tpu.",
    "mixed_precision": "float32, mixed_bfloat16 or mixed_float16 (with dynamic loss scaling).",
    "nsp": "Train next-sentence prediction too; --nonsp: masked LM only (BertMaskedLM, "
           "RoBERTa-style; next_sentence_labels are not read, text gives single segments).",
    "eval_interval_steps": "Also evaluate --eval_data every N steps (0: only at the end).",
    "length_buckets": "With --train_text, what a step's batches are padded to (sequences wait "
                      "for a step of their bucket): auto (multiples of 16), none (always "
                      "--max_seq_length) or lengths such as 32,64,128.",
}


def _define_flags():
    cli.define_trainer_flags(PretrainConfig, _HELP)
    flags.adopt_module_key_flags(cli)  # defined there, listed by this script's --help
    flags.mark_flag_as_required("model_dir")


def main(argv):
    from keras_bert_x.training.pretraining import run_pretraining

    return cli.run_trainer(argv, PretrainConfig, run_pretraining)


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=cli.parse_flags)
