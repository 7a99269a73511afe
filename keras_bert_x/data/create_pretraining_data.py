"""python -m keras_bert_x.data.create_pretraining_data --input_file=... --output_file=... --vocab_file=...

Text (one sentence per line, a blank line between documents) -> BERT pretraining TFRecords with
the flags and features of google-research/bert and Model Garden, so their files and ours are
interchangeable. Faster than theirs because sentences are tokenized in large batches by tf-text
(C++) instead of a Python tokenizer, and instances are built and serialized by one worker process
per core. Documents are cut into fixed chunks, each with its own RNG seeded from
(--random_seed, dupe, chunk), so the same seed gives byte-identical files whatever the number of
workers. Outputs are written as `.partial` files and renamed only when complete.
"""

import dataclasses
import multiprocessing
import os
import random
import signal
import sys
import time

import numpy as np
from absl import app, flags

from keras_bert_x.data.corpus import tokenize_documents
from keras_bert_x.data.examples import ExampleEncoder
from keras_bert_x.data.instances import MaskingConfig, Vocab, instances_from_documents
from keras_bert_x.errors import BertInputError

CHUNK_DOCUMENTS = 32  # documents per work item (part of what a seed means: keep it fixed)

FLAGS = flags.FLAGS


def define_flags():
    """The command line's flags (defined on demand: importing this module defines none)."""
    flags.DEFINE_string("input_file", None,
                        "Input text file(s): comma-separated globs, .gz allowed.")
    flags.DEFINE_string("output_file", None, "Output TFRecord file(s), comma-separated: instances "
                        "are dealt round-robin. With --num_output_shards, a base name.")
    flags.DEFINE_string("vocab_file", None, "WordPiece vocab.txt.")
    flags.DEFINE_bool("do_lower_case", True, "Lower-case and strip accents (uncased models).")
    flags.DEFINE_bool("do_whole_word_mask", False, "Mask all pieces of a word together.")
    flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
    flags.DEFINE_integer("max_predictions_per_seq", 20, "Maximum masked positions per sequence.")
    flags.DEFINE_integer("random_seed", 12345, "Seed: the same seed gives byte-identical output.")
    flags.DEFINE_integer("dupe_factor", 10, "Passes over the data, each with different masks.")
    flags.DEFINE_float("masked_lm_prob", 0.15, "Fraction of tokens to predict.")
    flags.DEFINE_float("short_seq_prob", 0.1, "Probability of a shorter target length.")
    flags.DEFINE_bool("gzip_compress", False, "Write GZIP-compressed TFRecords.")
    flags.DEFINE_integer("num_output_shards", 0, "Write OUTPUT-0000i-of-0000N files instead.")
    flags.DEFINE_integer("num_workers", 0, "Worker processes (0: one per CPU core).")
    flags.DEFINE_bool("overwrite", False, "Replace existing output files.")
    flags.DEFINE_bool("progress", True, "Show a progress bar.")


@dataclasses.dataclass
class Summary:
    documents: int = 0
    sentences: int = 0
    tokens: int = 0
    skipped_non_utf8: int = 0
    instances: int = 0
    masked: int = 0
    random_next: int = 0
    seconds: float = 0.0

    def __str__(self):
        rate = self.documents / self.seconds if self.seconds else 0.0
        return (f"{self.documents:,} documents, {self.sentences:,} sentences, {self.tokens:,} "
                f"tokens ({self.skipped_non_utf8:,} non-UTF-8 lines skipped) -> "
                f"{self.instances:,} instances, {self.masked:,} masked positions, "
                f"{self.random_next / max(self.instances, 1):.1%} random-next; "
                f"{self.seconds:.1f}s, {rate:,.0f} documents/s")


# Set in the parent before the pool forks, so that workers share the documents without copying.
_WORK = {}


def _build_chunk(task):
    dupe, start = task
    documents, config, vocab, seed, encoder = (
        _WORK[k] for k in ("documents", "config", "vocab", "seed", "encoder"))
    rng = random.Random(f"{seed}-{dupe}-{start}")
    np_rng = np.random.default_rng(rng.getrandbits(64))
    records, masked, random_next = [], 0, 0
    indices = range(start, min(start + CHUNK_DOCUMENTS, len(documents)))
    for instance in instances_from_documents(documents, indices, config, vocab, rng, np_rng):
        records.append(encoder.encode(instance))
        masked += len(instance.masked_lm_positions)
        random_next += instance.is_random_next
    return records, masked, random_next


