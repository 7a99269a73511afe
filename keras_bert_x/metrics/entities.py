"""Entity-level precision, recall and F1 of BIO tag sequences, with seqeval (CoNLL's scoring)."""


def entity_scores(true_tags, predicted_tags):
    """{precision, recall, f1} over entities: a predicted entity counts when its type and its
    exact span match (seqeval's default, conlleval-compatible mode)."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    true_tags, predicted_tags = list(map(list, true_tags)), list(map(list, predicted_tags))
    return {"precision": float(precision_score(true_tags, predicted_tags, zero_division=0)),
            "recall": float(recall_score(true_tags, predicted_tags, zero_division=0)),
            "f1": float(f1_score(true_tags, predicted_tags, zero_division=0))}
