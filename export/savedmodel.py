"""python export/savedmodel.py --model_dir runs/mr --export_dir models/mr [--version N]

Writes a TF Serving model, models/mr/<version>/: a SavedModel whose `serving_default` takes raw
text (the tokenizer is in the graph) and returns the task's outputs, and whose `serve_ids` takes
token ids. --model_dir is a save_pretrained directory of ours or a fine-tuning run's model_dir
(its best/, else final/). A thin command line over keras_bert_x.export.savedmodel.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_bert_x import cli  # noqa: E402  (loads no TensorFlow)

cli.quiet_tensorflow()

from absl import app, flags  # noqa: E402

flags.DEFINE_string("model_dir", None, "Model to export (ours, or a fine-tuning --model_dir).")
flags.DEFINE_string("export_dir", None, "The model's folder in the server's model base path, "
                    "e.g. models/NAME; the version goes in a numbered folder inside.")
flags.DEFINE_integer("version", None, "Version number (default: one more than the highest).")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per input sequence.")
flags.DEFINE_string("length_buckets", "auto", "Lengths serving_default pads a batch to: auto "
                    "(multiples of 16 up to --max_seq_length), none (always --max_seq_length) "
                    "or a list such as 32,64,128.")
flags.DEFINE_bool("sentence_pairs", False, "A classifier of sentence pairs: serving_default "
                  "takes `text` and `text_b`.")
flags.DEFINE_integer("max_input_bytes", None, "Bytes of each request string kept before "
                     "tokenizing (default: 64 per position of --max_seq_length).")
flags.DEFINE_integer("doc_stride", 128, "Span QA: pieces between context windows.")
flags.DEFINE_integer("max_query_length", 64, "Span QA: question pieces kept.")
flags.DEFINE_integer("max_answer_length", 30, "Span QA: longest answer, in pieces.")
flags.DEFINE_integer("max_windows", 8, "Span QA: windows read per context at most.")
flags.mark_flags_as_required(["model_dir", "export_dir"])
FLAGS = flags.FLAGS


def main(argv):
    def export():
        from keras_bert_x.export.savedmodel import export_saved_model

        path = export_saved_model(
            FLAGS.model_dir, FLAGS.export_dir, version=FLAGS.version,
            max_seq_length=FLAGS.max_seq_length, sentence_pairs=FLAGS.sentence_pairs,
            max_input_bytes=FLAGS.max_input_bytes, length_buckets=FLAGS.length_buckets,
            doc_stride=FLAGS.doc_stride,
            max_query_length=FLAGS.max_query_length, max_answer_length=FLAGS.max_answer_length,
            max_windows=FLAGS.max_windows)
        return f"exported {path}"

    return cli.run_command(argv, export)

if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
