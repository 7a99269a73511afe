"""`BertPretrainer`: the encoder plus masked-LM and next-sentence heads."""

import keras

from keras_bert_x.layers.heads import MaskedLMHead, NextSentenceHead
from keras_bert_x.models.encoder import INPUT_NAMES
from keras_bert_x.models.head_model import BertHeadModel, MaskedLMOptions, model_inputs


@keras.saving.register_keras_serializable(package="keras_bert_x")
class BertPretrainer(MaskedLMOptions, BertHeadModel):
    """BERT with its pretraining heads.

    Inputs: the encoder's three plus `masked_lm_positions` (int [B, P]). Outputs:
    `mlm_logits` [B, P, vocab_size] at those positions (projection tied to the word embeddings)
    and `nsp_logits` [B, 2].

    >>> import numpy as np
    >>> from keras_bert_x import BertConfig, BertEncoder
    >>> pre = BertPretrainer(BertEncoder(BertConfig.from_preset("bert_tiny", vocab_size=100)))
    >>> ids = np.array([[2, 7, 9, 3, 0]], "int32")
    >>> out = pre({"input_word_ids": ids, "input_mask": (ids > 0).astype("int32"),
    ...            "input_type_ids": np.zeros_like(ids), "masked_lm_positions": np.array([[1, 2]])})
    >>> tuple(out["mlm_logits"].shape), tuple(out["nsp_logits"].shape)
    ((1, 2, 100), (1, 2))

    `from_pretrained` loads the heads a checkpoint has (HF `cls.*`, Google `cls/*`, ours); a
    checkpoint without a next-sentence head (HF `BertForMaskedLM`) gives a fresh one, with a
    warning.
    """

    def __init__(self, encoder, mlm_activation=None, mlm_layer_norm_eps=None,
                 name="bert_pretrainer", **kwargs):
        config = encoder.config
        inputs = model_inputs("masked_lm_positions")
        mlm = MaskedLMHead.for_encoder(encoder, mlm_activation, mlm_layer_norm_eps,
                                        name="masked_lm")
        nsp = NextSentenceHead(initializer_range=config.initializer_range,
                               dtype=encoder.embeddings.dtype_policy, name="next_sentence")
        encoded = encoder({n: inputs[n] for n in INPUT_NAMES})
        outputs = {"mlm_logits": mlm(encoded["sequence_output"], inputs["masked_lm_positions"]),
                   "nsp_logits": nsp(encoded["pooled_output"])}
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.encoder = encoder
        self.config = config
        self.masked_lm_head = mlm
        self.mlm_activation, self.mlm_layer_norm_eps = mlm_activation, mlm_layer_norm_eps
        self.next_sentence_head = nsp
