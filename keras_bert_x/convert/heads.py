"""Pretraining-head tensors (MLM transform and bias, NSP classifier) from HF and Google checkpoints.

Canonical names are Google's (`cls/predictions/...`, `cls/seq_relationship/...`). Google keeps
the NSP weights as [2, H] (used with transpose_b) and so does HF; we store [H, 2].
"""

from keras_bert_x.convert.layout import SourceTensor, gather_tensors
from keras_bert_x.errors import BertInputError


# canonical name -> (Google's name, HF's name, source shape, conversion, as used by both).
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


def _source_map(config, source):
    if source not in ("google", "hf"):
        raise BertInputError(f"pretraining heads cannot be read from a '{source}' checkpoint "
                             "(Model Garden checkpoints hold the encoder only); load the encoder "
                             "with BertEncoder.from_pretrained and start the heads fresh")
    out = {}
    for canonical, (google, hf, shape) in _head_tensors(config).items():
        # Both store the NSP weights as [2, H]; HF also keeps Linear kernels as [out, in].
        transpose = canonical.endswith("output_weights") or (
            source == "hf" and canonical.endswith("/kernel"))
        out[canonical] = SourceTensor(google if source == "google" else hf, shape,
                                      "transpose" if transpose else "identity")
    return out


def read_head_tensors(checkpoint, where):
    """{canonical: array} of the MLM/NSP head tensors of a `Checkpoint`."""
    source_map = _source_map(checkpoint.config, checkpoint.source)

    def get(name):
        value = checkpoint.get_tensor(name)
        if value is None and name == "cls.predictions.bias":  # older HF files
            value = checkpoint.get_tensor("cls.predictions.decoder.bias")
        return value

    return gather_tensors(checkpoint.config, source_map, get, where)


def assign_head_weights(pretrainer, tensors):
    mlm, nsp = pretrainer.masked_lm_head, pretrainer.next_sentence_head
    pairs = [
        (mlm.dense.kernel, "cls/predictions/transform/dense/kernel"),
        (mlm.dense.bias, "cls/predictions/transform/dense/bias"),
        (mlm.layer_norm.gamma, "cls/predictions/transform/LayerNorm/gamma"),
        (mlm.layer_norm.beta, "cls/predictions/transform/LayerNorm/beta"),
        (mlm.output_bias, "cls/predictions/output_bias"),
        (nsp.dense.kernel, "cls/seq_relationship/output_weights"),
        (nsp.dense.bias, "cls/seq_relationship/output_bias"),
    ]
    for variable, name in pairs:
        variable.assign(tensors[name])
