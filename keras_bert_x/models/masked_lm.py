"""`BertMaskedLM`: the encoder plus the masked-LM head only (HF `BertForMaskedLM`)."""

import keras

from keras_bert_x.layers.heads import MaskedLMHead
from keras_bert_x.models.encoder import INPUT_NAMES
from keras_bert_x.models.head_model import BertHeadModel, MaskedLMOptions, model_inputs


@keras.saving.register_keras_serializable(package="keras_bert_x")
class BertMaskedLM(MaskedLMOptions, BertHeadModel):
    """BERT with the masked-LM head: what MLM-only (RoBERTa-style) pretraining trains, and what
    HF `BertForMaskedLM` and keras-hub `BertMaskedLM` checkpoints hold.

    Inputs: the encoder's three plus `masked_lm_positions` (int [B, P]). Output: `mlm_logits`
    [B, P, vocab_size], the projection tied to the word embeddings.

    >>> import numpy as np
    >>> from keras_bert_x import BertConfig, BertEncoder
    >>> mlm = BertMaskedLM(BertEncoder(BertConfig.from_preset("bert_tiny", vocab_size=100)))
    >>> ids = np.array([[2, 7, 4, 3, 0]], "int32")
    >>> out = mlm({"input_word_ids": ids, "input_mask": (ids > 0).astype("int32"),
    ...            "input_type_ids": np.zeros_like(ids), "masked_lm_positions": np.array([[2]])})
    >>> tuple(out["mlm_logits"].shape)
    (1, 1, 100)
    """

    uses_pooler = False  # its encoder's pooled output feeds nothing

    def __init__(self, encoder, mlm_activation=None, mlm_layer_norm_eps=None,
                 name="bert_masked_lm", **kwargs):
        inputs = model_inputs("masked_lm_positions")
        mlm = MaskedLMHead.for_encoder(encoder, mlm_activation, mlm_layer_norm_eps,
                                        name="masked_lm")
        encoded = encoder({n: inputs[n] for n in INPUT_NAMES})
        outputs = {"mlm_logits": mlm(encoded["sequence_output"], inputs["masked_lm_positions"])}
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.encoder = encoder
        self.config = encoder.config
        self.masked_lm_head = mlm
        self.mlm_activation, self.mlm_layer_norm_eps = mlm_activation, mlm_layer_norm_eps
