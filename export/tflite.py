"""python export/tflite.py --model_dir runs/mr --output mr.tflite --quantize dynamic
    [--with_tokenizer] [--representative_data sentences.txt]

Writes a TFLite file of a model (batch 1): token ids in, any length up to the model's
max_position_embeddings, or raw text in with --with_tokenizer (tf-text custom ops; see
keras_bert_x.export.tflite), each text padded to the smallest of --length_buckets holding
it. --quantize is none, float16, dynamic or int8 (int8 calibrates on --representative_data:
real text, one example per line, tab-separated for two inputs). A thin command line over
keras_bert_x.export.tflite.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_bert_x import cli  # noqa: E402  (loads no TensorFlow)

cli.quiet_tensorflow()

from absl import app, flags  # noqa: E402

flags.DEFINE_string("model_dir", None, "Model to convert (ours, or a fine-tuning --model_dir).")
flags.DEFINE_string("output", None, "The .tflite file to write.")
flags.DEFINE_string("quantize", "none", "none, float16, dynamic or int8.")
flags.DEFINE_bool("with_tokenizer", False, "Raw text in: the tokenizer inside the model.")
flags.DEFINE_string("representative_data", None, "Text for int8 calibration, one per line.")
flags.DEFINE_integer("calibration_examples", 200, "Lines of --representative_data used.")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per input sequence (at most).")
flags.DEFINE_string("length_buckets", "auto", "With --with_tokenizer, the lengths a text is "
                    "padded to: auto (multiples of 16 up to --max_seq_length), none (always "
                    "--max_seq_length) or a list such as 32,64,128.")
flags.DEFINE_bool("sentence_pairs", False, "A classifier of sentence pairs (text, text_b).")
flags.DEFINE_bool("overwrite", False, "Replace --output if it exists.")
flags.mark_flags_as_required(["model_dir", "output"])
FLAGS = flags.FLAGS


def main(argv):
    def convert():
        from keras_bert_x.export.tflite import convert_to_tflite

        size = convert_to_tflite(
            FLAGS.model_dir, FLAGS.output, quantize=FLAGS.quantize,
            with_tokenizer=FLAGS.with_tokenizer, representative_data=FLAGS.representative_data,
            max_seq_length=FLAGS.max_seq_length, sentence_pairs=FLAGS.sentence_pairs,
            calibration_examples=FLAGS.calibration_examples, overwrite=FLAGS.overwrite,
            length_buckets=FLAGS.length_buckets)
        return f"wrote {FLAGS.output} ({size / 1e6:.1f} MB, {FLAGS.quantize})"

    return cli.run_command(argv, convert)

if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
