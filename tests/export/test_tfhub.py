"""TF-Hub-format export: the tutorial's code (`hub.KerasLayer` preprocessor + trainable encoder
in a tf_keras model) runs on our export in a fresh process without keras_bert_x, computes what
our Keras model computes, and fine-tunes it."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keras_bert_x as kbx
from keras_bert_x.errors import BertInputError
from keras_bert_x.export.savedmodel import make_tokenizer
from keras_bert_x.export.tfhub import export_tfhub
from tests.export.conftest import MAX_SEQ_LENGTH
from tests.helpers import SENTENCES, one_error_line

TEXTS = SENTENCES + ["", "Ünïcödé — ĀĒĪ 你好 \u00a0 naïve", " ".join(SENTENCES)]
PAIR_LENGTH = 24
POSITIONS = np.array([[1, 2, 5]] * len(TEXTS), "int32")

# Runs in a fresh interpreter with TensorFlow, tensorflow_text, tensorflow_hub and tf_keras
# only: the tutorial's code shape, then the API's other entry points.
USER_CODE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  (registers the tokenizer's ops)
    import tf_keras

    export, data, out = sys.argv[1:]
    texts = list(np.load(data)["texts"])
    text_input = tf_keras.layers.Input(shape=(), dtype=tf.string)
    preprocessor = hub.KerasLayer(f"{export}/preprocessor")
    encoder = hub.KerasLayer(f"{export}/encoder", trainable=True)
    outputs = encoder(preprocessor(text_input))
    embed = tf_keras.Model(text_input, outputs)
    got = embed(tf.constant(texts))
    result = {"pooled": got["pooled_output"].numpy(), "sequence": got["sequence_output"].numpy(),
              "default": got["default"].numpy(),
              "last_layer": got["encoder_outputs"][-1].numpy(),
              "num_layers": len(got["encoder_outputs"])}

    loaded = hub.load(f"{export}/preprocessor")
    result["features"] = loaded(tf.constant(texts))["input_word_ids"].numpy()
    a = tf_keras.layers.Input(shape=(), dtype=tf.string)
    b = tf_keras.layers.Input(shape=(), dtype=tf.string)
    tokenize = hub.KerasLayer(loaded.tokenize)
    pack = hub.KerasLayer(loaded.bert_pack_inputs, arguments=dict(seq_length=%(pair_length)d))
    pairs = tf_keras.Model([a, b], pack([tokenize(a), tokenize(b)]))
    packed = pairs([tf.constant(texts[:6]), tf.constant(texts[6:12])])
    for key in ("input_word_ids", "input_mask", "input_type_ids"):
        result["pair_" + key] = packed[key].numpy()
    special = {k: int(v) for k, v in loaded.tokenize.get_special_tokens_dict().items()}
    # [batch, words, pieces] as tf-text's BertTokenizer (Model Garden's preprocessor) splits.
    words = loaded.tokenize(tf.constant(texts)).to_list()
    vocab = loaded.vocab_file.asset_path.numpy().decode()
    reference = tensorflow_text.BertTokenizer(vocab, lower_case=True, token_out_type=tf.int32)
    same_words = words == reference.tokenize(tf.constant(texts)).to_list()

    mlm_encoder = hub.load(f"{export}/encoder")
    features = loaded(tf.constant(texts))
    dropout_on = [encoder(features, training=True)["pooled_output"].numpy() for _ in range(2)]
    dropout_off = encoder(features, training=False)["pooled_output"].numpy()
    result["mlm_logits"] = mlm_encoder.mlm({**features, "masked_lm_positions":
                                            tf.constant(np.load(data)["positions"])})[
                                                "mlm_logits"].numpy()

    # A few steps of fine-tuning through KerasLayer(trainable=True).
    tf_keras.utils.set_random_seed(0)
    logits = tf_keras.layers.Dense(2)(outputs["pooled_output"])
    classifier = tf_keras.Model(text_input, logits)
    classifier.compile(tf_keras.optimizers.Adam(5e-4),
                       tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = tf.constant(texts), np.arange(len(texts)) %% 2
    before_weights = [v.numpy().copy() for v in encoder.trainable_weights]
    before = classifier.evaluate(x, y, verbose=0)
    classifier.fit(x, y, epochs=10, batch_size=len(texts), verbose=0)
    after = classifier.evaluate(x, y, verbose=0)
    changed = sum(not np.array_equal(w, v.numpy())
                  for w, v in zip(before_weights, encoder.trainable_weights))
    np.savez(out, **result)
    print(json.dumps({"special": special, "loss_before": before, "loss_after": after,
                      "same_words_as_tf_text": same_words,
                      "training_calls_differ": not np.allclose(*dropout_on),
                      "training_differs_from_inference": not np.allclose(dropout_on[0],
                                                                         dropout_off),
                      "do_lower_case": bool(mlm_encoder.do_lower_case.numpy()),
                      "encoder_vocab": open(mlm_encoder.vocab_file.asset_path.numpy().decode(),
                                            encoding="utf-8").read().splitlines()[:3],
                      "trainable": len(encoder.trainable_weights), "changed": changed,
                      "keras_bert_x_imported": "keras_bert_x" in sys.modules}))
""") % {"pair_length": PAIR_LENGTH}


