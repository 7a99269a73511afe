"""A TF Serving model from one of our model directories: `export_dir/<version>/`, a SavedModel.

Signatures: `serving_default` takes raw strings (the tokenizer runs in the graph) and returns
the task's outputs (`keras_bert_x.export.signatures`); `serve_ids` takes the three int32
inputs and returns logits. The vocabulary and label names are assets; warm-up requests and
a `keras_bert_x.json` description sit in `assets.extra/` (which TF Serving does not load).
The SavedModel loads in any process with TensorFlow and tensorflow_text, the way TF Serving
(which links the tf-text ops) loads it; it needs nothing of keras_bert_x.

The version directory appears whole or not at all: it is written beside its final place under
a name TF Serving ignores, then renamed. An existing version is never replaced.
"""

import json
import os
import re
import shutil
import tempfile

import keras
import tensorflow as tf

from keras_bert_x.errors import BertInputError
from keras_bert_x.export.signatures import ids_signature, serving_for
from keras_bert_x.export.text_input import default_max_bytes
from keras_bert_x.export.warmup import write_warmup

METADATA_FILE = os.path.join("assets.extra", "keras_bert_x.json")
SERVABLE_CLASSES = ("BertClassifier", "BertTokenClassifier", "BertSpanQA", "BertEncoder")


def resolve_model_dir(path):
    """A save_pretrained directory of ours: `path` itself, or the `best/` (else `final/`) of a
    fine-tuning run's --model_dir."""
    from keras_bert_x.models.pretrained import is_our_format

    path = os.fspath(path)
    if not os.path.isdir(path):
        raise BertInputError(f"{path}: no such model directory")
    for candidate in (path, os.path.join(path, "best"), os.path.join(path, "final")):
        if is_our_format(candidate):
            return candidate
    raise BertInputError(f"{path}: not a keras_bert_x model directory (no config.json of ours, "
                         "nor best/ or final/ of a fine-tuning run)")


def load_model(path, classes=SERVABLE_CLASSES):
    """(model, its directory): the model a directory holds, of the class it was saved as (one
    of `classes`; None takes any), with the vocabulary an exported tokenizer needs."""
    from keras_bert_x.models.pretrained import _read_ours

    path = resolve_model_dir(path)
    saved_class = _read_ours(path)[0]
    if classes is not None and saved_class.__name__ not in classes:
        raise BertInputError(f"{path}: holds a {saved_class.__name__}, which has no serving "
                             f"form; export one of {', '.join(SERVABLE_CLASSES)}")
    model = saved_class.from_pretrained(path)
    if model.vocabulary is None:
        raise BertInputError(f"{path}: has no vocab.txt, which the exported tokenizer needs")
    return model, path


def make_tokenizer(model, max_seq_length, **kwargs):
    from keras_bert_x.text.tokenizer import BertTokenizer

    limit = model.config.max_position_embeddings
    if max_seq_length > limit:
        raise BertInputError(f"--max_seq_length={max_seq_length} exceeds the model's "
                             f"max_position_embeddings={limit}")
    lower_case = True if model.lower_case is None else model.lower_case
    return BertTokenizer(model.vocabulary, lower_case=lower_case, max_seq_length=max_seq_length,
                         **kwargs)


def scratch_vocab(tmp, tokenizer):
    """`tmp/scratch/vocab.txt`: the tokenizer's vocabulary as a file, for an export to take in
    as its asset (the scratch folder itself is not part of the export)."""
    from keras_bert_x.io_utils import write_vocab

    scratch = os.path.join(tmp, "scratch")
    os.makedirs(scratch)
    vocab_file = os.path.join(scratch, "vocab.txt")
    write_vocab(vocab_file, tokenizer.vocabulary)
    return vocab_file


def next_version(export_dir):
    versions = [int(n) for n in os.listdir(export_dir) if re.fullmatch(r"\d+", n)] \
        if os.path.isdir(export_dir) else []
    return max(versions, default=0) + 1


def id_table(path):
    """id -> line of a text file (a vocabulary, label names), as a table backed by the file:
    the SavedModel then carries the file as an asset and TF Serving initialises the table."""
    initializer = tf.lookup.TextFileInitializer(
        path, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
        tf.string, tf.lookup.TextFileIndex.WHOLE_LINE)
    return tf.lookup.StaticHashTable(initializer, default_value="")


