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

Sequence length: a token-ids file takes [1, T] for any T up to max_position_embeddings
(resize the interpreter's inputs; `TFLiteModel` does). A text-in file pads each text to the
smallest of its `length_buckets` (by default multiples of 16 up to max_seq_length) that holds
it, so its outputs are [1, W]: on MR sentences 2.6x faster than padding to 128
(`bench/tflite_lengths.py`).
"""

import os
import shutil
import tempfile

import keras
import tensorflow as tf

from keras_bert_x.errors import BertInputError
from keras_bert_x.export.savedmodel import load_model, make_tokenizer
from keras_bert_x.export.signatures import model_outputs, text_input_names
from keras_bert_x.io_utils import native_logs_held
from keras_bert_x.models.encoder import INPUT_NAMES
from keras_bert_x.text.packing import length_buckets as resolve_buckets

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")


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
    archive = keras.export.ExportArchive()  # the endpoint tracks the model's variables
    if with_tokenizer:
        def serve(*texts):
            features = tokenizer(texts[0] if len(texts) == 1 else tuple(texts))
            return {**model_outputs(model, features), "input_word_ids": features["input_word_ids"]}

        specs = [tf.TensorSpec([1], tf.string, name=n) for n in input_names]
    else:
        def serve(features):
            return model_outputs(model, features)

        # Sequence length left open (shape_signature -1): the interpreter takes any length up
        # to max_position_embeddings after resize_tensor_input, so short texts cost less.
        specs = [{n: tf.TensorSpec([1, None], tf.int32, name=n) for n in INPUT_NAMES}]
    archive.add_endpoint("serving_default", serve, input_signature=specs)
    archive.write_out(path, verbose=False)


def convert_to_tflite(model_dir, output, quantize="none", with_tokenizer=False,
                      representative_data=None, max_seq_length=128, sentence_pairs=False,
                      calibration_examples=200, overwrite=False, int8_float_ops=None,
                      length_buckets="auto"):
    """Writes the `.tflite` file `output` (atomically); returns its size in bytes.

    `length_buckets` (with `with_tokenizer`): "auto", "none" (always max_seq_length) or
    lengths, as `BertTokenizer` takes them; a token-ids file takes any length anyway.

    `int8_float_ops` replaces the `int8` recipe's float ops and float feed-forward output
    (a list of TFLite op names; [] quantises everything): for the ablation in
    `bench/export_mr.py`, not for use."""
    if quantize not in QUANTIZE_MODES:
        raise BertInputError(f"--quantize={quantize!r}: use one of {', '.join(QUANTIZE_MODES)}")
    length_buckets = resolve_buckets(length_buckets, max_seq_length)  # refuses bad specs early
    if quantize == "int8" and with_tokenizer:
        # The calibrator runs the model with builtin ops only: "Failed to initialize op
        # resolver for calibration" on tf-text's custom ops.
        raise BertInputError("--quantize=int8 cannot calibrate a model with the tokenizer "
                             "inside (TFLite's calibrator cannot run tf-text's custom ops); use "
                             "--quantize=dynamic with --with_tokenizer, or int8 on token ids")
    if quantize == "int8" and not representative_data:
        raise BertInputError("--quantize=int8 calibrates on real text: give "
                             "--representative_data FILE (one example per line)")
    if quantize == "int8" and not os.path.isfile(representative_data):
        raise BertInputError(f"{representative_data}: representative data file not found")
    output = os.path.abspath(output)
    if os.path.exists(output) and not overwrite:
        raise BertInputError(f"{output}: exists (pass --overwrite to replace it)")
    if os.path.isdir(output):
        raise BertInputError(f"{output}: is a directory")
    model, source = load_model(model_dir)
    try:
        input_names = text_input_names(model, sentence_pairs)
    except ValueError as e:
        raise BertInputError(f"{source}: {e}") from None
    tokenizer = make_tokenizer(model, max_seq_length)
    calibration = None
    if quantize == "int8":
        texts = read_representative_text(representative_data, input_names, calibration_examples)
        features = tokenizer(texts[0] if len(texts) == 1 else tuple(texts))
        calibration = {k: v.numpy() for k, v in features.items()}
    graph_tokenizer = make_tokenizer(model, max_seq_length, tflite_compatible=True,
                                     length_buckets=length_buckets) \
        if with_tokenizer else tokenizer
    os.makedirs(os.path.dirname(output), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tflite-", dir=os.path.dirname(output))
    try:
        saved = os.path.join(tmp, "saved_model")
        _write_saved_model(model, graph_tokenizer, saved, with_tokenizer, input_names)
        with native_logs_held():
            flatbuffer = _convert(saved, quantize, with_tokenizer, calibration,
                                  int8_float_ops)
        partial = os.path.join(tmp, "model.tflite")
        with open(partial, "wb") as f:
            f.write(flatbuffer)
        os.replace(partial, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return len(flatbuffer)


def _convert(saved_model, quantize, with_tokenizer, calibration, int8_float_ops=None):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = with_tokenizer
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        return int8_quantization(converter, calibration, int8_float_ops)
    return converter.convert()


# Ops whose outputs stay float in `int8` mode: LayerNorm (MEAN, SQUARED_DIFFERENCE, RSQRT,
# SUB, MUL, ADD), the attention mask's bias, both attention matmuls, softmax, residual adds,
# GELU and tanh.
FLOAT_OPS = ["ADD", "SUB", "MUL", "MEAN", "SQUARED_DIFFERENCE", "RSQRT", "BATCH_MATMUL",
             "SOFTMAX", "GELU", "TANH"]


def int8_quantization(converter, calibration, float_ops=None):
    """Post-training int8 that keeps accuracy on BERT (measured: `bench/export_mr.py`).

    Quantising every op collapses a fine-tuned model to chance. Three kinds of tensor cannot
    share one int8 scale per tensor: attention scores before the mask (the -10000 bias sets
    the range, real scores all round to 0), LayerNorm's statistics, and the feed-forward
    output, whose few outlier channels (range ~230 against ~1 elsewhere) leave a step of ~1 for
    everything else. So the dense layers that read LayerNorm outputs (query/key/value, the
    attention output, the feed-forward input, pooler, head) run int8 with int8 weights and
    activations, while both attention matmuls (Q·Kᵀ, and probabilities·V, which measured
    less accurate and slower in int8 here), softmax, the mask, LayerNorm, GELU, residual adds
    and the feed-forward output dense stay float32 - as Q8BERT keeps softmax, LayerNorm and
    GELU in float. Selection goes through TFLite's quantization debugger (denylists).
    """
    interpreter, ops, tensors = _float_model_ops(converter)
    order = _input_order(interpreter)

    count = len(next(iter(calibration.values())))

    def representative():
        for i in range(count):
            yield [calibration[name][i:i + 1] for name in order]

    def representative_by_name():
        for i in range(count):
            yield {name: calibration[name][i:i + 1] for name in order}

    converter.representative_dataset = representative_by_name
    float_nodes = _float_nodes(ops, tensors) if float_ops is None else []
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=representative,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=FLOAT_OPS if float_ops is None else float_ops,
            denylisted_nodes=float_nodes))
    return debugger.get_nondebug_quantized_model()


def _float_model_ops(converter):
    """(interpreter, ops, tensors by index) of the float conversion of `converter`'s model,
    for naming its inputs and picking nodes."""
    from ai_edge_litert.interpreter import Interpreter

    optimizations, converter.optimizations = converter.optimizations, []
    representative, converter.representative_dataset = converter.representative_dataset, None
    try:
        interpreter = Interpreter(model_content=converter.convert())
    finally:
        converter.optimizations, converter.representative_dataset = optimizations, representative
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    return interpreter, interpreter._get_ops_details(), tensors


def _input_order(interpreter):
    """Input names in the order of `get_input_details()` (the debugger feeds lists)."""
    runner = interpreter.get_signature_runner()
    by_index = {d["index"]: name for name, d in runner.get_input_details().items()}
    return [by_index[d["index"]] for d in interpreter.get_input_details()]


def _float_nodes(ops, tensors):
    """Output tensor names of the feed-forward output denses: the dense layers whose input is
    the widest (intermediate_size)."""
    dense = [(int(tensors[op["inputs"][1]]["shape"][-1]), tensors[op["outputs"][0]]["name"])
             for op in ops if op["op_name"] == "FULLY_CONNECTED"]
    widest = max((width for width, _ in dense), default=0)
    return [name for width, name in dense if width == widest]
