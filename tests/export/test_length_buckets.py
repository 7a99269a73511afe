"""Serving on real lengths: a length-bucketed export answers as the fixed-length one does."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_bert_x.export.warmup import read_warmup
from tests.export.conftest import MAX_SEQ_LENGTH, QA_OPTIONS, export_every_kind

# Lengths that fall in different buckets of 16 (up to 32 positions), empty included.
TEXTS = ["Paris.", "", "Barack Obama visited Paris with Angela Merkel in 2009, she said.",
         "A dull, far too long film; I left early, long before the end of it, and so did my "
         "friends from Geneva and London.", "Café naïve — über Straße, 東京."]
QUESTIONS = ["Who visited Paris?", "When?", "What did she say about the film in Geneva?"]
CONTEXTS = [TEXTS[2], "It happened in 1999.", TEXTS[3] * 3]


@pytest.fixture(scope="module")
def fixed_exports(tmp_path_factory, model_dirs):
    return export_every_kind(model_dirs, tmp_path_factory.mktemp("fixed"), length_buckets="none")


def _serve(path, **inputs):
    signature = tf.saved_model.load(path).signatures["serving_default"]
    return {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in inputs.items()})
            .items()}


def _assert_same(bucketed, fixed):
    for name, value in fixed.items():
        if value.dtype.kind in "fc":
            np.testing.assert_allclose(bucketed[name], value, atol=1e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(bucketed[name], value, err_msg=name)


@pytest.mark.parametrize("kind", ["classifier", "token_classifier"])
def test_bucketed_export_equals_fixed_length_in_every_batch(exports, fixed_exports, kind):
    for batch in ([TEXTS[0]], [TEXTS[1]], [TEXTS[3]], TEXTS):  # one bucket each, and mixed
        _assert_same(_serve(exports[kind], text=batch), _serve(fixed_exports[kind], text=batch))


def test_bucketed_span_qa_gives_the_same_answers(exports, fixed_exports):
    for index in ([0], [1], [2], [0, 1, 2]):
        inputs = dict(question=[QUESTIONS[i] for i in index],
                      context=[CONTEXTS[i] for i in index])
        _assert_same(_serve(exports["span_qa"], **inputs),
                     _serve(fixed_exports["span_qa"], **inputs))


def test_bucketed_encoder_pads_to_the_bucket_only(exports, fixed_exports):
    bucketed = _serve(exports["encoder"], text=TEXTS[:2])
    fixed = _serve(fixed_exports["encoder"], text=TEXTS[:2])
    assert bucketed["sequence_output"].shape[1] == 16 and fixed["sequence_output"].shape[1] == 32
    np.testing.assert_allclose(bucketed["pooled_output"], fixed["pooled_output"], atol=1e-5)
    real = bucketed["input_mask"].astype(bool)
    np.testing.assert_array_equal(fixed["input_mask"][:, :16], bucketed["input_mask"])
    np.testing.assert_allclose(bucketed["sequence_output"][real],
                               fixed["sequence_output"][:, :16][real], atol=1e-5)


@pytest.mark.parametrize("kind", ["classifier", "token_classifier", "span_qa", "encoder"])
def test_metadata_states_the_buckets_and_warmup_runs_each_one(exports, vocab_file, kind):
    import keras_bert_x as kbx

    with open(os.path.join(exports[kind], "assets.extra", "keras_bert_x.json")) as f:
        buckets = json.load(f)["length_buckets"]
    top = QA_OPTIONS["max_seq_length"] if kind == "span_qa" else MAX_SEQ_LENGTH
    assert buckets == list(range(16, top + 1, 16))
    tok = kbx.BertTokenizer(vocab_file, max_seq_length=top, length_buckets=buckets)
    signature = tf.saved_model.load(exports[kind]).signatures["serving_default"]
    widths = set()
    for request in read_warmup(exports[kind]):
        inputs = {k: tf.make_ndarray(v).tolist() for k, v in request.inputs.items()}
        signature(**{k: tf.constant(v) for k, v in inputs.items()})  # every record runs
        if kind == "span_qa":  # one window: [CLS] question [SEP] context [SEP]
            pieces = sum(int(tok.tokenize(inputs[k]).row_lengths()[0]) for k in inputs) + 3
            widths.add(min(-(-pieces // 16) * 16, top))
        else:
            widths.add(int(tok(inputs["text"])["input_word_ids"].shape[1]))
    assert set(buckets) <= widths
