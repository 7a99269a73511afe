"""`BertPretrainer`: the encoder plus masked-LM and next-sentence heads."""

import keras

from keras_bert_x.layers.heads import MaskedLMHead, NextSentenceHead
from keras_bert_x.models.encoder import INPUT_NAMES, BertEncoder
from keras_bert_x.models.pretrained import PretrainedModel


@keras.saving.register_keras_serializable(package="keras_bert_x")
class BertPretrainer(PretrainedModel):
    """BERT with its pretraining heads.

    Inputs: the encoder's three plus `masked_lm_positions` (int [B, P]). Outputs:
    `mlm_logits` [B, P, vocab_size] at those positions (projection tied to the word embeddings)
    and `nsp_logits` [B, 2].

    >>> import numpy as np
    >>> from keras_bert_x import BertConfig
    >>> pre = BertPretrainer(BertEncoder(BertConfig.from_preset("bert_tiny", vocab_size=100)))
    >>> ids = np.array([[2, 7, 9, 3, 0]], "int32")
    >>> out = pre({"input_word_ids": ids, "input_mask": (ids > 0).astype("int32"),
    ...            "input_type_ids": np.zeros_like(ids), "masked_lm_positions": np.array([[1, 2]])})
    >>> tuple(out["mlm_logits"].shape), tuple(out["nsp_logits"].shape)
    ((1, 2, 100), (1, 2))
    """

    def __init__(self, encoder, name="bert_pretrainer", **kwargs):
        config = encoder.config
        inputs = {n: keras.Input(shape=(None,), dtype="int32", name=n) for n in INPUT_NAMES}
        inputs["masked_lm_positions"] = keras.Input(shape=(None,), dtype="int32",
                                                    name="masked_lm_positions")
        policy = encoder.embeddings.dtype_policy
        mlm = MaskedLMHead(encoder.embeddings, activation=config.hidden_act,
                           layer_norm_eps=config.layer_norm_eps,
                           initializer_range=config.initializer_range, dtype=policy,
                           name="masked_lm")
        nsp = NextSentenceHead(initializer_range=config.initializer_range, dtype=policy,
                               name="next_sentence")
        encoded = encoder({n: inputs[n] for n in INPUT_NAMES})
        outputs = {"mlm_logits": mlm(encoded["sequence_output"], inputs["masked_lm_positions"]),
                   "nsp_logits": nsp(encoded["pooled_output"])}
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.encoder = encoder
        self.config = config
        self.masked_lm_head = mlm
        self.next_sentence_head = nsp

    def get_config(self):
        return {"encoder": keras.saving.serialize_keras_object(self.encoder), "name": self.name,
                "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)

    @classmethod
    def _from_saved(cls, config, head_config, dtype=None):
        return cls(BertEncoder(config, dtype=dtype))

    @classmethod
    def _from_checkpoint(cls, checkpoint, dtype=None):
        from keras_bert_x.convert.heads import assign_head_weights, read_head_tensors

        heads = read_head_tensors(checkpoint, f"{checkpoint.source} checkpoint")
        pretrainer = cls(BertEncoder._from_checkpoint(checkpoint, dtype=dtype))
        assign_head_weights(pretrainer, heads)
        return pretrainer
