"""Our layers <-> the canonical tensor layout (`keras_bert_x.convert.layout`).

`keras_bert_x.convert` reads every checkpoint format into canonical tensors: the encoder's under
Google's TF1 names, and each head found as a group (`cls/predictions`, ...). This module puts
them into our models' variables and reads them back out, so any model class can load what any
checkpoint holds: the heads a model has and the checkpoint lacks start fresh with one warning
line, and the heads (or other tensors) it does not use are listed in one line.
"""

import logging

import numpy as np

from keras_bert_x.convert.heads import HEAD_GROUPS
from keras_bert_x.convert.layout import EMB, POOLER, layer_prefix
from keras_bert_x.errors import BertInputError

log = logging.getLogger("keras_bert_x")


def encoder_variables(encoder):
    """[(canonical name, keras variable or list of variables to concatenate into)] of an encoder."""
    emb = encoder.embeddings
    pairs = [
        (f"{EMB}/word_embeddings", emb.word_embeddings),
        (f"{EMB}/position_embeddings", emb.position_embeddings),
        (f"{EMB}/token_type_embeddings", emb.token_type_embeddings),
        (f"{EMB}/LayerNorm/gamma", emb.layer_norm.gamma),
        (f"{EMB}/LayerNorm/beta", emb.layer_norm.beta),
    ]
    for i, block in enumerate(encoder.transformer_layers):
        p = layer_prefix(i)
        att = block.attention
        pairs += [
            ([f"{p}/attention/self/{n}/kernel" for n in ("query", "key", "value")], att.qkv.kernel),
            ([f"{p}/attention/self/{n}/bias" for n in ("query", "key", "value")], att.qkv.bias),
            (f"{p}/attention/output/dense/kernel", att.output_dense.kernel),
            (f"{p}/attention/output/dense/bias", att.output_dense.bias),
            (f"{p}/attention/output/LayerNorm/gamma", block.attention_layer_norm.gamma),
            (f"{p}/attention/output/LayerNorm/beta", block.attention_layer_norm.beta),
            (f"{p}/intermediate/dense/kernel", block.intermediate_dense.kernel),
            (f"{p}/intermediate/dense/bias", block.intermediate_dense.bias),
            (f"{p}/output/dense/kernel", block.output_dense.kernel),
            (f"{p}/output/dense/bias", block.output_dense.bias),
            (f"{p}/output/LayerNorm/gamma", block.output_layer_norm.gamma),
            (f"{p}/output/LayerNorm/beta", block.output_layer_norm.beta),
        ]
    return pairs  # the pooler is a group of its own: see `head_variables`


def assign_encoder_weights(encoder, tensors):
    """Copies canonical tensors into `encoder`; query/key/value are fused into one projection."""
    for names, variable in encoder_variables(encoder):
        if isinstance(names, list):
            value = np.concatenate([tensors[n] for n in names], axis=-1)
        else:
            value = tensors[names]
        variable.assign(value)


def encoder_weights(encoder):
    """The inverse of `assign_encoder_weights`: {canonical name: numpy array} of `encoder`."""
    out = {}
    for names, variable in encoder_variables(encoder):
        value = np.asarray(variable.numpy())
        if isinstance(names, list):
            for name, part in zip(names, np.split(value, len(names), axis=-1)):
                out[name] = part
        else:
            out[names] = value
    return out


def masked_lm_variables(head):
    p = "cls/predictions"
    return [(f"{p}/transform/dense/kernel", head.dense.kernel),
            (f"{p}/transform/dense/bias", head.dense.bias),
            (f"{p}/transform/LayerNorm/gamma", head.layer_norm.gamma),
            (f"{p}/transform/LayerNorm/beta", head.layer_norm.beta),
            (f"{p}/output_bias", head.output_bias)]


def next_sentence_variables(head):
    return [("cls/seq_relationship/output_weights", head.dense.kernel),
            ("cls/seq_relationship/output_bias", head.dense.bias)]


def output_layer_variables(group, dense):
    """A task head's Dense layer as `<group>/output_weights` [in, out] and `output_bias`."""
    return [(f"{group}/output_weights", dense.kernel), (f"{group}/output_bias", dense.bias)]


def pooler_variables(pooler):
    return [(f"{POOLER}/dense/kernel", pooler.dense.kernel),
            (f"{POOLER}/dense/bias", pooler.dense.bias)]


def head_variables(model):
    """{group: [(canonical name, variable)]} of the encoder's pooler and the heads `model` has."""
    encoder = getattr(model, "encoder", model)
    groups = {POOLER: pooler_variables(encoder.pooler)}
    mapping = {"masked_lm_head": ("cls/predictions", masked_lm_variables),
               "next_sentence_head": ("cls/seq_relationship", next_sentence_variables),
               "classifier_head": ("cls/classifier", None),
               "token_classifier_head": ("cls/token_classifier", None),
               "span_head": ("cls/squad", None)}
    for attribute, (group, variables) in mapping.items():
        layer = getattr(model, attribute, None)
        if layer is not None:
            groups[group] = (variables(layer) if variables
                             else output_layer_variables(group, layer))
    return groups


def head_weights(model):
    """{head group: {canonical name: numpy array}}: the inverse of assigning them."""
    return {group: {name: np.asarray(v.numpy()) for name, v in variables}
            for group, variables in head_variables(model).items()}


def load_checkpoint_weights(model, checkpoint, where, already_reported=()):
    """Assigns a `Checkpoint`'s encoder tensors and the heads `model` has to `model`.

    A head (or pooler) the checkpoint lacks keeps its fresh initialisation, and one warning
    line names what is fresh (as Hugging Face does); heads and other tensors the model does not
    use are listed in one line. Returns {"missing": [groups], "ignored": [names]}.
    """
    encoder = getattr(model, "encoder", model)
    assign_encoder_weights(encoder, checkpoint.tensors)
    wanted = head_variables(model)
    kind = type(model).__name__
    # A model that never reads the pooler (BertMaskedLM) keeps one loaded when there is one,
    # so that its encoder is whole, but has no use for a warning when there is none.
    missing = [g for g in wanted if g not in checkpoint.heads and g not in already_reported
               and (g != POOLER or getattr(model, "uses_pooler", True))]
    for group, variables in wanted.items():
        if group in checkpoint.heads:
            for name, variable in variables:
                value = checkpoint.heads[group][name]
                if tuple(value.shape) != tuple(variable.shape):
                    raise BertInputError(
                        f"{where}: its {HEAD_GROUPS[group]} has '{name}' of shape "
                        f"{tuple(value.shape)}, {kind} needs {tuple(variable.shape)} (a "
                        "different number of classes or labels?)")
                variable.assign(value)
    if missing:
        log.warning("%s: has no %s; %s initialises %s fresh: train before use", where,
                    ", ".join(f"{HEAD_GROUPS[g]} ({g})" for g in missing), kind,
                    "them" if len(missing) > 1 else "it")
    ignored = [f"{g} ({HEAD_GROUPS[g]})" for g in checkpoint.heads if g not in wanted]
    ignored += list(checkpoint.other)
    if ignored:
        log.warning("%s: not used by %s, ignored: %s", where, kind, ", ".join(ignored))
    return {"missing": missing, "ignored": ignored}
