"""python -m keras_bert_x.convert --source {hf,google,tfm} --input DIR --output DIR

Converts a BERT checkpoint into our format (config.json, vocab.txt, model.weights.h5). Nothing is
written to --output unless the whole conversion succeeded.
"""

import sys

from absl import app, flags

from keras_bert_x.errors import BertInputError

FLAGS = flags.FLAGS
flags.DEFINE_enum("source", None, ["hf", "google", "tfm"],
                  "Layout of --input: Hugging Face, Google TF1 or Model Garden TF2. "
                  "Detected from the files when omitted.")
flags.DEFINE_string("input", None, "Directory holding the checkpoint to convert.")
flags.DEFINE_string("output", None, "Directory to write; must not exist or be empty.")
flags.DEFINE_bool("overwrite", False, "Replace a non-empty --output.")
flags.mark_flags_as_required(["input", "output"])


def main(argv):
    del argv
    from keras_bert_x.convert.converter import convert_checkpoint

    try:
        checkpoint = convert_checkpoint(FLAGS.input, FLAGS.output, source=FLAGS.source,
                                        overwrite=FLAGS.overwrite)
    except BertInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    cfg = checkpoint.config
    print(f"converted {checkpoint.source} checkpoint {FLAGS.input} -> {FLAGS.output} "
          f"(L{cfg.num_hidden_layers}/H{cfg.hidden_size}/A{cfg.num_attention_heads}, "
          f"vocab {cfg.vocab_size}{'' if checkpoint.vocabulary else ', no vocab.txt'})")
    return 0


if __name__ == "__main__":
    app.run(main)
