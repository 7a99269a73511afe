"""python trainers/finetune.py --task=classification --init_checkpoint=DIR --train_file=train.tsv
    --eval_file=dev.tsv --model_dir=runs/mr [--strategy=mirrored | --tpu[=NAME]]

Fine-tunes BERT on a task: classification or regression (CSV/TSV/JSONL with --text_column,
--text_b_column, --label_column), token_classification (CoNLL/BIO) or squad (SQuAD v1.1/v2.0
JSON), on tf.distribute, evaluating after every epoch. `model_dir/best` and `model_dir/final`
are save_pretrained directories the export commands take. A thin command line over
keras_bert_x.training.finetuning.run_finetuning.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_bert_x import cli  # noqa: E402  (loads no TensorFlow)

cli.quiet_tensorflow()

from absl import app, flags  # noqa: E402

with cli.without_keras_extras():  # TensorFlow and Keras load here
    from keras_bert_x.training.finetuning import FinetuneConfig  # noqa: E402

FLAGS = flags.FLAGS
_HELP = {
    "task": "classification, regression, token_classification or squad.",
    "init_checkpoint": "Directory to start from: ours (any model class), HF, Google TF1 or "
                       "Model Garden. A task head it has (HF BertFor...) is kept.",
    "model_dir": "Checkpoints, logs, eval_results.json, best/ and final/ go here.",
    "train_file": "Training data (a table, a CoNLL file or SQuAD JSON, by --task).",
    "eval_file": "Evaluated after every epoch; the best epoch's model goes to model_dir/best.",
    "vocab_file": "vocab.txt (default: the one in --init_checkpoint).",
    "text_b_column": "Second text of sentence pairs (optional).",
    "conll_fields": "Fields on each CoNLL line: token first, tag last (4 for CoNLL-2003).",
    "epochs": "Passes over the training data (fractions allowed).",
    "train_batch_size": "Global batch per optimizer step.",
    "warmup_ratio": "Fraction of the steps with a linear learning-rate warm-up.",
    "strategy": "default, mirrored, multi_worker (TF_CONFIG) or tpu.",
    "tpu": "A bare --tpu means this VM's TPU ('local'); --tpu=NAME a named one; "
           "--tpu=grpc://host:port an address. Implies --strategy=tpu.",
    "mixed_precision": "float32, mixed_bfloat16 or mixed_float16 (with dynamic loss scaling).",
    "save_checkpoints_steps": "Checkpoint every N steps (0: at the end of every epoch).",
    "length_buckets": "What each batch is padded to: auto (its longest; multiples of 16 with "
                      "--jit_compile or a TPU, which compile every new shape), longest, none "
                      "(always --max_seq_length) or lengths such as 32,64,128.",
}


def _define_flags():
    cli.define_trainer_flags(FinetuneConfig, _HELP)
    flags.adopt_module_key_flags(cli)  # defined there, listed by this script's --help


def main(argv):
    from keras_bert_x.training.finetuning import run_finetuning

    return cli.run_trainer(argv, FinetuneConfig, run_finetuning)


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=cli.parse_flags)