@pytest.fixture(scope="module")
def hub_export(model_dirs, tmp_path_factory):
    """The pretrainer exported (its encoder, and `mlm` from its head), and our own outputs."""
    root = tmp_path_factory.mktemp("tfhub")
    export = export_tfhub(model_dirs["pretrainer"], root / "hub", seq_length=MAX_SEQ_LENGTH)
    model = kbx.BertPretrainer.from_pretrained(model_dirs["pretrainer"])
    features = {k: v.numpy() for k, v in make_tokenizer(model, MAX_SEQ_LENGTH)(TEXTS).items()}
    pairs = make_tokenizer(model, PAIR_LENGTH)((TEXTS[:6], TEXTS[6:12]))
    ours = model.encoder(features)
    expected = {"features": features["input_word_ids"],
                "pooled": np.asarray(ours["pooled_output"]),
                "sequence": np.asarray(ours["sequence_output"]),
                "last_layer": np.asarray(ours["encoder_outputs"][-1]),
                "mask": features["input_mask"],
                "mlm_logits": np.asarray(model({**features, "masked_lm_positions": POSITIONS})[
                    "mlm_logits"]),
                **{"pair_" + k: v.numpy() for k, v in pairs.items()}}
    data = root / "data.npz"
    np.savez(data, texts=np.array(TEXTS), positions=POSITIONS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    run = subprocess.run([sys.executable, "-c", USER_CODE, export, data, root / "got.npz"],
                         capture_output=True, text=True, env=env, cwd=root, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert sorted(os.listdir(root)) == ["data.npz", "got.npz", "hub"]  # no scratch left
    return dict(np.load(root / "got.npz")), expected, summary, model


def test_layout_and_a_fresh_process_that_does_not_import_keras_bert_x(hub_export):
    got, _, summary, model = hub_export
    assert summary["keras_bert_x_imported"] is False
    assert int(got["num_layers"]) == model.config.num_hidden_layers
    assert summary["do_lower_case"] is True
    assert summary["encoder_vocab"] == ["[PAD]", "[unused0]", "[unused1]"]


def test_preprocessor_gives_our_tokenizer_ids(hub_export):
    got, expected, summary, model = hub_export
    np.testing.assert_array_equal(got["features"], expected["features"])
    assert summary["special"] == {"vocab_size": 30522, "start_of_sequence_id": 101,
                                  "end_of_segment_id": 102, "padding_id": 0, "mask_id": 103}
    assert summary["same_words_as_tf_text"] is True


def test_bert_pack_inputs_on_pairs_gives_our_tokenizer_ids(hub_export):
    got, expected, _, _ = hub_export
    for key in ("input_word_ids", "input_mask", "input_type_ids"):
        np.testing.assert_array_equal(got["pair_" + key], expected["pair_" + key])
    assert got["pair_input_word_ids"].shape == (6, PAIR_LENGTH)


def test_encoder_outputs_match_our_keras_model(hub_export):
    got, expected, _, _ = hub_export
    real = expected["mask"].astype(bool)
    assert np.abs(got["pooled"] - expected["pooled"]).max() <= 1e-5
    np.testing.assert_array_equal(got["default"], got["pooled"])
    assert np.abs(got["sequence"][real] - expected["sequence"][real]).max() <= 1e-5
    assert np.abs(got["last_layer"][real] - expected["last_layer"][real]).max() <= 1e-5
    assert np.abs(got["mlm_logits"] - expected["mlm_logits"]).max() <= 1e-4


def test_keras_layer_fine_tunes_the_encoder(hub_export):
    _, _, summary, model = hub_export
    assert summary["training_calls_differ"] and summary["training_differs_from_inference"]
    assert summary["trainable"] == len(model.encoder.trainable_weights)
    assert summary["changed"] == summary["trainable"]
    assert summary["loss_after"] < summary["loss_before"] - 0.05


def test_a_classifier_exports_its_encoder(model_dirs, tmp_path):
    """A fine-tuned task model's directory gives its encoder (no `mlm`), and `serving_default`
    for saved_model_cli and TF Serving."""
    import tensorflow as tf

    export = export_tfhub(model_dirs["classifier"], tmp_path / "hub", seq_length=16)
    classifier = kbx.BertClassifier.from_pretrained(model_dirs["classifier"])
    features = {k: v.numpy() for k, v in make_tokenizer(classifier, 16)(SENTENCES).items()}
    loaded = tf.saved_model.load(os.path.join(export, "encoder"))
    assert not hasattr(loaded, "mlm")
    ours = np.asarray(classifier.encoder(features)["pooled_output"])
    assert np.abs(loaded(features)["pooled_output"].numpy() - ours).max() <= 1e-5
    served = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in
                                                      features.items()})
    assert sorted(served) == ["default", "pooled_output", "sequence_output"]
    assert np.abs(served["pooled_output"].numpy() - ours).max() <= 1e-5


