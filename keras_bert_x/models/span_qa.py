"""`BertSpanQA`: extractive question answering (SQuAD v1.1 and v2.0) on BERT."""

import keras
from keras import ops

from keras_bert_x.models.head_model import BertHeadModel, model_inputs, output_dense


@keras.saving.register_keras_serializable(package="keras_bert_x")
class BertSpanQA(BertHeadModel):
    """`Dense(2)` on every position of the sequence output, split into start and end logits.

    Inputs are `[CLS] question [SEP] context [SEP]`; outputs `start_logits` and `end_logits`
    [B, T] in float32. An answer is the span (start <= end) with the largest summed logits
    inside the context; for SQuAD v2.0 the null answer is the span at [CLS] (position 0), and
    `keras_bert_x.data.tasks.squad` turns logits back into answer text. As in the BERT paper
    and Model Garden's span labeler there is no dropout before the head.

    >>> import numpy as np
    >>> from keras_bert_x import BertConfig, BertEncoder
    >>> qa = BertSpanQA(BertEncoder(BertConfig.from_preset("bert_tiny", vocab_size=100)))
    >>> ids = np.array([[2, 7, 3, 9, 8, 3]], "int32")
    >>> out = qa({"input_word_ids": ids, "input_mask": np.ones_like(ids),
    ...           "input_type_ids": np.array([[0, 0, 0, 1, 1, 1]], "int32")})
    >>> tuple(out["start_logits"].shape), tuple(out["end_logits"].shape)
    ((1, 6), (1, 6))
    """

    uses_pooler = False

    def __init__(self, encoder, name="bert_span_qa", **kwargs):
        config = encoder.config
        inputs = model_inputs()
        sequence = encoder(inputs)["sequence_output"]
        head = output_dense(2, config, "span_logits")
        logits = head(sequence)
        outputs = {"start_logits": ops.take(logits, 0, axis=-1),
                   "end_logits": ops.take(logits, 1, axis=-1)}
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.encoder, self.config = encoder, config
        self.span_head = head
