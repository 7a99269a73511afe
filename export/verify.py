"""python export/verify.py --model_dir runs/mr --eval_file test.tsv --saved_model models/mr/1
    --tflite mr_fp32.tflite --tflite mr_int8.tflite --output_dir parity/

The parity report: Keras vs the SavedModel (in a fresh process) vs each TFLite file on a
held-out evaluation file: max abs logit difference, prediction agreement, the task metric,
size and batch-1 latency, as parity.md and parity.json. A thin command line over
keras_bert_x.export.verify.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_bert_x import cli  # noqa: E402  (loads no TensorFlow)

cli.quiet_tensorflow()

from absl import app, flags  # noqa: E402

flags.DEFINE_string("model_dir", None, "The Keras model (ours, or a fine-tuning --model_dir).")
flags.DEFINE_string("eval_file", None, "Held-out data in the task's format (table, CoNLL, "
                    "SQuAD JSON).")
flags.DEFINE_string("saved_model", None, "An exported version directory (models/NAME/N).")
flags.DEFINE_multi_string("tflite", [], "A token-ids .tflite file (repeatable).")
flags.DEFINE_string("output_dir", None, "Where parity.md and parity.json go (default: print).")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per sequence (as exported).")
flags.DEFINE_integer("limit", None, "Evaluate the first N examples only.")
flags.DEFINE_integer("latency_repeats", 50, "Batch-1 calls timed per form (median).")
flags.DEFINE_string("text_column", "text", "Classification: the text column.")
flags.DEFINE_string("text_b_column", None, "Classification: the second text column.")
flags.DEFINE_string("label_column", "label", "Classification: the label column.")
flags.DEFINE_integer("conll_fields", 2, "Token classification: fields per CoNLL line.")
flags.DEFINE_integer("doc_stride", 128, "Span QA: pieces between windows.")
flags.DEFINE_integer("max_query_length", 64, "Span QA: question pieces kept.")
flags.mark_flags_as_required(["model_dir", "eval_file"])
FLAGS = flags.FLAGS


def main(argv):
    def verify():
        from keras_bert_x.export.verify import run_verification

        return run_verification(
            FLAGS.model_dir, FLAGS.eval_file, FLAGS.saved_model, FLAGS.tflite, FLAGS.output_dir,
            max_seq_length=FLAGS.max_seq_length, limit=FLAGS.limit,
            latency_repeats=FLAGS.latency_repeats, text_column=FLAGS.text_column,
            text_b_column=FLAGS.text_b_column, label_column=FLAGS.label_column,
            conll_fields=FLAGS.conll_fields, doc_stride=FLAGS.doc_stride,
            max_query_length=FLAGS.max_query_length)

    return cli.run_command(argv, verify)

if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
