"""The canonical tensor layout every checkpoint reader produces.

Canonical names are Google's TF1 variable names (`bert/encoder/layer_0/attention/self/query/kernel`)
with Dense kernels as [in, out]; each source reader maps its own names and orientations onto them,
so one function (`keras_bert_x.models.weights.assign_encoder_weights`) loads them all.
"""

import dataclasses

import numpy as np

from keras_bert_x.errors import BertInputError

EMB = "bert/embeddings"
# The pooler is part of the encoder, but checkpoints of models that do not use it (HF
# `BertForMaskedLM`, `BertForTokenClassification`) leave it out: it is read like a head, as an
# optional group, and starts fresh (with a warning) where it is missing.
POOLER = "bert/pooler"


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


def gather_optional(config, source_map, get_tensor, where, description):
    """Like `gather_tensors` for a group that may be absent as a whole: None if none of its
    tensors is there, an error naming the first missing one if only some are."""
    present = [s.name for s in source_map.values() if get_tensor(s.name) is not None]
    if not present:
        return None
    if len(present) < len(source_map):
        missing = next(s.name for s in source_map.values() if s.name not in present)
        raise BertInputError(f"{where}: the {description} is incomplete: missing tensor "
                             f"'{missing}'")
    return gather_tensors(config, source_map, get_tensor, where)


def read_encoder(config, source_map, get_tensor, where):
    """(encoder tensors but the pooler's, {POOLER: pooler tensors} or {}) of a checkpoint."""
    body = {k: v for k, v in source_map.items() if not k.startswith(POOLER + "/")}
    pooler = {k: v for k, v in source_map.items() if k.startswith(POOLER + "/")}
    tensors = gather_tensors(config, body, get_tensor, where)
    found = gather_optional(config, pooler, get_tensor, where, "pooler")
    return tensors, ({POOLER: found} if found is not None else {})
