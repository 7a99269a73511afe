"""The `tflite` suite: batch-1 latency and size of the exported classifier (MiniLM-L6, the
packaged real English BERT, with a 2-class head) per form: the fp32 SavedModel (`serve_ids`)
and TFLite without quantisation, float16, dynamic-range int8 and full int8."""

import os

from bench.perf.common import SEQ

FORMS = ("savedmodel", "none", "float16", "dynamic", "int8")


def prepare(work):
    """Saves the classifier, exports it, and converts it once per quantisation mode."""
    import keras

    import keras_bert_x as kbx
    from bench.perf.infer import sentences
    from keras_bert_x.demo.stages import minilm_dir
    from keras_bert_x.export.savedmodel import export_saved_model
    from keras_bert_x.export.tflite import convert_to_tflite

    keras.utils.set_random_seed(0)
    model_dir = os.path.join(work, "minilm_classifier")
    encoder = kbx.BertEncoder.from_pretrained(minilm_dir(), source="hf")
    model = kbx.BertClassifier(encoder, 2)
    model.vocabulary, model.lower_case = encoder.vocabulary, True
    model.save_pretrained(model_dir)
    export_saved_model(model_dir, os.path.join(work, "minilm_export"), version=1,
                       max_seq_length=SEQ)
    calibration = os.path.join(work, "calibration.txt")
    with open(calibration, "w") as f:
        f.write("\n".join(sentences(100)) + "\n")
    for form in FORMS[1:]:
        convert_to_tflite(model_dir, os.path.join(work, f"minilm_{form}.tflite"), quantize=form,
                          representative_data=calibration, max_seq_length=SEQ,
                          calibration_examples=100)


def _features():
    import numpy as np

    from bench.perf.infer import sentences
    from keras_bert_x.demo.stages import minilm_dir
    from keras_bert_x.text.tokenizer import BertTokenizer

    tokenizer = BertTokenizer(os.path.join(minilm_dir(), "vocab.txt"), lower_case=True,
                              max_seq_length=SEQ)
    features = tokenizer(sentences(1))
    return {k: np.asarray(v) for k, v in features.items()}


def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
               for f in files)


def latency(form, work):
    """(call, size in bytes) for one form."""
    features = _features()
    if form == "savedmodel":
        import tensorflow as tf
        import tensorflow_text  # noqa: F401

        path = os.path.join(work, "minilm_export", "1")
        serve = tf.saved_model.load(path).signatures["serve_ids"]
        feed = {k: tf.constant(v) for k, v in features.items()}
        return (lambda: serve(**feed)["logits"].numpy()), _size(path)
    from keras_bert_x.export.tflite_runner import TFLiteModel

    path = os.path.join(work, f"minilm_{form}.tflite")
    lite = TFLiteModel(path, num_threads=os.cpu_count())
    return (lambda: lite(**features)["logits"]), _size(path)
