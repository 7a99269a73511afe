"""`BertConfig`: the shape and hyper-parameters of a BERT encoder, presets and JSON readers.

The field names are the ones Google's `bert_config.json` and Hugging Face's `config.json` use, so
one reader takes our JSON, theirs, and Google's (which lacks `layer_norm_eps`: 1e-12 then).

>>> cfg = BertConfig.from_preset("bert_tiny")
>>> cfg.hidden_size, cfg.num_hidden_layers
(128, 2)
"""

import dataclasses
import json
import os

from keras_bert_x.errors import BertInputError

# hidden_act values and the GELU form each one means (HF names included).
ACTIVATIONS = {
    "gelu": "gelu",  # exact, erf-based, as in the BERT paper and Google's code
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_tanh": "gelu_tanh",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}

# (layers, hidden, heads) from Turc et al. 2019 and the BERT paper.
_PRESET_SHAPES = {
    "bert_tiny": (2, 128, 2),
    "bert_mini": (4, 256, 4),
    "bert_small": (4, 512, 8),
    "bert_medium": (8, 512, 8),
    "bert_base": (12, 768, 12),
    "bert_large": (24, 1024, 16),
}
PRESETS = tuple(_PRESET_SHAPES)


@dataclasses.dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    # Added to attention scores at padded key positions (scores are float32 by then).
    mask_fill_value: float = -10000.0

    def __post_init__(self):
        _check_fields(dataclasses.asdict(self), "BertConfig")

    @property
    def head_size(self):
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_preset(cls, name, **overrides):
        if name not in _PRESET_SHAPES:
            raise BertInputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        layers, hidden, heads = _PRESET_SHAPES[name]
        fields = dict(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                      intermediate_size=4 * hidden)
        fields.update(overrides)
        return cls(**fields)

    @classmethod
    def from_dict(cls, data, source="config"):
        """Builds from our dict, an HF `config.json` dict or a Google `bert_config.json` dict.

        Keys that other formats carry and we do not use (`architectures`, `pad_token_id`, ...) are
        ignored; settings that would change the network in a way we do not implement are refused.
        """
        if not isinstance(data, dict):
            raise BertInputError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("position_embedding_type", "absolute") != "absolute":
            raise BertInputError(f"{source}: field 'position_embedding_type' is "
                                 f"{data['position_embedding_type']!r}; only 'absolute' is supported")
        if data.get("is_decoder") or data.get("add_cross_attention"):
            raise BertInputError(f"{source}: decoder / cross-attention BERT configs are not supported")
        model_type = data.get("model_type", "bert")
        if model_type != "bert":
            raise BertInputError(f"{source}: field 'model_type' is {model_type!r}, not 'bert'")
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in known}
        required = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
        missing = [k for k in required if k not in fields]
        if missing:
            raise BertInputError(f"{source}: missing field '{missing[0]}'")
        if "intermediate_size" not in fields:
            fields["intermediate_size"] = 4 * fields["hidden_size"]
        _check_fields(fields, source)
        return cls(**fields)

    @classmethod
    def from_json_file(cls, path):
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise BertInputError(f"{path}: config file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BertInputError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(data, source=path)

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json())


def _check_fields(fields, source):
    """Raises BertInputError naming `source` and the field when the values cannot build an encoder."""
    positive = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "max_position_embeddings", "type_vocab_size")
    for name in positive:
        value = fields.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise BertInputError(f"{source}: field '{name}' must be a positive integer, got {value!r}")
    if fields["hidden_size"] % fields["num_attention_heads"]:
        raise BertInputError(
            f"{source}: field 'hidden_size' ({fields['hidden_size']}) is not divisible by "
            f"'num_attention_heads' ({fields['num_attention_heads']})")
    act = fields.get("hidden_act", "gelu")
    if act not in ACTIVATIONS:
        raise BertInputError(f"{source}: field 'hidden_act' is {act!r}; "
                             f"supported: {', '.join(sorted(ACTIVATIONS))}")
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        value = fields.get(name, 0.0)
        if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise BertInputError(f"{source}: field '{name}' must be in [0, 1), got {value!r}")