def _run_tfhub(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "export", "tfhub.py")
    return subprocess.run([sys.executable, script, *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=env)


def test_an_existing_export_dir_is_one_error_line_and_left_alone(model_dirs, tmp_path):
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "notes.txt").write_text("mine")
    run = _run_tfhub("--model_dir", model_dirs["encoder"], "--export_dir", tmp_path / "hub")
    assert one_error_line(run) == (f"error: {tmp_path / 'hub'}: exists; exports never replace "
                                   "anything (choose a new --export_dir)")
    assert os.listdir(tmp_path / "hub") == ["notes.txt"]


def test_bad_model_dirs_and_length_are_refused(model_dirs, tmp_path):
    run = _run_tfhub("--model_dir", tmp_path / "nothing", "--export_dir", tmp_path / "out")
    assert one_error_line(run) == f"error: {tmp_path / 'nothing'}: no such model directory"
    with pytest.raises(BertInputError, match="--seq_length=100: must be from 3"):
        export_tfhub(model_dirs["encoder"], tmp_path / "out2", seq_length=100)
    encoder = kbx.BertEncoder(kbx.BertConfig.from_preset("bert_tiny", vocab_size=50,
                                                         num_hidden_layers=1))
    encoder.save_pretrained(tmp_path / "no_vocab")  # no vocabulary known
    with pytest.raises(BertInputError, match="has no vocab.txt"):
        export_tfhub(tmp_path / "no_vocab", tmp_path / "out3")
    assert sorted(os.listdir(tmp_path)) == ["no_vocab"]
