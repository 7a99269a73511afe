"""What the exported signatures must return, computed the way training and evaluation compute
it: Python-side features (`keras_bert_x.data.tasks`) and the Keras model."""

import json
import os

import numpy as np

import keras_bert_x as kbx
from keras_bert_x.data.tasks.conll import TaggedSentences, token_classification_features
from keras_bert_x.data.tasks.squad import read_squad, split_words, squad_features
from keras_bert_x.data.tasks.squad_postprocess import squad_predictions
from keras_bert_x.models.encoder import INPUT_NAMES


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def classifier(model_dir, texts, max_seq_length):
    model = kbx.BertClassifier.from_pretrained(model_dir)
    tok = kbx.BertTokenizer(model.vocabulary, max_seq_length=max_seq_length)
    probabilities = _softmax(model(tok(texts)).numpy())
    return {"probabilities": probabilities,
            "label": [model.labels[i] for i in probabilities.argmax(-1)]}


def token_classifier(model_dir, texts, max_seq_length):
    """Per text: [(word, start, end, tag, probability)] of the words that fit."""
    model = kbx.BertTokenClassifier.from_pretrained(model_dir)
    tok = kbx.BertTokenizer(model.vocabulary, max_seq_length=max_seq_length)
    split = [split_words(t) for t in texts]
    words = [w for w, _, _ in split]
    sentences = TaggedSentences(words, [["O"] * len(w) for w in words], [0] * len(texts), "test")
    features = token_classification_features(tok, sentences, model.labels)
    probabilities = _softmax(model({k: features[k] for k in INPUT_NAMES}).numpy())
    out = []
    for row, (row_words, starts, _) in enumerate(split):
        first_pieces = np.flatnonzero(features["labels"][row] >= 0)
        out.append([(row_words[w], starts[w], starts[w] + len(row_words[w]),
                     model.labels[probabilities[row, p].argmax()], probabilities[row, p].max())
                    for w, p in enumerate(first_pieces)])
    return out


def span_qa(model_dir, questions, contexts, tmp_path, max_seq_length, doc_stride,
            max_query_length):
    """Per question: the best n-best entry {text, start, end, score} of squad_predictions."""
    model = kbx.BertSpanQA.from_pretrained(model_dir)
    tok = kbx.BertTokenizer(model.vocabulary, max_seq_length=max_seq_length)
    paragraphs = [{"context": c, "qas": [{"id": str(i), "question": q, "answers": []}]}
                  for i, (q, c) in enumerate(zip(questions, contexts))]
    path = os.path.join(tmp_path, "questions.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}, f)
    data = read_squad(path, is_training=False)
    features = squad_features(tok, data, max_seq_length=max_seq_length, doc_stride=doc_stride,
                              max_query_length=max_query_length)
    # The export reads at most max_windows (8) windows per context; this reference reads all.
    assert np.bincount(features.example_index).max() <= 8, "a context needs more than 8 windows"
    logits = model.predict({k: features.arrays[k] for k in INPUT_NAMES}, verbose=0)
    _, nbest = squad_predictions(data, features, logits["start_logits"], logits["end_logits"],
                                 model.vocabulary)
    return [nbest[str(i)][0] for i in range(len(questions))]
