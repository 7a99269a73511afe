"""The encoder converts to TFLite builtins (no new-axis strided slices, no Flex) and runs in LiteRT.

Conversion goes through a SavedModel written by `keras.export.ExportArchive`: converting a
`tf.function` concrete function directly mis-captures Keras 3 variables (outputs become NaN).
"""

import keras
import numpy as np
import tensorflow as tf

import keras_bert_x as kbx
from tests.helpers import random_batch


def test_encoder_converts_to_tflite_and_matches(tiny_config, tmp_path):
    enc = kbx.BertEncoder(tiny_config)
    seq_len = 12
    spec = {k: tf.TensorSpec([1, seq_len], tf.int32, name=k) for k in
            ("input_word_ids", "input_mask", "input_type_ids")}

    def serve(inputs):
        out = enc(inputs)
        return {"sequence_output": out["sequence_output"], "pooled_output": out["pooled_output"]}

    archive = keras.export.ExportArchive()
    archive.track(enc)
    archive.add_endpoint("serving_default", serve, input_signature=[spec])
    archive.write_out(str(tmp_path / "saved_model"), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved_model"))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    flatbuffer = converter.convert()

    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=flatbuffer).get_signature_runner()
    batch = random_batch(tiny_config.vocab_size, batch=1, seq_len=seq_len)
    lite = runner(**batch)
    ref = enc(batch)
    np.testing.assert_allclose(lite["sequence_output"], ref["sequence_output"], atol=1e-4)
    np.testing.assert_allclose(lite["pooled_output"], ref["pooled_output"], atol=1e-4)
