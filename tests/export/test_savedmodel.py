"""The TF Serving export: raw text in, task outputs out, loaded as TF Serving loads it."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.export import reference
from tests.export.conftest import MAX_SEQ_LENGTH, QA_OPTIONS

TEXTS = ["Barack Obama visited Paris with Angela Merkel in 2009.",
         "A dull, far too long film; I left early!",
         "",
         "   \t  ",
         "Café naïve — über Straße, 東京 and Ελλάδα.",
         "John Smith lives in New York and works for the United Nations in Geneva, "
         "Switzerland, where he met Mary Jones from London during the long winter of 2011."]
QUESTIONS = ["Who visited Paris?", "When did it happen?", "Where does John live?", "What?", "",
             "Wo wohnt José?"]
CONTEXTS = [TEXTS[0], "It happened in 1999 (on a Sunday), said Dr. Who.", TEXTS[5] * 3, "", "x",
            "José Müller wohnt in Zürich, am Zürichsee; er mag Crème brûlée (sehr) gern. " * 3]

# What TF Serving does: a process with TensorFlow and the tf-text ops, nothing of ours.
FRESH_PROCESS = """
import json, sys
import tensorflow as tf, tensorflow_text
model = tf.saved_model.load(sys.argv[1])
inputs = json.load(open(sys.argv[2], encoding="utf-8"))
out = model.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
out = {k: [x.decode("utf-8") if isinstance(x, bytes) else x for x in v.numpy().ravel().tolist()]
       + [list(v.shape)] for k, v in out.items()}
