"""Tiny random models of every servable kind, saved as users save them, and their exports."""

import keras
import pytest

import keras_bert_x as kbx
from keras_bert_x.io_utils import read_vocab

MAX_SEQ_LENGTH = 32
QA_OPTIONS = dict(max_seq_length=48, doc_stride=8, max_query_length=12)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory, vocab_file):
    """{kind: save_pretrained directory} of bert_tiny models with MiniLM's real vocabulary."""
    config = kbx.BertConfig.from_preset("bert_tiny", vocab_size=30522, max_position_embeddings=64)
    keras.utils.set_random_seed(1)
    models = {
        "classifier": kbx.BertClassifier(kbx.BertEncoder(config), labels=["negative", "positive"]),
        "token_classifier": kbx.BertTokenClassifier(kbx.BertEncoder(config),
                                                    labels=["O", "B-PER", "I-PER", "B-LOC"]),
        "span_qa": kbx.BertSpanQA(kbx.BertEncoder(config)),
        "encoder": kbx.BertEncoder(config),
        "pretrainer": kbx.BertPretrainer(kbx.BertEncoder(config)),
    }
    root = tmp_path_factory.mktemp("models")
    dirs = {}
    for kind, model in models.items():
        model.vocabulary = read_vocab(vocab_file)
        model.save_pretrained(root / kind)
        dirs[kind] = str(root / kind)
    return dirs


@pytest.fixture(scope="session")
def exports(tmp_path_factory, model_dirs):
    """{kind: exported version directory} for the four servable kinds."""
    return export_every_kind(model_dirs, tmp_path_factory.mktemp("serving"))


def export_every_kind(model_dirs, root, **options):
    """{kind: export of model_dirs[kind] under root} for the four servable kinds."""
    from keras_bert_x.export.savedmodel import export_saved_model

    out = {}
    for kind in ("classifier", "token_classifier", "span_qa", "encoder"):
        lengths = QA_OPTIONS if kind == "span_qa" else dict(max_seq_length=MAX_SEQ_LENGTH)
        out[kind] = export_saved_model(model_dirs[kind], root / kind, **lengths, **options)
    return out
