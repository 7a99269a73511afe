"""python -m keras_bert_x.convert --source {hf,google,tfm,keras_hub} --input DIR --output DIR

Converts a BERT checkpoint into our format (config.json, vocab.txt, model.weights.h5), or with
`--output_format keras_hub` into a keras-hub preset. Nothing is written to --output unless the
whole conversion succeeded.
"""

import sys

from keras_bert_x import cli

cli.quiet_tensorflow()

from absl import app, flags  # noqa: E402

from keras_bert_x.errors import BertInputError  # noqa: E402

MODELS = {"encoder": "BertEncoder", "masked_lm": "BertMaskedLM", "pretrainer": "BertPretrainer",
          "classifier": "BertClassifier"}

FLAGS = flags.FLAGS
flags.DEFINE_enum("source", None, ["hf", "google", "tfm", "keras_hub"],
                  "Layout of --input: Hugging Face, Google TF1, Model Garden TF2 or a keras-hub "
                  "preset. Detected from the files when omitted.")
flags.DEFINE_string("input", None, "Directory holding the checkpoint to convert.")
flags.DEFINE_string("output", None, "Directory to write; must not exist or be empty.")
flags.DEFINE_enum("model", "encoder", list(MODELS),
                  "What to keep: the encoder, or with its masked-LM head, or with both "
                  "pretraining heads, or with a classification head (a head the input lacks "
                  "starts fresh, with a warning).")
flags.DEFINE_enum("output_format", "keras_bert_x", ["keras_bert_x", "keras_hub"],
                  "Write our format, or a keras-hub preset (BertBackbone; BertMaskedLM for "
                  "masked_lm/pretrainer; BertTextClassifier for classifier).")
flags.DEFINE_bool("overwrite", False, "Replace a non-empty --output (only one of our model "
                  "directories, or a keras-hub preset with --output_format keras_hub).")
flags.mark_flags_as_required(["input", "output"])


def main(argv):
    if cli.refuse_extra_arguments(argv):
        return 1
    cli.warnings_only()
    import keras_bert_x
    from keras_bert_x.models.pretrained import read_pretrained

    try:
        checkpoint = read_pretrained(FLAGS.input, source=FLAGS.source)
        model_class = getattr(keras_bert_x, MODELS[FLAGS.model])
        model = model_class.from_checkpoint(checkpoint, where=FLAGS.input)
        model.save_pretrained(FLAGS.output, overwrite=FLAGS.overwrite,
                              format=FLAGS.output_format)
    except BertInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    cfg = model.config
    written = " (keras-hub preset)" if FLAGS.output_format == "keras_hub" else ""
    print(f"converted {checkpoint.source} checkpoint {FLAGS.input} -> {FLAGS.output}{written}: "
          f"{type(model).__name__} "
          f"(L{cfg.num_hidden_layers}/H{cfg.hidden_size}/A{cfg.num_attention_heads}, "
          f"vocab {cfg.vocab_size}{'' if model.vocabulary else ', no vocabulary'})")
    return 0


if __name__ == "__main__":
    app.run(main)
