"""Head tensors (masked-LM, next-sentence) from HF and Google checkpoints, in canonical groups.

Canonical names are Google's (`cls/predictions/...`, `cls/seq_relationship/...`). Google keeps
the NSP weights as [2, H] (used with transpose_b) and so does HF; we store [H, 2]. A head is
all or nothing: one that is absent is simply not in the result, one that is partly there or
mis-shaped is an error naming the tensor.
"""

from keras_bert_x.convert.layout import POOLER, SourceTensor, gather_optional

# Optional tensor groups -> what they are, for messages.
HEAD_GROUPS = {POOLER: "pooler", "cls/predictions": "masked-LM head",
               "cls/seq_relationship": "next-sentence head"}


# canonical name -> (Google's name, HF's name, source shape).
def _head_tensors(config):
    h, v = config.hidden_size, config.vocab_size
    p = "cls/predictions"
    return {
        f"{p}/transform/dense/kernel": (f"{p}/transform/dense/kernel",
                                        "cls.predictions.transform.dense.weight", (h, h)),
        f"{p}/transform/dense/bias": (f"{p}/transform/dense/bias",
                                      "cls.predictions.transform.dense.bias", (h,)),
        f"{p}/transform/LayerNorm/gamma": (f"{p}/transform/LayerNorm/gamma",
                                           "cls.predictions.transform.LayerNorm.weight", (h,)),
        f"{p}/transform/LayerNorm/beta": (f"{p}/transform/LayerNorm/beta",
                                          "cls.predictions.transform.LayerNorm.bias", (h,)),
        f"{p}/output_bias": (f"{p}/output_bias", "cls.predictions.bias", (v,)),
        "cls/seq_relationship/output_weights": ("cls/seq_relationship/output_weights",
                                                "cls.seq_relationship.weight", (2, h)),
        "cls/seq_relationship/output_bias": ("cls/seq_relationship/output_bias",
                                             "cls.seq_relationship.bias", (2,)),
    }


def source_maps(config, source):
    """{head group: {canonical: SourceTensor}} for a "google" or "hf" checkpoint."""
    groups = {group: {} for group in HEAD_GROUPS if group != POOLER}
    for canonical, (google, hf, shape) in _head_tensors(config).items():
        # Both store the NSP weights as [2, H]; HF also keeps Linear kernels as [out, in].
        transpose = canonical.endswith("output_weights") or (
            source == "hf" and canonical.endswith("/kernel"))
        group = next(g for g in HEAD_GROUPS if canonical.startswith(g + "/"))
        groups[group][canonical] = SourceTensor(google if source == "google" else hf, shape,
                                                "transpose" if transpose else "identity")
    return groups


def read_heads(config, source, get_tensor, where):
    """{head group: {canonical: array}} of the heads present; partial or mis-shaped heads fail."""
    heads = {}
    for group, source_map in source_maps(config, source).items():
        found = gather_optional(config, source_map, get_tensor, where, HEAD_GROUPS[group])
        if found is not None:
            heads[group] = found
    return heads


def other_groups(names, used, ignorable):
    """Names of tensor groups (a name less its last component) neither used nor ignorable."""
    groups = {}
    for name in names:
        if name in used or ignorable(name):
            continue
        for separator in (".", "/"):
            if separator in name:
                name = name.rsplit(separator, 1)[0]
                break
        groups[name] = groups.get(name, 0) + 1
    return tuple(f"{g} ({n} tensor{'s' if n > 1 else ''})" for g, n in sorted(groups.items()))
