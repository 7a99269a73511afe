"""TFLite files: ids in or text in, each quantisation mode, inputs bound by name."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_bert_x as kbx
from keras_bert_x.errors import BertInputError
from keras_bert_x.export.tflite import FLOAT_OPS, convert_to_tflite
from keras_bert_x.export.tflite_runner import TFLiteModel
from tests.helpers import SENTENCES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# As a user runs the commands: no log level of ours (the test session sets one).
USER_ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
LENGTH = 32
BROWN_LINES = 57340  # lines of the bundled Brown corpus


@pytest.fixture(scope="module")
def representative(tmp_path_factory):
    path = tmp_path_factory.mktemp("rep") / "sentences.txt"
    path.write_text("\n".join(SENTENCES * 4) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def classifier_and_features(model_dirs):
    model = kbx.BertClassifier.from_pretrained(model_dirs["classifier"])
    features = kbx.BertTokenizer(model.vocabulary, max_seq_length=LENGTH)(SENTENCES)
    return model, {k: v.numpy() for k, v in features.items()}


def test_ids_model_matches_keras_with_inputs_bound_by_name(model_dirs, classifier_and_features,
                                                            tmp_path):
    model, features = classifier_and_features
    path = tmp_path / "clf.tflite"
    convert_to_tflite(model_dirs["classifier"], path, max_seq_length=LENGTH)
    lite = TFLiteModel(str(path))
    assert lite.input_names == ("input_mask", "input_type_ids", "input_word_ids")
    assert lite.batch_size == 1
    out = lite.predict(features)
    np.testing.assert_allclose(out["logits"], model(features).numpy(), atol=1e-4)
    # Keyword order does not matter; a wrong or missing name is refused, not fed by position.
    row = {k: v[:1] for k, v in reversed(list(features.items()))}
    np.testing.assert_allclose(lite(**row)["logits"], out["logits"][:1], atol=1e-6)
    with pytest.raises(ValueError, match="do not match"):
        lite(input_ids=row["input_word_ids"], input_mask=row["input_mask"],
             input_type_ids=row["input_type_ids"])


@pytest.fixture(scope="module")
def long_model_dirs(tmp_path_factory, vocab_file):
    """bert_tiny models that take 128 positions, on MiniLM's first 1000 WordPieces (holding the
    reserved tokens): a small embedding keeps conversion fast."""
    from keras_bert_x.io_utils import read_vocab

    vocab = read_vocab(vocab_file)[:1000]
    config = kbx.BertConfig.from_preset("bert_tiny", vocab_size=len(vocab),
                                        max_position_embeddings=128)
    keras.utils.set_random_seed(2)
    models = {"classifier": kbx.BertClassifier(kbx.BertEncoder(config), labels=["n", "p"]),
              "span_qa": kbx.BertSpanQA(kbx.BertEncoder(config)),
              "token_classifier": kbx.BertTokenClassifier(kbx.BertEncoder(config),
                                                          labels=["O", "B", "I"])}
    root = tmp_path_factory.mktemp("long")
    for kind, model in models.items():
        model.vocabulary = vocab
        model.save_pretrained(root / kind)
    return {kind: (model, str(root / kind)) for kind, model in models.items()}


@pytest.mark.parametrize("kind", ["classifier", "span_qa", "token_classifier"])
def test_ids_model_runs_at_any_length(kind, long_model_dirs, tmp_path):
    from keras_bert_x.export.signatures import model_outputs

    model, model_dir = long_model_dirs[kind]
    path = tmp_path / "ids.tflite"
    convert_to_tflite(model_dir, path, max_seq_length=128)
    lite = TFLiteModel(str(path))
    assert lite.seq_length is None and lite.signatures["input_word_ids"] == (1, -1)
    rng = np.random.default_rng(0)
    for length in (8, 37, 128, 37):  # growing and shrinking: each call at its own length
        ids = rng.integers(5, 1000, (1, length), dtype=np.int32)
        mask = (np.arange(length) < length - 3).astype(np.int32)[None]  # a padded tail
        types = (np.arange(length) >= length // 2).astype(np.int32)[None]
        row = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}
        out = lite(**row)
        reference = model_outputs(model, row)
        assert sorted(out) == sorted(reference)
        for name, value in reference.items():
            np.testing.assert_allclose(out[name], value.numpy(), atol=1e-5, err_msg=name)
    with pytest.raises(ValueError, match=r"shape \[2, 8\], the model takes \[1, None\]"):
        lite(**{k: np.zeros((2, 8), np.int32) for k in lite.input_names})
    if kind == "classifier":  # a bare interpreter, as an app would resize it
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
        for detail in interpreter.get_input_details():
            interpreter.resize_tensor_input(detail["index"], [1, 37], strict=True)
        interpreter.allocate_tensors()
        runner = interpreter.get_signature_runner()
        np.testing.assert_allclose(runner(**row)["logits"], lite(**row)["logits"], atol=1e-6)


def _tensor_types(lite):
    """{op name: set of (input dtypes, output dtype)} of a TFLite model."""
    interpreter = lite.interpreter
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    types = {}
    for op in interpreter._get_ops_details():
        inputs = tuple(tensors[i]["dtype"].__name__ for i in op["inputs"] if i >= 0)
        types.setdefault(op["op_name"], set()).add(
            (inputs, tensors[op["outputs"][0]]["dtype"].__name__))
    return types


@pytest.mark.parametrize("mode", ["float16", "dynamic", "int8"])
def test_quantized_models_run_and_follow_keras(mode, model_dirs, classifier_and_features,
                                               representative, tmp_path):
    model, features = classifier_and_features
    path = tmp_path / f"{mode}.tflite"
    size = convert_to_tflite(model_dirs["classifier"], path, quantize=mode, max_seq_length=LENGTH,
                             representative_data=representative)
    assert size == os.path.getsize(path)
    lite = TFLiteModel(str(path))
    logits = lite.predict(features)["logits"]
    reference = model(features).numpy()
    assert np.isfinite(logits).all()
    # A random tiny model: logits are small; quantised ones stay within a tenth of their spread.
    assert np.abs(logits - reference).max() < 0.1 * (reference.max() - reference.min()) + 1e-3
    if mode == "int8":
        types = _tensor_types(lite)
        dense = types["FULLY_CONNECTED"]
        assert any(inputs[:2] == ("int8", "int8") for inputs, _ in dense), dense
        # The feed-forward output dense (widest input) and every FLOAT_OPS op stay float.
        assert any(inputs[0] == "float32" for inputs, _ in dense), dense
        for op in set(FLOAT_OPS) & set(types):
            assert all(out != "int8" for _, out in types[op]), (op, types[op])


def test_tokenizer_in_graph_model_runs_text(model_dirs, classifier_and_features, tmp_path):
    model, features = classifier_and_features
    path = tmp_path / "text.tflite"
    convert_to_tflite(model_dirs["classifier"], path, max_seq_length=LENGTH, with_tokenizer=True)
    lite = TFLiteModel(str(path))
    assert lite.input_names == ("text",)
    widths = set()
    for i, sentence in enumerate(SENTENCES):
        out = lite(text=np.array([sentence], dtype=object))
        # Padded to the smallest multiple of 16 holding the text (length_buckets="auto"):
        # the fixed-length ids without their padding tail, and the same logits.
        ids, width = out["input_word_ids"][0], out["input_word_ids"].shape[1]
        length = int(features["input_mask"][i].sum())
        assert width == min(-(-length // 16) * 16, LENGTH)
        np.testing.assert_array_equal(ids, features["input_word_ids"][i][:width])
        np.testing.assert_allclose(out["logits"][0], model(features).numpy()[i], atol=1e-4)
        widths.add(width)
    assert widths == {16, 32}
    with pytest.raises(BertInputError, match=r"every length must be in \[3, max_seq_length=32\]"):
        convert_to_tflite(model_dirs["classifier"], tmp_path / "bad.tflite", with_tokenizer=True,
                          max_seq_length=LENGTH, length_buckets="8,40")


def test_span_qa_with_tokenizer_packs_question_and_context(model_dirs, tmp_path):
    path = tmp_path / "qa.tflite"
    convert_to_tflite(model_dirs["span_qa"], path, max_seq_length=LENGTH, with_tokenizer=True,
                      quantize="dynamic")
    lite = TFLiteModel(str(path))
    assert lite.input_names == ("context", "question")
    tok = kbx.BertTokenizer(kbx.BertSpanQA.from_pretrained(model_dirs["span_qa"]).vocabulary,
                            max_seq_length=LENGTH, length_buckets="auto")
    question, context = "Who visited Paris?", "The cat sat."  # 13 tokens: the 16 bucket
    out = lite(question=np.array([question], dtype=object), context=np.array([context], dtype=object))
    expected = tok(([question], [context]))["input_word_ids"][0].numpy()
    np.testing.assert_array_equal(out["input_word_ids"][0], expected)
    assert out["start_logits"].shape == out["end_logits"].shape == (1, len(expected)) == (1, 16)


@pytest.mark.slow
def test_tokenizer_in_graph_gives_bert_tokenizer_ids_on_the_whole_bundled_corpus(model_dirs,
                                                                                  tmp_path):
    from keras_bert_x.data.corpus import bundled_documents

    length = 256  # Brown lines rarely reach it: whole lines are compared
    model = kbx.BertClassifier.from_pretrained(model_dirs["classifier"])
    config = kbx.BertConfig.from_preset("bert_tiny", vocab_size=30522, num_hidden_layers=1,
                                        max_position_embeddings=length)
    wide = kbx.BertClassifier(kbx.BertEncoder(config), labels=model.labels)
    wide.vocabulary = model.vocabulary
    wide.save_pretrained(tmp_path / "model")
    path = tmp_path / "text.tflite"
    convert_to_tflite(tmp_path / "model", path, max_seq_length=length, with_tokenizer=True)
    lite = TFLiteModel(str(path))
    lines = [line for document in bundled_documents() for line in document.splitlines()]
    tok = kbx.BertTokenizer(model.vocabulary, max_seq_length=length)
    differ = []
    for start in range(0, len(lines), 4096):
        chunk = lines[start:start + 4096]
        expected = tok(chunk)["input_word_ids"].numpy()
        for i, line in enumerate(chunk):
            got = lite(text=np.array([line], dtype=object))["input_word_ids"][0]
            if not np.array_equal(got, expected[i][:len(got)]) or expected[i][len(got):].any():
                differ.append(line)
    assert len(lines) == BROWN_LINES
    assert differ == []


def _run(script, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "export", script), *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=USER_ENV)


def _one_error_line(run):
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    return lines[0]


def test_tflite_command_line_refuses_bad_input(model_dirs, representative, tmp_path):
    out = str(tmp_path / "m.tflite")
    clf = model_dirs["classifier"]
    cases = [
        (["--model_dir", clf, "--output", out, "--quantize", "int4"], "use one of"),
        (["--model_dir", clf, "--output", out, "--quantize", "int8"], "--representative_data"),
        (["--model_dir", clf, "--output", out, "--quantize", "int8", "--with_tokenizer",
          "--representative_data", representative], "custom ops"),
        (["--model_dir", clf, "--output", out, "--quantize", "int8",
          "--representative_data", str(tmp_path / "none.txt")], "not found"),
        (["--model_dir", str(tmp_path / "missing"), "--output", out], "no such model directory"),
        (["--model_dir", model_dirs["pretrainer"], "--output", out], "BertPretrainer"),
        (["--model_dir", str(tmp_path), "--output", out], "not a keras_bert_x model directory"),
        (["--model_dir", model_dirs["span_qa"], "--output", out, "--sentence_pairs"],
         "sentence pairs are for classifiers"),
    ]
    for args, message in cases:
        assert message in _one_error_line(_run("tflite.py", *args, "--max_seq_length=32")), args
        assert not os.path.exists(out)
    (tmp_path / "m.tflite").write_bytes(b"mine")
    assert "exists" in _one_error_line(_run("tflite.py", "--model_dir", clf, "--output", out))
    assert (tmp_path / "m.tflite").read_bytes() == b"mine"
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []


def test_savedmodel_command_line_refuses_bad_input_and_never_overwrites(model_dirs, tmp_path):
    export_dir = tmp_path / "models" / "clf"
    ok = _run("savedmodel.py", "--model_dir", model_dirs["classifier"], "--export_dir",
              str(export_dir), "--max_seq_length", "16")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"exported {export_dir / '1'}"
    before = sorted(os.listdir(export_dir / "1"))
    cases = [
        (["--model_dir", model_dirs["classifier"], "--version", "1"], "version 1 exists"),
        (["--model_dir", str(tmp_path / "missing")], "no such model directory"),
        (["--model_dir", model_dirs["pretrainer"]], "BertPretrainer"),
        (["--model_dir", str(tmp_path / "models")], "not a keras_bert_x model directory"),
        (["--model_dir", model_dirs["classifier"], "--max_seq_length", "65"],
         "max_position_embeddings"),
        (["--model_dir", model_dirs["token_classifier"], "--sentence_pairs"],
         "sentence pairs are for classifiers"),
        (["--model_dir", model_dirs["classifier"], "--max_input_bytes", "0"],
         "--max_input_bytes must be >= 1"),
    ]
    for args, message in cases:
        run = _run("savedmodel.py", "--max_seq_length=16", *args, "--export_dir", str(export_dir))
        assert message in _one_error_line(run), args
    assert os.listdir(export_dir) == ["1"] and sorted(os.listdir(export_dir / "1")) == before
    version_folder = _run("savedmodel.py", "--model_dir", model_dirs["classifier"],
                          "--export_dir", str(export_dir / "1"))
    assert "looks like a version folder" in _one_error_line(version_folder)
    again = _run("savedmodel.py", "--model_dir", model_dirs["classifier"], "--export_dir",
                 str(export_dir), "--max_seq_length", "16")
    assert again.returncode == 0 and sorted(os.listdir(export_dir)) == ["1", "2"]
