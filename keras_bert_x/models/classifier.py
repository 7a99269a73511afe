"""`BertClassifier`: sentence (or sentence-pair) classification and regression on BERT."""

import keras

from keras_bert_x.models.head_model import (BertHeadModel, fit_label_head, model_inputs,
                                            output_dense, resolve_labels)


@keras.saving.register_keras_serializable(package="keras_bert_x")
class BertClassifier(BertHeadModel):
    """Dropout, then `Dense(num_classes)` on the pooled [CLS] output, as in the BERT paper.

    Output: logits [B, num_classes] in float32; `num_classes=1` is regression (one score).
    `labels` names the classes (saved with the model, used by predictions and exports).

    >>> import numpy as np
    >>> from keras_bert_x import BertConfig, BertEncoder
    >>> clf = BertClassifier(BertEncoder(BertConfig.from_preset("bert_tiny", vocab_size=100)),
    ...                      labels=["negative", "positive"])
    >>> ids = np.array([[2, 7, 9, 3, 0]], "int32")
    >>> clf({"input_word_ids": ids, "input_mask": (ids > 0).astype("int32"),
    ...      "input_type_ids": np.zeros_like(ids)}).shape
    TensorShape([1, 2])

    A plain `keras.Model`: `compile(loss=keras.losses.SparseCategoricalCrossentropy(
    from_logits=True))` then `fit()` on what `BertTokenizer` returns works on one device.
    """

    def __init__(self, encoder, num_classes=None, labels=None, dropout=None,
                 name="bert_classifier", **kwargs):
        config = encoder.config
        num_classes, labels = resolve_labels(num_classes, labels, "classes")
        dropout = config.hidden_dropout_prob if dropout is None else dropout
        inputs = model_inputs()
        pooled = encoder(inputs)["pooled_output"]
        head = output_dense(num_classes, config, "logits")
        logits = head(keras.layers.Dropout(dropout, name="classifier_dropout")(pooled))
        super().__init__(inputs=inputs, outputs=logits, name=name, **kwargs)
        self.encoder, self.config = encoder, config
        self.num_classes, self.labels, self.dropout = num_classes, labels, dropout
        self.classifier_head = head

    @property
    def is_regression(self):
        return self.num_classes == 1

    @classmethod
    def _fit_head(cls, checkpoint, head_config, where):
        return fit_label_head(checkpoint, "cls/classifier", head_config.get("labels"),
                              head_config.get("num_classes"), where, cls.__name__)

    @classmethod
    def _head_config_from(cls, checkpoint):
        head = checkpoint.heads.get("cls/classifier")
        if head is None:
            return {}
        classes = len(head["cls/classifier/output_bias"])
        if classes == 1:  # regression: HF's id2label still names one "LABEL_0"
            return {"num_classes": 1}
        return {"num_classes": classes, "labels": checkpoint.labels}

    def _head_config(self):
        return {"num_classes": self.num_classes,
                "labels": list(self.labels) if self.labels is not None else None,
                "dropout": self.dropout}
