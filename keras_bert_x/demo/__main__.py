"""python -m keras_bert_x.demo [--output_dir demo_out] [--fresh] — what `make demo` runs."""

import sys

from keras_bert_x import cli

cli.quiet_tensorflow()

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "demo_out", "Where every stage writes, and report.md.")
flags.DEFINE_bool("fresh", False, "Redo every stage (by default finished ones are kept).")
flags.DEFINE_integer("documents", 500, "Brown corpus documents to learn from (all: 500).")
flags.DEFINE_integer("vocab_size", 8000, "WordPiece vocabulary size to learn.")
flags.DEFINE_integer("max_seq_length", 64, "Tokens per sequence, pretraining and fine-tuning.")
flags.DEFINE_integer("max_predictions", 10, "Masked positions per pretraining sequence.")
flags.DEFINE_integer("dupe_factor", 2, "Passes over the corpus with different masks.")
flags.DEFINE_integer("pretrain_steps", 800, "bert_tiny pretraining steps (batch 32).")
flags.DEFINE_float("finetune_epochs", 1.0, "Epochs over the MR training split.")
flags.DEFINE_integer("train_examples", 0, "MR training sentences used (0: all).")
flags.DEFINE_integer("eval_examples", 0, "MR dev and test sentences used (0: all).")
flags.DEFINE_integer("latency_repeats", 30, "Sentences timed one by one per exported form.")
flags.DEFINE_bool("progress", True, "Progress bars.")


def main(argv):
    if cli.refuse_extra_arguments(argv, tpu_hint=False):
        return 1
    cli.warnings_only()
    from keras_bert_x.demo.pipeline import Context, run_stages
    from keras_bert_x.demo.stages import demo_stages
    from keras_bert_x.errors import BertInputError

    ctx = Context(FLAGS.output_dir, FLAGS)
    try:
        results = run_stages(demo_stages(FLAGS), ctx, fresh=FLAGS.fresh,
                             say=lambda line: print(line, flush=True))
    except BertInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished stages are kept in {ctx.output_dir}; run the same "
              "command again to resume", file=sys.stderr)
        return 130
    parity = results["parity"]
    print(f"\n{parity['table']}\n")
    for example in parity["examples"]:
        print(f"  {example['label']:>8} {example['probability']:.3f}  {example['text']}")
    total = sum(results[k]["seconds"] for k in results if k != "report")
    print(f"\nreport: {ctx.path(results['report']['report'])} (stages took {total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main, flags_parser=cli.parse_flags))