def write_archive(serving, path, vocab_file, labels_file=None):
    """The SavedModel of `serving` (a `signatures` object) at `path`. The vocabulary and the
    label names go in as file-backed tables (Keras's ExportArchive saves tracked tables, and
    so copies their files into assets/): label names are read from labels.txt at serving
    time; the vocabulary table is for tools (the tokenizer's WordPiece model is compiled into
    the graph)."""
    archive = keras.export.ExportArchive()
    # The endpoints track the model's variables themselves; `archive.track(model)` as well
    # would store every weight twice (once per Keras variable, once per TF variable).
    archive.track(id_table(vocab_file))
    if labels_file:
        serving.label_table = id_table(labels_file)
        archive.track(serving.label_table)
    specs = [tf.TensorSpec([None], tf.string, name=n) for n in serving.text_inputs]
    archive.add_endpoint("serving_default", serving.serve_text, input_signature=specs)
    archive.add_endpoint("serve_ids", serving.serve_ids, input_signature=ids_signature())
    archive.write_out(path, verbose=False)


def export_saved_model(model_dir, export_dir, version=None, max_seq_length=128,
                       sentence_pairs=False, max_input_bytes=None, length_buckets="auto",
                       **window_options):
    """Writes `export_dir/<version>/` (the next free number by default); returns its path.

    `length_buckets` ("auto": multiples of 16; "none": always max_seq_length; or lengths): the
    raw-text signature pads each request to the smallest bucket that holds its longest text,
    so a short request costs a short computation and a server sees a handful of shapes."""
    from keras_bert_x.io_utils import write_vocab

    export_dir = os.path.abspath(os.fspath(export_dir))
    if re.fullmatch(r"\d+", os.path.basename(export_dir)):
        raise BertInputError(f"{export_dir}: looks like a version folder; give the model's "
                             f"folder ({os.path.dirname(export_dir)}) and --version")
    if max_input_bytes is not None and max_input_bytes < 1:
        raise BertInputError(f"--max_input_bytes must be >= 1, got {max_input_bytes}")
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise BertInputError(f"{export_dir}: exists and is not a directory")
    version = next_version(export_dir) if version is None else int(version)
    if version < 0:
        raise BertInputError(f"--version must be >= 0, got {version}")
    final = os.path.join(export_dir, str(version))
    if os.path.exists(final):
        raise BertInputError(f"{final}: version {version} exists; versions are never "
                             "overwritten (give another --version, or none for the next)")
    model, source = load_model(model_dir)
    tokenizer = make_tokenizer(model, max_seq_length, length_buckets=length_buckets)
    max_input_bytes = max_input_bytes or default_max_bytes(max_seq_length)
    try:
        serving = serving_for(model, tokenizer, max_input_bytes, sentence_pairs, **window_options)
    except ValueError as e:
        raise BertInputError(f"{source}: {e}") from None
    os.makedirs(export_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)
    try:
        vocab_file = scratch_vocab(tmp, tokenizer)
        labels_file = None
        if getattr(model, "labels", None):
            labels_file = os.path.join(os.path.dirname(vocab_file), "labels.txt")
            write_vocab(labels_file, model.labels)
        saved = os.path.join(tmp, "saved_model")
        write_archive(serving, saved, vocab_file, labels_file)
        name = os.path.basename(export_dir.rstrip(os.sep))
        write_warmup(saved, name, serving.warmup_requests())
        _write_metadata(saved, model, tokenizer, serving, source, max_input_bytes)
        # Not os.mkdir(final) first: a server polling export_dir would see an empty version.
        if os.path.exists(final):
            raise BertInputError(f"{final}: appeared while exporting; left as it is")
        try:
            os.rename(saved, final)
        except OSError as e:
            raise BertInputError(f"{final}: cannot move the export into place ({e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _write_metadata(path, model, tokenizer, serving, source, max_input_bytes):
    import tensorflow_text

    import keras_bert_x

    data = {"model_class": type(model).__name__, "source": source,
            "inputs": list(serving.text_inputs),
            "labels": list(getattr(model, "labels", None) or []) or None,
            "max_seq_length": tokenizer.max_seq_length, "lower_case": tokenizer.lower_case,
            # The lengths serving_default pads a batch to (null: always max_seq_length).
            "length_buckets": list(tokenizer.length_buckets or []) or None,
            "max_input_bytes": max_input_bytes,
            "versions": {"tensorflow": tf.__version__, "tensorflow_text": tensorflow_text.__version__,
                         "keras": keras.__version__, "keras_bert_x": keras_bert_x.__version__}}
    if hasattr(serving, "answerer"):
        a = serving.answerer
        data.update(doc_stride=a.doc_stride, max_query_length=a.max_query_length,
                    max_answer_length=a.max_answer_length, max_windows=a.max_windows)
    with open(os.path.join(path, METADATA_FILE), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
