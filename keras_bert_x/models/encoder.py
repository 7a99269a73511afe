"""`BertEncoder`: the BERT network as a functional Keras model with TF-Hub style inputs/outputs."""

import keras

from keras_bert_x.config import BertConfig
from keras_bert_x.layers.embeddings import BertEmbeddings
from keras_bert_x.layers.pooler import BertPooler
from keras_bert_x.layers.transformer import TransformerEncoderBlock
from keras_bert_x.models.pretrained import PretrainedModel

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")


@keras.saving.register_keras_serializable(package="keras_bert_x")
class BertEncoder(PretrainedModel):
    """BERT encoder: embeddings, `num_hidden_layers` post-LN transformer blocks and a tanh pooler.

    Inputs are a dict of int32 [B, T] tensors (any B, any T <= max_position_embeddings):
    `input_word_ids`, `input_mask` (1 = real token) and `input_type_ids`. Outputs are a dict:
    `sequence_output` [B, T, H], `pooled_output` [B, H] and `encoder_outputs`, the list of
    every block's [B, T, H] output.

    >>> import numpy as np
    >>> enc = BertEncoder(BertConfig.from_preset("bert_tiny", vocab_size=100))
    >>> ids = np.array([[2, 7, 9, 3, 0]], "int32")
    >>> out = enc({"input_word_ids": ids, "input_mask": (ids > 0).astype("int32"),
    ...            "input_type_ids": np.zeros_like(ids)})
    >>> tuple(out["sequence_output"].shape), tuple(out["pooled_output"].shape), len(out["encoder_outputs"])
    ((1, 5, 128), (1, 128), 2)

    `BertEncoder.from_pretrained(path)` loads our format (any of our models' directories: the
    encoder is taken from it), a Hugging Face BERT directory, a Google TF1 checkpoint or a Model
    Garden checkpoint; `save_pretrained(path)` writes ours.
    """

    def __init__(self, config, dtype=None, name="bert_encoder", **kwargs):
        if isinstance(config, dict):
            config = BertConfig.from_dict(config)
        inputs = {n: keras.Input(shape=(None,), dtype="int32", name=n) for n in INPUT_NAMES}
        embeddings = BertEmbeddings(
            vocab_size=config.vocab_size, hidden_size=config.hidden_size,
            max_positions=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
            layer_norm_eps=config.layer_norm_eps, dropout=config.hidden_dropout_prob,
            initializer_range=config.initializer_range, dtype=dtype, name="embeddings")
        blocks = [
            TransformerEncoderBlock(
                num_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
                activation=config.hidden_act, dropout=config.hidden_dropout_prob,
                attention_dropout=config.attention_probs_dropout_prob,
                layer_norm_eps=config.layer_norm_eps, mask_fill_value=config.mask_fill_value,
                initializer_range=config.initializer_range, dtype=dtype,
                name=f"transformer_layer_{i}")
            for i in range(config.num_hidden_layers)
        ]
        pooler = BertPooler(initializer_range=config.initializer_range, dtype=dtype, name="pooler")

        x = embeddings((inputs["input_word_ids"], inputs["input_type_ids"]))
        layer_outputs = []
        for block in blocks:
            x = block(x, attention_mask=inputs["input_mask"])
            layer_outputs.append(x)
        outputs = {"sequence_output": x, "pooled_output": pooler(x),
                   "encoder_outputs": layer_outputs}
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)

        self.config = config
        self._dtype_arg = dtype
        self.embeddings = embeddings
        self.transformer_layers = blocks
        self.pooler = pooler

    @property
    def word_embeddings(self):
        """The [vocab_size, hidden_size] table (output heads tie their projection to it)."""
        return self.embeddings.word_embeddings

    def get_config(self):
        return {"config": self.config.to_dict(), "dtype": self._dtype_arg, "name": self.name,
                "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
