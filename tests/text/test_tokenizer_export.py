"""The tokenizer inside exported graphs: SavedModel (TF Serving) and TFLite (tf-text custom ops)."""

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from keras_bert_x.text import BertTokenizer

TEXTS = ["Hello world, this is a test.", "Another sentence!", ""]


class _Serving(tf.Module):
    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        return self.tokenizer(text)


def test_savedmodel_with_string_signature_loads_in_fresh_process(vocab_file, tmp_path):
    tok = BertTokenizer(vocab_file, max_seq_length=16)
    module = _Serving(tok)
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serve})
    expected = tok(TEXTS)["input_word_ids"].numpy()

    # What TF Serving does: a process with TensorFlow and the tf-text ops, nothing of ours.
    script = ("import sys, numpy as np, tensorflow as tf, tensorflow_text\n"
              "m = tf.saved_model.load(sys.argv[1])\n"
              "out = m.signatures['serving_default'](text=tf.constant(sys.argv[2:] + ['']))\n"
              "np.save(sys.argv[1] + '/ids.npy', out['input_word_ids'].numpy())\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "sm"), *TEXTS[:2]],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "sm" / "ids.npy"), expected)


def test_tflite_compatible_mode_converts_and_runs(vocab_file, tmp_path):
    import tensorflow_text
    from ai_edge_litert.interpreter import InterpreterWithCustomOps

    tok = BertTokenizer(vocab_file, max_seq_length=16, tflite_compatible=True)
    module = _Serving(tok)
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serve})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True
    interpreter = InterpreterWithCustomOps(
        model_content=converter.convert(),
        custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS)
    runner = interpreter.get_signature_runner("serving_default")
    lite = runner(text=np.array(TEXTS))
    strict = BertTokenizer(vocab_file, max_seq_length=16)(TEXTS)
    for key in ("input_word_ids", "input_mask", "input_type_ids"):
        np.testing.assert_array_equal(lite[key], strict[key].numpy())