assert not any(m.startswith("keras_bert_x") for m in sys.modules), "keras_bert_x was imported"
json.dump(out, open(sys.argv[3], "w", encoding="utf-8"))
"""


def serve_in_fresh_process(version_dir, inputs, tmp_path):
    with open(tmp_path / "inputs.json", "w", encoding="utf-8") as f:
        json.dump(inputs, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
    run = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(version_dir),
                          str(tmp_path / "inputs.json"), str(tmp_path / "out.json")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(tmp_path / "out.json", encoding="utf-8") as f:
        flat = json.load(f)
    return {k: np.array(v[:-1], dtype=object if v and isinstance(v[0], str) else None).reshape(v[-1])
            for k, v in flat.items()}


def test_classifier_serves_raw_text_like_keras_in_a_fresh_process(exports, model_dirs, tmp_path):
    out = serve_in_fresh_process(exports["classifier"], {"text": TEXTS}, tmp_path)
    ref = reference.classifier(model_dirs["classifier"], TEXTS, MAX_SEQ_LENGTH)
    np.testing.assert_allclose(out["probabilities"], ref["probabilities"], atol=1e-5)
    assert out["label"].tolist() == ref["label"]
    assert out["label_id"].tolist() == ref["probabilities"].argmax(-1).tolist()


def test_token_classifier_serves_words_and_tags_like_keras(exports, model_dirs, tmp_path):
    out = serve_in_fresh_process(exports["token_classifier"], {"text": TEXTS}, tmp_path)
    ref = reference.token_classifier(model_dirs["token_classifier"], TEXTS, MAX_SEQ_LENGTH)
    assert len(ref[5]) < len(TEXTS[5].split()), "the long text must not fit whole"
    for row, expected in enumerate(ref):
        n = out["num_words"][row]
        assert n == len(expected)
        assert out["words"][row, :n].tolist() == [w for w, *_ in expected]
        assert out["word_starts"][row, :n].tolist() == [s for _, s, *_ in expected]
        assert out["word_ends"][row, :n].tolist() == [e for _, _, e, *_ in expected]
        assert out["tags"][row, :n].tolist() == [t for *_, t, _ in expected]
        np.testing.assert_allclose(out["tag_probabilities"][row, :n],
                                   [p for *_, p in expected], atol=1e-5)
        assert (out["tag_ids"][row, n:] == -1).all() and (out["words"][row, n:] == "").all()
    # Offsets are characters of the request text, non-ASCII included.
    text, words = TEXTS[4], out["words"][4]
    assert [text[s:e] for s, e in zip(out["word_starts"][4], out["word_ends"][4])
            if s >= 0] == [w for w in words if w]


def test_span_qa_serves_answers_like_squad_evaluation(exports, model_dirs, tmp_path):
    out = serve_in_fresh_process(exports["span_qa"],
                                 {"question": QUESTIONS, "context": CONTEXTS}, tmp_path)
    options = {k: v for k, v in QA_OPTIONS.items()}
    ref = reference.span_qa(model_dirs["span_qa"], QUESTIONS, CONTEXTS, tmp_path, **options)
    for row, expected in enumerate(ref):
        assert out["answer"][row] == expected["text"], row
        assert (out["start"][row], out["end"][row]) == (expected["start"], expected["end"]), row
        assert out["score"][row] == pytest.approx(expected["score"], abs=1e-5), row
        if expected["start"] >= 0:
            assert CONTEXTS[row][expected["start"]:expected["end"]] == out["answer"][row]
    assert ref[3]["text"] == "" and out["start"][3] == -1  # an empty context has no answer


def test_encoder_serves_pooled_and_sequence_outputs(exports, model_dirs):
    import keras_bert_x as kbx

    encoder = kbx.BertEncoder.from_pretrained(model_dirs["encoder"])
    tok = kbx.BertTokenizer(encoder.vocabulary, max_seq_length=MAX_SEQ_LENGTH)
    expected = encoder(tok(TEXTS))
    out = tf.saved_model.load(exports["encoder"]).signatures["serving_default"](
        text=tf.constant(TEXTS))
    np.testing.assert_allclose(out["pooled_output"], expected["pooled_output"], atol=1e-5)
    np.testing.assert_allclose(out["sequence_output"], expected["sequence_output"], atol=1e-5)
    assert out["input_mask"].numpy().tolist() == tok(TEXTS)["input_mask"].numpy().tolist()


def test_serve_ids_returns_the_models_logits(exports, model_dirs):
    import keras_bert_x as kbx

    model = kbx.BertClassifier.from_pretrained(model_dirs["classifier"])
    features = kbx.BertTokenizer(model.vocabulary, max_seq_length=20)(TEXTS)
    out = tf.saved_model.load(exports["classifier"]).signatures["serve_ids"](**features)
    np.testing.assert_allclose(out["logits"], model(features), atol=1e-5)


def test_saved_model_cli_lists_both_signatures(exports):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    run = subprocess.run([cli, "show", "--dir", exports["span_qa"], "--all"],
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert run.returncode == 0, run.stderr[-2000:]
    for needle in ("signature_def['serving_default']", "signature_def['serve_ids']",
                   "inputs['question']", "inputs['context']", "outputs['answer']",
                   "inputs['input_word_ids']", "outputs['start_logits']"):
        assert needle in run.stdout, needle


def test_export_holds_assets_and_a_description(exports):
    from keras_bert_x.io_utils import read_vocab

    path = exports["classifier"]
    assert read_vocab(os.path.join(path, "assets", "labels.txt")) == ("negative", "positive")
    assert len(read_vocab(os.path.join(path, "assets", "vocab.txt"))) == 30522
    with open(os.path.join(path, "assets.extra", "keras_bert_x.json")) as f:
        meta = json.load(f)
    assert meta["model_class"] == "BertClassifier" and meta["inputs"] == ["text"]
    assert meta["versions"]["tensorflow_text"].startswith("2.20")
    assert os.path.basename(path) == "1"
    assert os.listdir(os.path.dirname(path)) == ["1"]  # no temporary folder left behind


@pytest.mark.parametrize("kind", ["classifier", "token_classifier", "span_qa", "encoder"])
def test_warmup_requests_parse_and_replay(exports, kind):
    from keras_bert_x.export.warmup import read_warmup
    from keras_bert_x.serving.client import parse_tensors

    requests = read_warmup(exports[kind])
    assert 1 <= len(requests) <= 1000
    signature = tf.saved_model.load(exports[kind]).signatures["serving_default"]
    for request in requests:
        assert request.model_spec.signature_name == "serving_default"
        inputs = parse_tensors(request.inputs)
        out = signature(**{k: tf.constant(list(v)) for k, v in inputs.items()})
        assert all(v.shape[0] == len(next(iter(inputs.values()))) for v in out.values())


@pytest.mark.parametrize("kind", ["classifier", "token_classifier", "span_qa"])
def test_serving_default_survives_hostile_requests(exports, kind):
    signature = tf.saved_model.load(exports[kind]).signatures["serving_default"]
    hostile = [b"", b"   \n\t ", ("word " * 20_000).encode(), "naïve 東京 😀".encode(),
               b"\xff\xfe\xc3(broken \x80 utf-8\x00 nul", b"\xe6\x9d"]

    def serve(texts):
        if kind == "span_qa":
            return signature(question=tf.constant(texts), context=tf.constant(texts))
        return signature(text=tf.constant(texts))

    for batch in ([hostile[0]], hostile, [b"a short one"] * 256):
        out = serve(batch)
        for name, value in out.items():
            assert value.shape[0] == len(batch), name
            if value.dtype.is_floating:
                assert np.isfinite(value.numpy()).all(), name
    # Only the first max_input_bytes of a request are read: words past the cap do not exist.
    with open(os.path.join(exports[kind], "assets.extra", "keras_bert_x.json")) as f:
        cap = json.load(f)["max_input_bytes"]
    padded = " " * cap * (8 if kind == "span_qa" else 1) + "word " * 2_000_000
    out = serve([padded])
    if kind == "classifier":
        np.testing.assert_array_equal(out["probabilities"], serve([b""])["probabilities"])
    if kind == "token_classifier":
        assert out["num_words"].numpy().tolist() == [0]
        assert out["truncated"].numpy().tolist() == [True]
    if kind == "span_qa":
        assert out["start"].numpy().tolist() == [-1]


def test_token_classifier_says_which_texts_lost_words(exports):
    signature = tf.saved_model.load(exports["token_classifier"]).signatures["serving_default"]
    out = signature(text=tf.constant([TEXTS[0], TEXTS[5]]))
    assert out["truncated"].numpy().tolist() == [False, True]


def test_span_qa_reads_at_most_max_windows_windows(exports, vocab_file):
    import keras_bert_x as kbx

    signature = tf.saved_model.load(exports["span_qa"]).signatures["serving_default"]
    context = TEXTS[5] * 12
    # Window k starts k * doc_stride pieces in; 8 windows cover the words whose pieces start
    # before 7 * stride + room: the context cut after them answers the same.
    tok = kbx.BertTokenizer(vocab_file, max_seq_length=QA_OPTIONS["max_seq_length"])
    room = QA_OPTIONS["max_seq_length"] - len(tok.tokenize(["Where?"]).to_list()[0]) - 3
    covered, seen, end = 7 * QA_OPTIONS["doc_stride"] + room, 0, 0
    words = tok.word_pieces([context])[0]
    for word, pieces in zip(context.split(" "), words):
        if seen >= covered:
            break
        seen += len(pieces)
        end = context.index(word, end) + len(word)
    assert seen < sum(len(p) for p in words)  # the context is longer than 8 windows
    whole, cut = (signature(question=tf.constant(["Where?"]), context=tf.constant([c]))
                  for c in (context, context[:end]))
    for name in whole:
        assert whole[name].numpy().tolist() == cut[name].numpy().tolist(), name


def test_mismatched_question_and_context_batches_are_refused(exports):
    signature = tf.saved_model.load(exports["span_qa"]).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="as many strings"):
        signature(question=tf.constant(["a", "b"]), context=tf.constant(["c"]))


def test_label_names_come_from_the_labels_asset(exports, tmp_path):
    import shutil

    copy = tmp_path / "1"
    shutil.copytree(exports["classifier"], copy)
    (copy / "assets" / "labels.txt").write_text("bad\ngood\n", encoding="utf-8")
    out = tf.saved_model.load(str(copy)).signatures["serving_default"](text=tf.constant(TEXTS))
    assert set(out["label"].numpy().tolist()) <= {b"bad", b"good"}


def test_sentence_pair_and_regression_classifiers(model_dirs, tmp_path):
    import keras_bert_x as kbx
    from keras_bert_x.export.savedmodel import export_saved_model

    pairs = export_saved_model(model_dirs["classifier"], tmp_path / "pairs", max_seq_length=24,
                               sentence_pairs=True)
    model = kbx.BertClassifier.from_pretrained(model_dirs["classifier"])
    tok = kbx.BertTokenizer(model.vocabulary, max_seq_length=24)
    signature = tf.saved_model.load(pairs).signatures["serving_default"]
    out = signature(text=tf.constant(TEXTS), text_b=tf.constant(TEXTS[::-1]))
    expected = tf.nn.softmax(model(tok((TEXTS, TEXTS[::-1])))).numpy()
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="as many strings"):
        signature(text=tf.constant(TEXTS), text_b=tf.constant(TEXTS[:2]))

    regression = kbx.BertClassifier(model.encoder, num_classes=1)
    regression.vocabulary = model.vocabulary
    regression.save_pretrained(tmp_path / "regression_model")
    path = export_saved_model(tmp_path / "regression_model", tmp_path / "regression",
                              max_seq_length=24)
    out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(TEXTS))
    assert list(out) == ["score"]
    np.testing.assert_allclose(out["score"], regression(tok(TEXTS)).numpy()[:, 0], atol=1e-5)


def test_a_fine_tuning_run_directory_resolves_to_best_then_final(model_dirs, tmp_path):
    import pathlib

    from keras_bert_x.export.savedmodel import resolve_model_dir
    from tests.helpers import copy_dir

    (tmp_path / "run").mkdir()
    copy_dir(pathlib.Path(model_dirs["classifier"]), tmp_path / "run" / "final")
    assert resolve_model_dir(str(tmp_path / "run")) == str(tmp_path / "run" / "final")
    copy_dir(pathlib.Path(model_dirs["classifier"]), tmp_path / "run" / "best")
    assert resolve_model_dir(str(tmp_path / "run")) == str(tmp_path / "run" / "best")
