"""Tasks for the training loop, and pretraining's losses and metrics, normalised over the
*global* batch.

Under tf.distribute every replica returns its share of the loss; the shares must add up to the
loss of the whole batch, so each sum is divided by a global count: masked-LM by the sum of
`masked_lm_weights` over all replicas (and gradient-accumulation micro-batches), NSP by the
number of (real, weight-1) examples. That makes one device, N replicas and accumulation give
the same numbers.
"""

import tensorflow as tf


def weighted_sums(labels, logits, weights):
    """(weighted cross-entropy sum, weighted correct count) of [..., C] logits, in float32."""
    logits = tf.cast(logits, tf.float32)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=labels.dtype), labels),
                      tf.float32)
    return tf.reduce_sum(losses * weights), tf.reduce_sum(correct * weights)


class Task:
    """What the training loop needs to know of a task:

    - `model_inputs`: the batch entries the model takes;
    - `counts(batch)`: the normalisers of this replica's batch (the loop sums them globally);
    - `sums(batch, outputs)`: per-example loss and metric sums, float32 scalars;
    - `loss(sums, counts)`: each `<name>_loss` sum over its global count, added up;
    - `metrics(sums)`: the reported numbers from sums added over replicas and batches;
    - optionally `prediction_outputs(batch, outputs)` (per-example tensors gathered from every
      replica at evaluation) and `host_metrics(arrays)` (numbers computed from them on the host,
      such as F1 over all examples: they do not add up over batches).
    """

    model_inputs = ("input_word_ids", "input_mask", "input_type_ids")

    @staticmethod
    def loss(sums, counts):
        return tf.add_n([sums[f"{name}_loss"] / tf.maximum(count, 1.0)
                         for name, count in counts.items()])


class PretrainingTask(Task):
    """Masked LM, plus next-sentence prediction unless `nsp=False` (MLM only, RoBERTa-style)."""

    def __init__(self, nsp=True):
        self.nsp = nsp
        self.model_inputs = ("input_word_ids", "input_mask", "input_type_ids",
                             "masked_lm_positions")

    def counts(self, batch):
        counts = {"mlm": tf.reduce_sum(batch["masked_lm_weights"])}
        if self.nsp:
            counts["nsp"] = tf.reduce_sum(batch["example_weights"])
        return counts

    def sums(self, batch, outputs):
        mlm_loss, mlm_correct = weighted_sums(batch["masked_lm_ids"], outputs["mlm_logits"],
                                              batch["masked_lm_weights"])
        sums = {"mlm_loss": mlm_loss, "mlm_correct": mlm_correct, **{
            f"{name}_count": value for name, value in self.counts(batch).items()}}
        if self.nsp:
            sums["nsp_loss"], sums["nsp_correct"] = weighted_sums(
                batch["next_sentence_labels"], outputs["nsp_logits"], batch["example_weights"])
        return sums

    def metrics(self, sums):
        out = {}
        for name in ("mlm", "nsp") if self.nsp else ("mlm",):
            count = tf.maximum(sums[f"{name}_count"], 1.0)
            out[f"{name}_loss"] = sums[f"{name}_loss"] / count
            out[f"{name}_accuracy"] = sums[f"{name}_correct"] / count
        out["loss"] = out["mlm_loss"] + out.get("nsp_loss", 0.0)
        out["mlm_perplexity"] = tf.exp(out["mlm_loss"])
        return out
