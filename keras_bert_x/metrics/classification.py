"""Accuracy, macro-F1 and Matthews correlation for classes; Pearson and Spearman for scores.

numpy only: these are a few lines each, and the definitions are the ones GLUE uses
(scikit-learn's `f1_score(average="macro")` and `matthews_corrcoef`, scipy's correlations).
"""

import numpy as np


def accuracy(labels, predictions):
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return float(np.mean(labels == predictions)) if len(labels) else 0.0


def _confusion(labels, predictions):
    classes = np.union1d(labels, predictions)
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), np.int64)
    np.add.at(matrix, ([index[x] for x in labels], [index[x] for x in predictions]), 1)
    return matrix


def macro_f1(labels, predictions):
    """Unweighted mean of the per-class F1 over the classes seen in labels or predictions."""
    matrix = _confusion(np.asarray(labels), np.asarray(predictions))
    tp = np.diag(matrix).astype(float)
    precision = np.divide(tp, matrix.sum(0), out=np.zeros_like(tp), where=matrix.sum(0) > 0)
    recall = np.divide(tp, matrix.sum(1), out=np.zeros_like(tp), where=matrix.sum(1) > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(tp),
                   where=denominator > 0)
    return float(f1.mean()) if len(f1) else 0.0


def matthews_corrcoef(labels, predictions):
    """Multi-class Matthews correlation (Gorodkin's R_K); 0 when undefined."""
    matrix = _confusion(np.asarray(labels), np.asarray(predictions)).astype(float)
    t, p = matrix.sum(1), matrix.sum(0)
    correct, n = np.trace(matrix), matrix.sum()
    numerator = correct * n - t @ p
    denominator = np.sqrt((n ** 2 - p @ p) * (n ** 2 - t @ t))
    return float(numerator / denominator) if denominator > 0 else 0.0


def pearson(labels, predictions):
    x, y = np.asarray(labels, float), np.asarray(predictions, float)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denominator) if denominator > 0 else 0.0


def _ranks(values):
    """Ranks from 1, ties sharing their mean rank (as scipy.stats.rankdata)."""
    values = np.asarray(values, float)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    unique, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / np.bincount(inverse))[inverse]


def spearman(labels, predictions):
    return pearson(_ranks(labels), _ranks(predictions))
