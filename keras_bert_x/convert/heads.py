"""Head tensors from HF and Google checkpoints, in canonical groups.

Groups: the pretraining heads (`cls/predictions` masked-LM, `cls/seq_relationship`
next-sentence; Google's names) and the task heads (`cls/classifier` on the pooled output,
`cls/token_classifier` on every position, `cls/squad` start/end logits). Dense kernels are
stored [in, out]; Google keeps its output layers as [out, in] (used with transpose_b) and HF
its Linear weights likewise. A head is all or nothing: one that is absent is simply not in the
result, one that is partly there or mis-shaped is an error naming the tensor.
"""

from keras_bert_x.convert.layout import POOLER, SourceTensor, gather_optional

# Optional tensor groups -> what they are, for messages.
HEAD_GROUPS = {POOLER: "pooler", "cls/predictions": "masked-LM head",
               "cls/seq_relationship": "next-sentence head",
               "cls/classifier": "classification head", "cls/token_classifier":
               "token-classification head", "cls/squad": "span (question answering) head"}

# HF architectures whose `classifier.*` tensors sit on every position rather than on [CLS].
TOKEN_ARCHITECTURES = ("BertForTokenClassification",)


def _head_tensors(config, classes, hf_classifier_group):
    """{canonical: (Google's name or None, HF's name, source shape)}.

    `classes` is the number of outputs of a classifier head as the file has it (or None).
    """
    h, v = config.hidden_size, config.vocab_size
    p = "cls/predictions"
    out = {
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
        "cls/squad/output_weights": ("cls/squad/output_weights", "qa_outputs.weight", (2, h)),
        "cls/squad/output_bias": ("cls/squad/output_bias", "qa_outputs.bias", (2,)),
    }
    if classes:
        # Google's run_classifier.py names its layer plainly `output_weights`/`output_bias`.
        group = hf_classifier_group
        google = group == "cls/classifier"
        out[f"{group}/output_weights"] = ("output_weights" if google else None,
                                          "classifier.weight", (classes, h))
        out[f"{group}/output_bias"] = ("output_bias" if google else None, "classifier.bias",
                                       (classes,))
    return out


def source_maps(config, source, classes=None, hf_classifier_group="cls/classifier"):
    """{head group: {canonical: SourceTensor}} for a "google" or "hf" checkpoint."""
    groups = {}
    for canonical, (google, hf, shape) in _head_tensors(config, classes,
                                                        hf_classifier_group).items():
        name = google if source == "google" else hf
        if name is None:
            continue
        # Output layers are [out, in] in both; so are HF's Linear kernels.
        transpose = canonical.endswith("output_weights") or (
            source == "hf" and canonical.endswith("/kernel"))
        group = next(g for g in HEAD_GROUPS if canonical.startswith(g + "/"))
        groups.setdefault(group, {})[canonical] = SourceTensor(
            name, shape, "transpose" if transpose else "identity")
    return groups


def read_heads(config, source, get_tensor, where, hf_classifier_group="cls/classifier"):
    """{head group: {canonical: array}} of the heads present; partial or mis-shaped heads fail.

    A classifier's number of classes is whatever its bias has.
    """
    bias = get_tensor("classifier.bias" if source == "hf" else "output_bias")
    classes = int(bias.shape[0]) if bias is not None and len(bias.shape) == 1 else None
    heads = {}
    for group, source_map in source_maps(config, source, classes,
                                         hf_classifier_group).items():
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
