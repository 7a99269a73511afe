"""Pretraining-head tensors (MLM transform and bias, NSP classifier) from HF and Google checkpoints.

Canonical names are Google's (`cls/predictions/...`, `cls/seq_relationship/...`). Google keeps
the NSP weights as [2, H] (used with transpose_b) and so does HF; we store [H, 2].
"""

from keras_bert_x.convert.layout import SourceTensor, gather_tensors
from keras_bert_x.errors import BertInputError


def head_tensor_shapes(config):
    h, v = config.hidden_size, config.vocab_size
    return {
        "cls/predictions/transform/dense/kernel": (h, h),
        "cls/predictions/transform/dense/bias": (h,),
        "cls/predictions/transform/LayerNorm/gamma": (h,),
        "cls/predictions/transform/LayerNorm/beta": (h,),
        "cls/predictions/output_bias": (v,),
        "cls/seq_relationship/output_weights": (h, 2),
        "cls/seq_relationship/output_bias": (2,),
    }


def _source_map(config, source):
    h, v = config.hidden_size, config.vocab_size
    if source == "google":
        return {
            "cls/predictions/transform/dense/kernel": SourceTensor(
                "cls/predictions/transform/dense/kernel", (h, h)),
            "cls/predictions/transform/dense/bias": SourceTensor(
                "cls/predictions/transform/dense/bias", (h,)),
            "cls/predictions/transform/LayerNorm/gamma": SourceTensor(
                "cls/predictions/transform/LayerNorm/gamma", (h,)),
            "cls/predictions/transform/LayerNorm/beta": SourceTensor(
                "cls/predictions/transform/LayerNorm/beta", (h,)),
            "cls/predictions/output_bias": SourceTensor("cls/predictions/output_bias", (v,)),
            "cls/seq_relationship/output_weights": SourceTensor(
                "cls/seq_relationship/output_weights", (2, h), "transpose"),
            "cls/seq_relationship/output_bias": SourceTensor("cls/seq_relationship/output_bias",
                                                             (2,)),
        }
    if source == "hf":
        return {
            "cls/predictions/transform/dense/kernel": SourceTensor(
                "cls.predictions.transform.dense.weight", (h, h), "transpose"),
            "cls/predictions/transform/dense/bias": SourceTensor(
                "cls.predictions.transform.dense.bias", (h,)),
            "cls/predictions/transform/LayerNorm/gamma": SourceTensor(
                "cls.predictions.transform.LayerNorm.weight", (h,)),
            "cls/predictions/transform/LayerNorm/beta": SourceTensor(
                "cls.predictions.transform.LayerNorm.bias", (h,)),
            "cls/predictions/output_bias": SourceTensor("cls.predictions.bias", (v,)),
            "cls/seq_relationship/output_weights": SourceTensor(
                "cls.seq_relationship.weight", (2, h), "transpose"),
            "cls/seq_relationship/output_bias": SourceTensor("cls.seq_relationship.bias", (2,)),
        }
    raise BertInputError(f"pretraining heads cannot be read from a '{source}' checkpoint "
                         "(Model Garden checkpoints hold the encoder only); load the encoder "
                         "with BertEncoder.from_pretrained and start the heads fresh")


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
