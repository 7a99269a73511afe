"""SQuAD exact match and F1, as the official evaluation scripts (v1.1 and v2.0) compute them.

An answer is lower-cased, stripped of punctuation, of the articles a/an/the and of extra
whitespace; exact match compares the normalised strings, F1 their bags of tokens; each
question scores its best ground truth. The versions differ in three corners, kept here: v2.0
drops ground truths that normalise to nothing (a question left without any has the single
truth "", right only for an empty prediction), its F1 of two empty answers is 1 where v1.1's
is 0, and a question without a prediction scores 0 in v1.1 but is left out in v2.0.
"""

import collections
import re
import string

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text):
    text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction, truth):
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction, truth, version="1.1"):
    predicted, true = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if version == "2.0" and (not predicted or not true):
        return float(predicted == true)
    common = sum((collections.Counter(predicted) & collections.Counter(true)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(true)
    return 2 * precision * recall / (precision + recall)


def squad_scores(answers, predictions, version="1.1"):
    """{exact_match, f1} in percent over the questions of `answers` ({id: [texts]}), and how
    many had no prediction: v1.1 scores those 0, v2.0 leaves them out of the mean."""
    em = f1_total = 0.0
    missing = 0
    for qid, truths in answers.items():
        if version == "2.0":
            truths = [t for t in truths if normalize_answer(t)] or [""]
        if qid not in predictions:
            missing += 1
            continue
        prediction = predictions[qid]
        em += max(exact_match(prediction, t) for t in truths)
        f1_total += max(f1(prediction, t, version) for t in truths)
    n = max(len(answers) - (missing if version == "2.0" else 0), 1)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1_total / n, "missing": missing}
