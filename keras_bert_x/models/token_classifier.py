"""`BertTokenClassifier`: a label per word (named entities, tags) on BERT."""

import keras

from keras_bert_x.models.head_model import (BertHeadModel, fit_label_head, model_inputs,
                                            output_dense, resolve_labels)


@keras.saving.register_keras_serializable(package="keras_bert_x")
class BertTokenClassifier(BertHeadModel):
    """Dropout, then `Dense(num_labels)` on every position of the sequence output.

    Output: logits [B, T, num_labels] in float32. A word's label is predicted at its first
    WordPiece; training labels are -1 at the other pieces, padding and [CLS]/[SEP], and the loss
    ignores them (`keras.losses.SparseCategoricalCrossentropy(from_logits=True,
    ignore_class=-1)` in `compile`, or our trainer). `labels` names the tags (BIO).

    >>> import numpy as np
    >>> from keras_bert_x import BertConfig, BertEncoder
    >>> ner = BertTokenClassifier(BertEncoder(BertConfig.from_preset("bert_tiny", vocab_size=100)),
    ...                           labels=["O", "B-PER", "I-PER"])
    >>> ids = np.array([[2, 7, 9, 3, 0]], "int32")
    >>> ner({"input_word_ids": ids, "input_mask": (ids > 0).astype("int32"),
    ...      "input_type_ids": np.zeros_like(ids)}).shape
    TensorShape([1, 5, 3])
    """

    uses_pooler = False

    def __init__(self, encoder, num_labels=None, labels=None, dropout=None,
                 name="bert_token_classifier", **kwargs):
        config = encoder.config
        num_labels, labels = resolve_labels(num_labels, labels, "tags")
        dropout = config.hidden_dropout_prob if dropout is None else dropout
        inputs = model_inputs()
        sequence = encoder(inputs)["sequence_output"]
        head = output_dense(num_labels, config, "logits")
        logits = head(keras.layers.Dropout(dropout, name="classifier_dropout")(sequence))
        super().__init__(inputs=inputs, outputs=logits, name=name, **kwargs)
        self.encoder, self.config = encoder, config
        self.num_labels, self.labels, self.dropout = num_labels, labels, dropout
        self.token_classifier_head = head

    @classmethod
    def _fit_head(cls, checkpoint, head_config, where):
        return fit_label_head(checkpoint, "cls/token_classifier", head_config.get("labels"),
                              head_config.get("num_labels"), where, cls.__name__)

    @classmethod
    def _head_config_from(cls, checkpoint):
        head = checkpoint.heads.get("cls/token_classifier")
        if head is None:
            return {}
        classes = len(head["cls/token_classifier/output_bias"])
        return {"num_labels": classes, "labels": checkpoint.labels}

    def _head_config(self):
        return {"num_labels": self.num_labels,
                "labels": list(self.labels) if self.labels is not None else None,
                "dropout": self.dropout}
