"""TFLite files of our models: token ids in (or raw text, with the tokenizer inside), batch 1.

Quantisation modes:
- `none`: float32, the Keras model's numbers.
- `float16`: weights stored in float16 (half the size), computed in float32.
- `dynamic`: weights int8, activations quantised on the fly per batch (dynamic range).
- `int8`: weights and activations int8 with ranges calibrated on representative text;
  see `int8_quantization` for what stays in float and why.

With `with_tokenizer`, the graph starts at strings: the tokenizer's `tflite_compatible` mode
(tf-text's FastBertTokenizer normalises, dense packing) needs tf-text's custom ops, which
`TFLiteModel` registers (on Android/iOS, link tf-text's TFLite ops into the app). Its outputs
include the `input_word_ids` it made.
"""

import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_bert_x.errors import BertInputError
from keras_bert_x.export.savedmodel import load_model, make_tokenizer
from keras_bert_x.export.signatures import serving_for
from keras_bert_x.models.encoder import INPUT_NAMES

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")


def text_input_names(model, sentence_pairs=False):
    from keras_bert_x.models import BertSpanQA

    if isinstance(model, BertSpanQA):
        return ("question", "context")
    return ("text", "text_b") if sentence_pairs else ("text",)


def read_representative_text(path, input_names, limit):
    """Up to `limit` examples of a text file: one per line, tab-separated fields for models
    with two text inputs; blank lines skipped."""
    if not os.path.isfile(path):
        raise BertInputError(f"{path}: representative data file not found")
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < len(input_names):
                raise BertInputError(f"{path}:{number}: {len(fields)} tab-separated field(s), "
                                     f"the model takes {len(input_names)} ({', '.join(input_names)})")
            rows.append(fields[:len(input_names)])
            if len(rows) >= limit:
                break
    if not rows:
        raise BertInputError(f"{path}: no text in the representative data file")
    return [list(column) for column in zip(*rows)]


def _write_saved_model(model, tokenizer, path, with_tokenizer, input_names):
    serving = serving_for(model, tokenizer, max_input_bytes=1)  # only serve_ids is used
    length = tokenizer.max_seq_length
    archive = keras.export.ExportArchive()
    archive.track(model)
    if with_tokenizer:
        def serve(*texts):
            features = tokenizer(texts[0] if len(texts) == 1 else tuple(texts))
            return {**serving.serve_ids(features), "input_word_ids": features["input_word_ids"]}

        specs = [tf.TensorSpec([1], tf.string, name=n) for n in input_names]
    else:
        def serve(features):
            return serving.serve_ids(features)

        specs = [{n: tf.TensorSpec([1, length], tf.int32, name=n) for n in INPUT_NAMES}]
    archive.add_endpoint("serving_default", serve, input_signature=specs)
    archive.write_out(path, verbose=False)


def convert_to_tflite(model_dir, output, quantize="none", with_tokenizer=False,
                      representative_data=None, max_seq_length=128, sentence_pairs=False,
                      calibration_examples=200, overwrite=False):
    """Writes the `.tflite` file `output` (atomically); returns its size in bytes."""
    if quantize not in QUANTIZE_MODES:
        raise BertInputError(f"--quantize={quantize!r}: use one of {', '.join(QUANTIZE_MODES)}")
    if quantize == "int8" and not representative_data:
        raise BertInputError("--quantize=int8 calibrates on real text: give "
                             "--representative_data FILE (one example per line)")
    output = os.path.abspath(output)
    if os.path.exists(output) and not overwrite:
        raise BertInputError(f"{output}: exists (pass --overwrite to replace it)")
    if os.path.isdir(output):
        raise BertInputError(f"{output}: is a directory")
    model, _ = load_model(model_dir)
    input_names = text_input_names(model, sentence_pairs)
    tokenizer = make_tokenizer(model, max_seq_length)
    calibration = None
    if quantize == "int8":
        texts = read_representative_text(representative_data, input_names, calibration_examples)
        features = tokenizer(texts[0] if len(texts) == 1 else tuple(texts))
        calibration = {k: v.numpy() for k, v in features.items()}
    graph_tokenizer = make_tokenizer(model, max_seq_length, tflite_compatible=True) \
        if with_tokenizer else tokenizer
    os.makedirs(os.path.dirname(output), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tflite-", dir=os.path.dirname(output))
    try:
        saved = os.path.join(tmp, "saved_model")
        _write_saved_model(model, graph_tokenizer, saved, with_tokenizer, input_names)
        flatbuffer = _convert(saved, quantize, with_tokenizer, calibration)
        partial = os.path.join(tmp, "model.tflite")
        with open(partial, "wb") as f:
            f.write(flatbuffer)
        os.replace(partial, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return len(flatbuffer)


def _convert(saved_model, quantize, with_tokenizer, calibration):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = with_tokenizer
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        return int8_quantization(converter, calibration)
    return converter.convert()


def int8_quantization(converter, calibration):
    raise NotImplementedError
