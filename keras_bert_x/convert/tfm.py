"""Model Garden (tf-models-official) TF2 checkpoints of `official.nlp.modeling.networks.BertEncoder`.

These are object-based checkpoints: names follow the Python attributes of the encoder, e.g.
`encoder/_transformer_layers/0/_attention_layer/_query_dense/kernel/.ATTRIBUTES/VARIABLE_VALUE`,
under whatever root the saver used (`encoder/` for `tf.train.Checkpoint(encoder=...)`; we find it).
Attention kernels are EinsumDense [H, heads, head_size] / [heads, head_size, H]: reshaped to ours.
"""

from keras_bert_x.convert import tf_checkpoint
from keras_bert_x.convert.layout import EMB, SourceTensor, layer_prefix, read_encoder
from keras_bert_x.errors import BertInputError

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
MARKER = "_embedding_layer/embeddings" + SUFFIX


def find_root(names):
    """The object path above the encoder (`encoder/`, `model/encoder/`, ...) or None."""
    for name in sorted(names, key=len):
        if name.endswith(MARKER) and "_type_" not in name and "_position_" not in name:
            return name[: -len(MARKER)]
    return None


def source_map(config, root):
    h, inter = config.hidden_size, config.intermediate_size
    heads, size = config.num_attention_heads, config.head_size

    def src(path, shape, conv="identity"):
        return SourceTensor(root + path + SUFFIX, shape, conv)

    out = {
        f"{EMB}/word_embeddings": src("_embedding_layer/embeddings", (config.vocab_size, h)),
        f"{EMB}/position_embeddings": src("_position_embedding_layer/embeddings",
                                          (config.max_position_embeddings, h)),
        f"{EMB}/token_type_embeddings": src("_type_embedding_layer/embeddings",
                                            (config.type_vocab_size, h)),
        f"{EMB}/LayerNorm/gamma": src("_embedding_norm_layer/gamma", (h,)),
        f"{EMB}/LayerNorm/beta": src("_embedding_norm_layer/beta", (h,)),
    }
    for i in range(config.num_hidden_layers):
        p, t = layer_prefix(i), f"_transformer_layers/{i}/"
        for proj in ("query", "key", "value"):
            out[f"{p}/attention/self/{proj}/kernel"] = src(
                f"{t}_attention_layer/_{proj}_dense/kernel", (h, heads, size), "reshape")
            out[f"{p}/attention/self/{proj}/bias"] = src(
                f"{t}_attention_layer/_{proj}_dense/bias", (heads, size), "reshape")
        out.update({
            f"{p}/attention/output/dense/kernel": src(
                f"{t}_attention_layer/_output_dense/kernel", (heads, size, h), "reshape"),
            f"{p}/attention/output/dense/bias": src(f"{t}_attention_layer/_output_dense/bias", (h,)),
            f"{p}/attention/output/LayerNorm/gamma": src(f"{t}_attention_layer_norm/gamma", (h,)),
            f"{p}/attention/output/LayerNorm/beta": src(f"{t}_attention_layer_norm/beta", (h,)),
            f"{p}/intermediate/dense/kernel": src(f"{t}_intermediate_dense/kernel", (h, inter)),
            f"{p}/intermediate/dense/bias": src(f"{t}_intermediate_dense/bias", (inter,)),
            f"{p}/output/dense/kernel": src(f"{t}_output_dense/kernel", (inter, h)),
            f"{p}/output/dense/bias": src(f"{t}_output_dense/bias", (h,)),
            f"{p}/output/LayerNorm/gamma": src(f"{t}_output_layer_norm/gamma", (h,)),
            f"{p}/output/LayerNorm/beta": src(f"{t}_output_layer_norm/beta", (h,)),
        })
    out["bert/pooler/dense/kernel"] = src("_pooler_layer/kernel", (h, h))
    out["bert/pooler/dense/bias"] = src("_pooler_layer/bias", (h,))
    return out


def read(path):
    """(config, canonical encoder tensors, {pooler}) of a Model Garden BertEncoder directory."""
    config, prefix, shapes, get = tf_checkpoint.open_directory(path)
    root = find_root(shapes)
    if root is None:
        raise BertInputError(f"{prefix}: no Model Garden BertEncoder in this checkpoint "
                             f"(no variable ending in '{MARKER}')")
    if any(n.startswith(root + "_embedding_projection/") for n in shapes):
        raise BertInputError(f"{prefix}: encoder uses a factorized embedding "
                             "(embedding_width != hidden_size), which BERT configs cannot express")
    return (config, *read_encoder(config, source_map(config, root), get, prefix))
