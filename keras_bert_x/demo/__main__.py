"""python -m keras_bert_x.demo [--output_dir demo_out] [--fresh] — what `make demo` runs."""

import sys
import time
import traceback

from keras_bert_x import cli

cli.quiet_tensorflow()

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "demo_out", "Where every stage writes, and report.md.")
flags.DEFINE_bool("fresh", False, "Redo every stage (by default finished ones are kept).")
flags.DEFINE_integer("documents", 500, "Brown corpus documents to learn from (all: 500).",
                     lower_bound=4, upper_bound=500)
flags.DEFINE_integer("vocab_size", 8000, "WordPiece vocabulary size to learn.", lower_bound=100)
flags.DEFINE_integer("max_seq_length", 64, "Tokens per sequence, pretraining and fine-tuning.",
                     lower_bound=16, upper_bound=512)
flags.DEFINE_integer("max_predictions", 10, "Masked positions per pretraining sequence.",
                     lower_bound=1)
flags.DEFINE_integer("dupe_factor", 2, "Passes over the corpus with different masks.",
                     lower_bound=1)
flags.DEFINE_integer("pretrain_steps", 2000, "bert_tiny pretraining steps (batch 32).",
                     lower_bound=1)
flags.DEFINE_float("finetune_epochs", 1.0, "Epochs over the MR training split.",
                   lower_bound=0.01)
flags.DEFINE_integer("train_examples", 0, "MR training sentences used (0: all).", lower_bound=0)
flags.DEFINE_integer("eval_examples", 0, "MR dev and test sentences used (0: all).",
                     lower_bound=0)
flags.DEFINE_integer("latency_repeats", 30, "Sentences timed one by one per exported form.",
                     lower_bound=1)
flags.DEFINE_bool("progress", True, "Progress bars.")


def main(argv):
    if cli.refuse_extra_arguments(argv, tpu_hint=False):
        return 1
    cli.warnings_only()
    import keras_bert_x
    from keras_bert_x.demo.pipeline import Context, run_stages
    from keras_bert_x.demo.report import publish
    from keras_bert_x.demo.stages import STAGES_VERSION, check_inputs, demo_stages
    from keras_bert_x.errors import BertInputError

    start = time.time()
    ctx = Context(FLAGS.output_dir, FLAGS)
    try:
        check_inputs()
        results = run_stages(demo_stages(FLAGS), ctx, fresh=FLAGS.fresh,
                             say=lambda line: print(line, flush=True),
                             version=f"{keras_bert_x.__version__}/{STAGES_VERSION}")
        report = publish(ctx)
    except BertInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished stages are kept in {ctx.output_dir}; run the same "
              "command again to resume", file=sys.stderr)
        return 130
    except Exception:  # a failure, not bad input: the traceback, then where things stand
        traceback.print_exc()
        name, partial = ctx.running or ("?", "?")
        print(f"error: stage {name} failed (above); its partial work is in {partial}: run "
              "again to retry it, or with --fresh to start over", file=sys.stderr)
        return 1
    parity = results["parity"]
    print(f"\n{parity['table']}\n")
    for example in parity["examples"]:
        print(f"  {example['label']:>8} {example['probability']:.3f}  {example['text']}")
    print(f"\nreport: {report}\nthis run: {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main, flags_parser=cli.parse_flags))
