"""The `data` suite: create_pretraining_data (ours vs Model Garden's, the programs of
bench/create_pretraining_data.py, same input and flags), and the dynamic-masking input
pipeline's examples/s, to set against what the training step consumes."""

import os
import time

from bench.perf.common import PREDICTIONS, SEQ


def dynamic_masking(batch, steps, work):
    """Examples/s of `dynamic_masking_dataset` over the bundled corpus (WordPiece, masking and
    NSP pairing on the fly), the pipeline `trainers/pretrain.py --train_text` reads."""
    from keras_bert_x.data.corpus import bundled_documents, write_documents
    from keras_bert_x.data.dynamic_masking import dynamic_masking_dataset
    from keras_bert_x.data.instances import MaskingConfig
    from keras_bert_x.demo.stages import minilm_dir

    corpus = write_documents(os.path.join(work, "corpus.txt"), bundled_documents())
    dataset = dynamic_masking_dataset(corpus, os.path.join(minilm_dir(), "vocab.txt"), batch,
                                      MaskingConfig(SEQ, PREDICTIONS), seed=1)
    iterator = iter(dataset)
    for _ in range(20):  # warm-up: file open, tables, the first shuffle buffer
        next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    seconds = time.perf_counter() - start
    return {"examples_per_s": steps * batch / seconds, "batches": steps, "batch": batch}
