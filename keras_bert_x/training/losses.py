"""Pretraining losses and metrics, normalised over the *global* batch.

Under tf.distribute every replica returns its share of the loss; the shares must add up to the
loss of the whole batch, so each sum is divided by a global count: masked-LM by the sum of
`masked_lm_weights` over all replicas (and gradient-accumulation micro-batches), NSP by the
number of examples. That makes one device, N replicas and accumulation give the same numbers.
"""

import tensorflow as tf


def masked_lm_sums(labels, logits, weights):
    """(weighted cross-entropy sum, weighted correct count) over the masked positions."""
    logits = tf.cast(logits, tf.float32)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=labels.dtype), labels),
                      tf.float32)
    return tf.reduce_sum(losses * weights), tf.reduce_sum(correct * weights)


def next_sentence_sums(labels, logits):
    """(cross-entropy sum, correct count) over the batch."""
    logits = tf.cast(logits, tf.float32)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=labels.dtype), labels),
                      tf.float32)
    return tf.reduce_sum(losses), tf.reduce_sum(correct)


def pretraining_sums(batch, outputs):
    """The per-example sums of one (micro-)batch, as a dict of float32 scalars."""
    mlm_loss, mlm_correct = masked_lm_sums(batch["masked_lm_ids"], outputs["mlm_logits"],
                                           batch["masked_lm_weights"])
    nsp_loss, nsp_correct = next_sentence_sums(batch["next_sentence_labels"],
                                               outputs["nsp_logits"])
    return {"mlm_loss": mlm_loss, "mlm_correct": mlm_correct,
            "mlm_count": tf.reduce_sum(batch["masked_lm_weights"]),
            "nsp_loss": nsp_loss, "nsp_correct": nsp_correct,
            "nsp_count": tf.cast(tf.shape(batch["next_sentence_labels"])[0], tf.float32)}


def pretraining_metrics(sums):
    """Losses, accuracies and perplexity from (globally summed) sums."""
    mlm_loss = sums["mlm_loss"] / tf.maximum(sums["mlm_count"], 1.0)
    nsp_loss = sums["nsp_loss"] / tf.maximum(sums["nsp_count"], 1.0)
    return {"loss": mlm_loss + nsp_loss, "mlm_loss": mlm_loss, "nsp_loss": nsp_loss,
            "mlm_accuracy": sums["mlm_correct"] / tf.maximum(sums["mlm_count"], 1.0),
            "nsp_accuracy": sums["nsp_correct"] / tf.maximum(sums["nsp_count"], 1.0),
            "mlm_perplexity": tf.exp(mlm_loss)}
