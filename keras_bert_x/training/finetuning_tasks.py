"""The fine-tuning tasks of the training loop: classification, regression, token classification
and span question answering. Losses are sums over weighted examples divided by global counts
(see `losses.py`); the benchmark metrics (macro-F1, Matthews, correlations, seqeval entity F1,
SQuAD EM/F1) are computed on the host from the predictions of every example."""

import numpy as np
import tensorflow as tf

from keras_bert_x import metrics
from keras_bert_x.training.losses import Task, weighted_sums


class ClassificationTask(Task):
    """Cross-entropy over `labels` (class ids); accuracy, macro-F1 and Matthews correlation."""

    main_metric = "accuracy"

    def __init__(self, labels):
        self.labels = tuple(labels)

    def counts(self, batch):
        return {"cls": tf.reduce_sum(batch["example_weights"])}

    def sums(self, batch, outputs):
        loss, correct = weighted_sums(batch["labels"], outputs, batch["example_weights"])
        return {"cls_loss": loss, "cls_correct": correct, **{
            f"{k}_count": v for k, v in self.counts(batch).items()}}

    def metrics(self, sums):
        count = tf.maximum(sums["cls_count"], 1.0)
        return {"loss": sums["cls_loss"] / count, "accuracy": sums["cls_correct"] / count}

    def prediction_outputs(self, batch, outputs):
        return {"predictions": tf.argmax(outputs, -1, output_type=tf.int32),
                "labels": batch["labels"]}

    def host_metrics(self, arrays):
        y, p = arrays["labels"], arrays["predictions"]
        return {"accuracy": metrics.accuracy(y, p), "macro_f1": metrics.macro_f1(y, p),
                "matthews_corrcoef": metrics.matthews_corrcoef(y, p)}


class RegressionTask(Task):
    """Mean squared error of one score; Pearson and Spearman correlations."""

    main_metric = "pearson"

    def counts(self, batch):
        return {"mse": tf.reduce_sum(batch["example_weights"])}

    def sums(self, batch, outputs):
        error = tf.squeeze(tf.cast(outputs, tf.float32), -1) - batch["labels"]
        return {"mse_loss": tf.reduce_sum(tf.square(error) * batch["example_weights"]),
                "mse_count": tf.reduce_sum(batch["example_weights"])}

    def metrics(self, sums):
        return {"loss": sums["mse_loss"] / tf.maximum(sums["mse_count"], 1.0)}

    def prediction_outputs(self, batch, outputs):
        return {"predictions": tf.squeeze(tf.cast(outputs, tf.float32), -1),
                "labels": batch["labels"]}

    def host_metrics(self, arrays):
        y, p = arrays["labels"], arrays["predictions"]
        return {"pearson": metrics.pearson(y, p), "spearman": metrics.spearman(y, p),
                "mse": float(np.mean((y - p) ** 2))}


class TokenClassificationTask(Task):
    """Cross-entropy at each word's first piece (labels -1 elsewhere are ignored); entity
    precision/recall/F1 with seqeval over whole sentences (words cut by the sequence length
    count as predicted "O")."""

    main_metric = "f1"

    def __init__(self, tags, gold_tags=None):
        self.tags = tuple(tags)
        self.gold_tags = gold_tags  # the evaluation sentences' tags, every word

    @staticmethod
    def _token_weights(batch):
        labeled = tf.cast(batch["labels"] >= 0, tf.float32)
        return labeled * tf.expand_dims(batch["example_weights"], -1)

    def counts(self, batch):
        return {"tag": tf.reduce_sum(self._token_weights(batch))}

    def sums(self, batch, outputs):
        labels = tf.maximum(batch["labels"], 0)
        loss, correct = weighted_sums(labels, outputs, self._token_weights(batch))
        return {"tag_loss": loss, "tag_correct": correct,
                "tag_count": tf.reduce_sum(self._token_weights(batch))}

    def metrics(self, sums):
        count = tf.maximum(sums["tag_count"], 1.0)
        return {"loss": sums["tag_loss"] / count, "token_accuracy": sums["tag_correct"] / count}

    def prediction_outputs(self, batch, outputs):
        return {"predictions": tf.argmax(outputs, -1, output_type=tf.int32),
                "labels": batch["labels"], "word_counts": batch["word_counts"]}

    def host_metrics(self, arrays):
        from keras_bert_x.data.tasks.conll import predicted_tags

        gold = self.gold_tags if self.gold_tags is not None else [
            [self.tags[i] for i in row[row >= 0]] for row in arrays["labels"]]
        return metrics.entity_scores(gold, predicted_tags(
            arrays["predictions"], arrays["labels"], arrays["word_counts"], self.tags))


class SpanQATask(Task):
    """Mean of the start and end cross-entropies; SQuAD exact match and F1 of the answers
    post-processed from every window (`squad_predictions`)."""

    main_metric = "f1"

    def __init__(self, data=None, features=None, vocabulary=None, **postprocess):
        self.data, self.features, self.vocabulary = data, features, vocabulary
        self.postprocess = postprocess

    def counts(self, batch):
        return {"span": tf.reduce_sum(batch["example_weights"])}

    def sums(self, batch, outputs):
        w = batch["example_weights"]
        # Padding is no answer: out of the softmax, so that a window's loss does not depend on
        # how far its batch was padded (length buckets, or each batch at its longest).
        real = tf.cast(batch["input_mask"], tf.bool)
        start, end = (tf.where(real, tf.cast(outputs[k], tf.float32), -1e9)
                      for k in ("start_logits", "end_logits"))
        start_loss, start_correct = weighted_sums(batch["start_positions"], start, w)
        end_loss, end_correct = weighted_sums(batch["end_positions"], end, w)
        return {"span_loss": (start_loss + end_loss) / 2.0, "start_correct": start_correct,
                "end_correct": end_correct, "span_count": tf.reduce_sum(w)}

    def metrics(self, sums):
        count = tf.maximum(sums["span_count"], 1.0)
        return {"loss": sums["span_loss"] / count,
                "start_accuracy": sums["start_correct"] / count,
                "end_accuracy": sums["end_correct"] / count}

    def prediction_outputs(self, batch, outputs):
        return {"start_logits": tf.cast(outputs["start_logits"], tf.float32),
                "end_logits": tf.cast(outputs["end_logits"], tf.float32)}

    def answers(self, arrays):
        """{question id: answer text} from the logits of every window."""
        from keras_bert_x.data.tasks.squad_postprocess import squad_predictions

        answers, _ = squad_predictions(self.data, self.features, arrays["start_logits"],
                                       arrays["end_logits"], self.vocabulary, **self.postprocess)
        return answers

    def host_metrics(self, arrays):
        return self.answer_metrics(self.answers(arrays))

    def answer_metrics(self, answers):
        truth = {e.qid: e.answers for e in self.data.examples}
        scores = metrics.squad_scores(truth, answers,
                                      version="2.0" if self.data.version_2 else "1.1")
        return {"exact_match": scores["exact_match"], "f1": scores["f1"]}