def create_pretraining_data(input_files, output_files, vocab_tokens, config, dupe_factor=10,
                            random_seed=12345, lower_case=True, gzip_compress=False,
                            num_workers=0, progress=False):
    """Writes pretraining TFRecords; returns a `Summary`. Inputs must already be validated."""
    import tensorflow as tf
    from tqdm import tqdm

    start_time = time.time()
    summary = Summary()
    documents, stats = tokenize_documents(input_files, vocab_tokens, lower_case)
    summary.skipped_non_utf8 = stats.skipped_non_utf8
    summary.documents = len(documents)
    summary.sentences = sum(len(d) for d in documents)
    summary.tokens = sum(len(s) for d in documents for s in d)
    if not documents:
        raise BertInputError(f"{','.join(input_files)}: no text found")
    random.Random(random_seed).shuffle(documents)
    encoder = ExampleEncoder(config.max_seq_length, config.max_predictions_per_seq,
                             len(vocab_tokens))
    _WORK.update(documents=documents, config=config, vocab=Vocab(vocab_tokens), seed=random_seed,
                 encoder=encoder)
    tasks = [(d, s) for d in range(dupe_factor) for s in range(0, len(documents), CHUNK_DOCUMENTS)]
    records = []
    workers = num_workers or os.cpu_count() or 1
    bar = tqdm(total=len(tasks) * CHUNK_DOCUMENTS, unit="doc", disable=not progress,
               desc="creating instances", file=sys.stderr)
    pool = None
    try:
        if workers > 1:
            # Workers leave Ctrl-C to the parent, which stops them: one message, not one
            # traceback per worker.
            pool = multiprocessing.get_context("fork").Pool(workers, initializer=signal.signal,
                                                            initargs=(signal.SIGINT,
                                                                      signal.SIG_IGN))
            results = pool.imap(_build_chunk, tasks, chunksize=4)
        else:
            results = map(_build_chunk, tasks)
        for chunk_records, masked, random_next in results:
            records.extend(chunk_records)
            summary.masked += masked
            summary.random_next += random_next
            bar.update(CHUNK_DOCUMENTS)
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
    finally:
        if pool is not None:
            pool.terminate()
        bar.close()
        _WORK.clear()
    random.Random(random_seed).shuffle(records)
    summary.instances = len(records)

    partials = [f + ".partial" for f in output_files]
    options = "GZIP" if gzip_compress else ""
    writers = [tf.io.TFRecordWriter(p, options=options) for p in partials]
    for i, record in enumerate(records):
        writers[i % len(writers)].write(record)
    for writer in writers:
        writer.close()
    for partial, final in zip(partials, output_files):
        os.replace(partial, final)
    summary.seconds = time.time() - start_time
    return summary


def output_paths(output_file, num_shards):
    if num_shards:
        return [f"{output_file}-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]
    return [p for p in output_file.split(",") if p]


def main(argv):
    del argv
    from keras_bert_x.data.corpus import expand_inputs
    from keras_bert_x.text.tokenizer import load_vocabulary

    try:
        for name in ("input_file", "output_file", "vocab_file"):
            if not getattr(FLAGS, name):
                raise BertInputError(f"--{name} is required")
        config = MaskingConfig(FLAGS.max_seq_length, FLAGS.max_predictions_per_seq,
                               FLAGS.masked_lm_prob, FLAGS.short_seq_prob,
                               FLAGS.do_whole_word_mask)
        if config.max_seq_length < 5 or not 0 < config.masked_lm_prob < 1:
            raise BertInputError("--max_seq_length must be >= 5 and --masked_lm_prob in (0, 1)")
        inputs = expand_inputs(FLAGS.input_file)
        vocab = load_vocabulary(FLAGS.vocab_file)
        outputs = output_paths(FLAGS.output_file, FLAGS.num_output_shards)
        existing = [p for p in outputs if os.path.exists(p)]
        if existing and not FLAGS.overwrite:
            raise BertInputError(f"{existing[0]}: exists (pass --overwrite to replace it)")
        for path in outputs:
            if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
                raise BertInputError(f"{path}: output directory does not exist")
        summary = create_pretraining_data(
            inputs, outputs, vocab, config, FLAGS.dupe_factor, FLAGS.random_seed,
            FLAGS.do_lower_case, FLAGS.gzip_compress, FLAGS.num_workers, FLAGS.progress)
    except BertInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {', '.join(outputs)}: {summary}")
    return 0


if __name__ == "__main__":
    from keras_bert_x import cli

    cli.quiet_tensorflow()
    define_flags()
    app.run(main)
