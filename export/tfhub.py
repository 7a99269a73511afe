"""python export/tfhub.py --model_dir runs/mr --export_dir hub/mr [--seq_length 128]

Writes hub/mr/encoder/ and hub/mr/preprocessor/: TF2 SavedModels with the TF Hub BERT API, for
`hub.KerasLayer(".../preprocessor")` and `hub.KerasLayer(".../encoder", trainable=True)`.
--model_dir is any model directory of ours (the encoder is taken from a head model) or a
fine-tuning run's model_dir. A thin command line over keras_bert_x.export.tfhub.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_bert_x import cli  # noqa: E402  (loads no TensorFlow)

cli.quiet_tensorflow()

from absl import app, flags  # noqa: E402

flags.DEFINE_string("model_dir", None, "Model to export (ours, or a fine-tuning --model_dir).")
flags.DEFINE_string("export_dir", None, "New directory to hold encoder/ and preprocessor/.")
flags.DEFINE_integer("seq_length", 128, "Length the preprocessor packs to when called on "
                     "strings (bert_pack_inputs takes any seq_length).")
flags.mark_flags_as_required(["model_dir", "export_dir"])
FLAGS = flags.FLAGS


def main(argv):
    def export():
        from keras_bert_x.export.tfhub import export_tfhub

        path = export_tfhub(FLAGS.model_dir, FLAGS.export_dir, seq_length=FLAGS.seq_length)
        return f"exported {path}/encoder and {path}/preprocessor"

    return cli.run_command(argv, export)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
