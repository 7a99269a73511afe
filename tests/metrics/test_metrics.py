"""Task metrics against the references the benchmarks use: the official SQuAD scripts (Model
Garden ships copies of both), scikit-learn, scipy and seqeval."""

import numpy as np
import pytest

from keras_bert_x import metrics

SQUAD = [{"paragraphs": [{"qas": [
    {"id": "q1", "answers": [{"text": "Denver Broncos"}, {"text": "the Broncos"}]},
    {"id": "q2", "answers": [{"text": "Santa Clara, California"}]},
    {"id": "q3", "answers": [{"text": "1895"}, {"text": "in 1895"}]},
    {"id": "q4", "answers": [{"text": "Gold"}]},
    {"id": "q5", "answers": [{"text": "The"}]},  # normalises to nothing
    {"id": "q6", "answers": []},                 # unanswerable (v2.0)
    {"id": "q7", "answers": [{"text": "Levi's Stadium"}]},
    {"id": "q8", "answers": [{"text": "three"}]},
    {"id": "q9", "answers": [{"text": "Super Bowl 50"}]},
    {"id": "q10", "answers": [{"text": "an orange ball"}]},
]}]}]
PREDICTIONS = {
    "q1": "Broncos",                  # partial overlap
    "q2": "santa clara california",   # case and punctuation
    "q3": "in 1895.",
    "q4": "",                         # empty prediction
    "q5": "",                         # empty against a truth that normalises to nothing
    "q6": "",                         # right for an unanswerable question
    "q7": "Levis Stadium",            # apostrophe removed, still exact
    "q8": "3",
    "q10": "orange ball, an",         # q9 has no prediction
}


def test_squad_v1_1_matches_the_official_script():
    from official.nlp.tools import squad_evaluate_v1_1 as official

    v1 = [{"paragraphs": [{"qas": [q for q in SQUAD[0]["paragraphs"][0]["qas"]
                                   if q["answers"]]}]}]  # v1.1 has no unanswerable questions
    expected = official.evaluate(v1, PREDICTIONS)  # fractions
    ours = metrics.squad_scores({q["id"]: [a["text"] for a in q["answers"]]
                                 for q in v1[0]["paragraphs"][0]["qas"]}, PREDICTIONS)
    assert ours["exact_match"] == pytest.approx(100 * expected["exact_match"], abs=1e-9)
    assert ours["f1"] == pytest.approx(100 * expected["final_f1"], abs=1e-9)
    assert ours["missing"] == 1
    assert 0 < ours["f1"] < 100 and 0 < ours["exact_match"] < 100


def test_squad_v2_0_matches_the_official_script():
    from official.nlp.tools import squad_evaluate_v2_0 as official

    expected = official.evaluate(SQUAD, PREDICTIONS)  # percent
    ours = metrics.squad_scores({q["id"]: [a["text"] for a in q["answers"]]
                                 for q in SQUAD[0]["paragraphs"][0]["qas"]}, PREDICTIONS,
                                version="2.0")
    assert ours["exact_match"] == pytest.approx(expected["exact"], abs=1e-9)
    assert ours["f1"] == pytest.approx(expected["f1"], abs=1e-9)


def test_classification_metrics_match_scikit_learn():
    from sklearn.metrics import f1_score, matthews_corrcoef

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 500)
    predictions = np.where(rng.random(500) < 0.6, labels, rng.integers(0, 4, 500))
    assert metrics.accuracy(labels, predictions) == pytest.approx(np.mean(labels == predictions))
    assert metrics.macro_f1(labels, predictions) == pytest.approx(
        f1_score(labels, predictions, average="macro"), abs=1e-12)
    assert metrics.matthews_corrcoef(labels, predictions) == pytest.approx(
        matthews_corrcoef(labels, predictions), abs=1e-12)
    binary = labels % 2, predictions % 2
    assert metrics.matthews_corrcoef(*binary) == pytest.approx(matthews_corrcoef(*binary))
    assert metrics.matthews_corrcoef([1, 1, 1], [1, 1, 1]) == 0.0  # undefined: 0, as sklearn


def test_correlations_match_scipy():
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    y = x + rng.normal(size=300)
    y[::7] = y[0]  # ties
    assert metrics.pearson(x, y) == pytest.approx(pearsonr(x, y)[0], abs=1e-12)
    assert metrics.spearman(x, y) == pytest.approx(spearmanr(x, y)[0], abs=1e-12)


def test_entity_scores():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["O", "B-ORG", "O"]]
    # 3 gold entities, 2 predicted, 1 right (the ORG span is cut short).
    assert metrics.entity_scores(gold, predicted) == pytest.approx(
        {"precision": 0.5, "recall": 1 / 3, "f1": 0.4})
