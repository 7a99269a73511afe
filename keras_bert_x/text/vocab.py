"""python -m keras_bert_x.text.vocab --input 'corpus/*.txt' --vocab_size 8000 --output vocab.txt

Learns an uncased (or --nolower_case) WordPiece vocabulary with tf-text's BERT vocabulary learner.
The learner sees text normalised exactly as `BertTokenizer` normalises it, so every word it
counts is a word the tokenizer will produce. The reserved tokens [PAD] [UNK] [CLS] [SEP] [MASK]
come first (ids 0-4). The output file is written only when learning finished, never over an
existing file unless --overwrite.
"""

import os
import sys
import time

from absl import app, flags

from keras_bert_x.errors import BertInputError

FLAGS = flags.FLAGS


def define_flags():
    """The command line's flags (defined on demand: importing this module defines none)."""
    flags.DEFINE_string("input", None, "Comma-separated globs of text files (.gz allowed).")
    flags.DEFINE_integer("vocab_size", 8000, "Target vocabulary size (an upper bound).")
    flags.DEFINE_string("output", None, "vocab.txt to write.")
    flags.DEFINE_bool("lower_case", True, "Lower-case and strip accents (an uncased vocabulary).")
    flags.DEFINE_integer("max_lines", 0, "Read at most this many lines (0: all).")
    flags.DEFINE_bool("overwrite", False, "Replace an existing --output.")


def learn_vocabulary(files, vocab_size, lower_case=True, max_lines=0):
    """Returns the learned tokens, reserved tokens first."""
    import tensorflow as tf
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset as learner

    from keras_bert_x.data.corpus import read_documents
    from keras_bert_x.text.tokenizer import RESERVED_TOKENS, normalize_text

    lines = [s for doc in read_documents(files) for s in doc]
    if max_lines:
        lines = lines[:max_lines]
    if not lines:
        raise BertInputError(f"{','.join(files)}: no text to learn from")
    dataset = tf.data.Dataset.from_tensor_slices(lines).batch(4096).map(
        lambda text: normalize_text(text, lower_case))
    # Our text is already normalised: the learner must neither fold case nor apply NFKC again.
    return learner.bert_vocab_from_dataset(
        dataset, vocab_size=vocab_size, reserved_tokens=list(RESERVED_TOKENS),
        bert_tokenizer_params={"lower_case": False}, learn_params={})


def main(argv):
    del argv
    from keras_bert_x.data.corpus import expand_inputs
    from keras_bert_x.io_utils import write_vocab

    try:
        if not FLAGS.input or not FLAGS.output:
            raise BertInputError("--input and --output are required")
        if os.path.exists(FLAGS.output) and not FLAGS.overwrite:
            raise BertInputError(f"{FLAGS.output}: exists (pass --overwrite to replace it)")
        if FLAGS.vocab_size < 100:
            raise BertInputError(f"--vocab_size must be at least 100, got {FLAGS.vocab_size}")
        start = time.time()
        tokens = learn_vocabulary(expand_inputs(FLAGS.input), FLAGS.vocab_size,
                                  FLAGS.lower_case, FLAGS.max_lines)
    except BertInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    partial = FLAGS.output + ".partial"
    write_vocab(partial, tokens)
    os.replace(partial, FLAGS.output)
    print(f"wrote {FLAGS.output}: {len(tokens)} tokens in {time.time() - start:.0f}s")
    return 0


if __name__ == "__main__":
    from keras_bert_x import cli

    cli.quiet_tensorflow()
    define_flags()
    app.run(main)
