"""The canonical tensor layout every checkpoint reader produces, and how it fills a BertEncoder.

Canonical names are Google's TF1 variable names (`bert/encoder/layer_0/attention/self/query/kernel`)
with Dense kernels as [in, out]; each source reader maps its own names and orientations onto them,
so one function (`assign_encoder_weights`) loads them all.
"""

import dataclasses

import numpy as np

from keras_bert_x.errors import BertInputError

EMB = "bert/embeddings"


def layer_prefix(i):
    return f"bert/encoder/layer_{i}"


def encoder_tensor_shapes(config):
    """{canonical name: shape} of every tensor an encoder of `config` needs, in a stable order."""
    h, inter = config.hidden_size, config.intermediate_size
    shapes = {
        f"{EMB}/word_embeddings": (config.vocab_size, h),
        f"{EMB}/position_embeddings": (config.max_position_embeddings, h),
        f"{EMB}/token_type_embeddings": (config.type_vocab_size, h),
        f"{EMB}/LayerNorm/gamma": (h,),
        f"{EMB}/LayerNorm/beta": (h,),
    }
    for i in range(config.num_hidden_layers):
        p = layer_prefix(i)
        for proj in ("query", "key", "value"):
            shapes[f"{p}/attention/self/{proj}/kernel"] = (h, h)
            shapes[f"{p}/attention/self/{proj}/bias"] = (h,)
        shapes.update({
            f"{p}/attention/output/dense/kernel": (h, h),
            f"{p}/attention/output/dense/bias": (h,),
            f"{p}/attention/output/LayerNorm/gamma": (h,),
            f"{p}/attention/output/LayerNorm/beta": (h,),
            f"{p}/intermediate/dense/kernel": (h, inter),
            f"{p}/intermediate/dense/bias": (inter,),
            f"{p}/output/dense/kernel": (inter, h),
            f"{p}/output/dense/bias": (h,),
            f"{p}/output/LayerNorm/gamma": (h,),
            f"{p}/output/LayerNorm/beta": (h,),
        })
    shapes["bert/pooler/dense/kernel"] = (h, h)
    shapes["bert/pooler/dense/bias"] = (h,)
    return shapes


@dataclasses.dataclass(frozen=True)
class SourceTensor:
    """Where a canonical tensor lives in a source checkpoint, and how to bring it to our layout."""
    name: str            # the source's own name, used in error messages
    shape: tuple         # the shape the source must have for this config
    to_canonical: str = "identity"   # "identity", "transpose" or "reshape"


def gather_tensors(config, source_map, get_tensor, where):
    """Reads every tensor of `source_map` ({canonical: SourceTensor}) through `get_tensor`.

    `get_tensor(name)` returns a numpy array or None when absent. Raises BertInputError naming the
    tensor (and both shapes) for the first missing or mis-shaped one; returns {canonical: array}.
    """
    expected = encoder_tensor_shapes(config)
    out = {}
    for canonical, src in source_map.items():
        value = get_tensor(src.name)
        if value is None:
            raise BertInputError(f"{where}: missing tensor '{src.name}'")
        value = np.asarray(value)
        if tuple(value.shape) != tuple(src.shape):
            hint = " (vocab_size in the config does not match the checkpoint)" \
                if canonical.endswith("word_embeddings") else ""
            raise BertInputError(f"{where}: tensor '{src.name}' has shape {tuple(value.shape)}, "
                                 f"the config needs {tuple(src.shape)}{hint}")
        if src.to_canonical == "transpose":
            value = value.T
        elif src.to_canonical == "reshape":
            value = value.reshape(expected.get(canonical, value.shape))
        out[canonical] = value.astype(np.float32)
    return out


def _encoder_variables(encoder):
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
    pairs += [("bert/pooler/dense/kernel", encoder.pooler.dense.kernel),
              ("bert/pooler/dense/bias", encoder.pooler.dense.bias)]
    return pairs


def assign_encoder_weights(encoder, tensors):
    """Copies canonical tensors into `encoder`; query/key/value are fused into one projection."""
    for names, variable in _encoder_variables(encoder):
        if isinstance(names, list):
            value = np.concatenate([tensors[n] for n in names], axis=-1)
        else:
            value = tensors[names]
        variable.assign(value)


def encoder_weights(encoder):
    """The inverse of `assign_encoder_weights`: {canonical name: numpy array} of `encoder`."""
    out = {}
    for names, variable in _encoder_variables(encoder):
        value = np.asarray(variable.numpy())
        if isinstance(names, list):
            for name, part in zip(names, np.split(value, len(names), axis=-1)):
                out[name] = part
        else:
            out[names] = value
    return out
