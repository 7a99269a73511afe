"""`BertHeadModel`: the base of models made of a `BertEncoder` and heads on top of it."""

import dataclasses

import keras

from keras_bert_x.models.encoder import INPUT_NAMES, BertEncoder
from keras_bert_x.models.pretrained import PretrainedModel


def output_dense(units, config, name):
    """A task head's output layer: N(0, initializer_range) truncated, as in BERT; float32 even
    under a mixed policy (logits feed a softmax)."""
    return keras.layers.Dense(units, dtype="float32", name=name,
                              kernel_initializer=keras.initializers.TruncatedNormal(
                                  stddev=config.initializer_range))


def resolve_labels(count, labels, what):
    """(count, labels as a tuple or None): the number of outputs follows the labels if only
    they are given; 2 if neither is."""
    labels = tuple(labels) if labels is not None else None
    count = count if count is not None else (len(labels) if labels is not None else 2)
    if labels is not None and len(labels) != count:
        raise ValueError(f"{len(labels)} labels for {count} {what}")
    return count, labels


def fit_label_head(checkpoint, group, labels, count, where, kind):
    """(checkpoint, fresh groups): the checkpoint's head `group` made to fit `labels` (or
    `count` outputs) before it is loaded.

    The same labels in another order: the head's columns are put in the new order. Other
    labels, another size, or labels the checkpoint does not name (so their order is unknown):
    the head is dropped and starts fresh, with one warning line saying why. Nothing asked for:
    the checkpoint's head and labels are taken as they are.
    """
    from keras_bert_x.convert.heads import HEAD_GROUPS
    from keras_bert_x.models.weights import log

    head = checkpoint.heads.get(group)
    if head is None or (labels is None and count is None):
        return checkpoint, ()
    labels = tuple(labels) if labels is not None else None
    have, theirs = len(head[f"{group}/output_bias"]), checkpoint.labels
    want = len(labels) if labels is not None else count
    if labels is not None and theirs is not None and len(set(labels)) == len(labels) \
            and sorted(theirs) == sorted(labels):
        order = [theirs.index(name) for name in labels]
        kernel, bias = head[f"{group}/output_weights"], head[f"{group}/output_bias"]
        heads = {**checkpoint.heads, group: {f"{group}/output_weights": kernel[:, order],
                                             f"{group}/output_bias": bias[order]}}
        return dataclasses.replace(checkpoint, heads=heads, labels=labels), ()
    if want != have:
        reason = f"has {have} outputs, not {want}"
    elif labels is not None and theirs is None:
        reason = "does not name its labels, so their order is unknown"
    elif labels is not None:
        reason = f"is for labels ({', '.join(theirs)}), not ({', '.join(labels)})"
    else:
        return checkpoint, ()
    log.warning("%s: its %s %s; %s starts it fresh: train before use", where,
                HEAD_GROUPS[group], reason, kind)
    heads = {g: v for g, v in checkpoint.heads.items() if g != group}
    return dataclasses.replace(checkpoint, heads=heads), (group,)


class MaskedLMOptions:
    """Mixin of the models with a masked-LM head: their head arguments: `mlm_activation` and
    `mlm_layer_norm_eps`, None meaning the config's (keras-hub's head differs from its encoder:
    exact GELU and epsilon 1e-5 on a tanh-GELU encoder)."""

    @classmethod
    def _head_config_from(cls, checkpoint):
        options, config = checkpoint.head_options.get("cls/predictions", {}), checkpoint.config
        out = {}
        if options.get("activation", config.hidden_act) != config.hidden_act:
            out["mlm_activation"] = options["activation"]
        if options.get("layer_norm_eps", config.layer_norm_eps) != config.layer_norm_eps:
            out["mlm_layer_norm_eps"] = options["layer_norm_eps"]
        return out

    def _head_config(self):
        return {k: v for k, v in (("mlm_activation", self.mlm_activation),
                                  ("mlm_layer_norm_eps", self.mlm_layer_norm_eps))
                if v is not None}

    def _head_options(self):
        head = self.masked_lm_head
        return {"cls/predictions": {"activation": head.activation,
                                    "layer_norm_eps": head.layer_norm_eps}}


def model_inputs(*extra_names):
    """keras.Input int32 [B, T] tensors for the encoder's three inputs plus `extra_names`."""
    return {n: keras.Input(shape=(None,), dtype="int32", name=n)
            for n in (*INPUT_NAMES, *extra_names)}


class BertHeadModel(PretrainedModel):
    """Serialization shared by head models: `cls(encoder, **head_config)`.

    Subclasses take the encoder as first argument, set `self.encoder` and `self.config`, and
    return their other constructor arguments from `_head_config()`.
    """

    def get_config(self):
        return {"encoder": keras.saving.serialize_keras_object(self.encoder), "name": self.name,
                "trainable": self.trainable, **self._head_config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)

    @classmethod
    def _new(cls, config, head_config, dtype=None):
        return cls(BertEncoder(config, dtype=dtype), **head_config)

