"""keras-hub BERT presets (what `save_to_preset` writes), read into canonical tensors and written
from our models.

A preset is a directory: `config.json` (a `BertBackbone`'s arguments), `model.weights.h5`, the
tokenizer (`tokenizer.json`, `assets/tokenizer/vocabulary.txt`) and, for a task, `task.json` and
`task.weights.h5`. keras-hub itself loads and saves them (the names inside its .h5 files follow
layer order, not stable names); one table, `_backbone_variables` and `_head_variables`, pairs
its variables with our canonical tensors in both directions.

keras-hub's BERT makes fixed choices that Google's does not: its transformer layers use the
tanh approximation of GELU, its masked-LM head normalises with epsilon 1e-5, one dropout rate
serves attention and hidden layers, and its uncased tokenizer keeps accents unless told not to.
A preset read here keeps the model's choices (`hidden_act="gelu_tanh"`, the head's own
options), so our model computes what keras-hub's does. A model of ours written here is converted
to keras-hub's choices (its tokenizer strips accents as ours does), and if that drops something
or moves its outputs, one warning line says what and by how much (measured on a probe batch).
"""

import json
import logging
import os

import numpy as np

from keras_bert_x.config import ACTIVATIONS, BertConfig
from keras_bert_x.convert.layout import EMB, POOLER, encoder_tensor_shapes, layer_prefix
from keras_bert_x.errors import BertInputError, first_line
from keras_bert_x.io_utils import atomic_output_dir, read_vocab

log = logging.getLogger("keras_bert_x")

BACKBONE = "BertBackbone"
# keras-hub BERT tasks -> the head group each one holds.
TASK_HEADS = {"BertMaskedLM": "cls/predictions", "BertTextClassifier": "cls/classifier"}
VOCAB_FILE = os.path.join("assets", "tokenizer", "vocabulary.txt")
# What keras-hub's BertBackbone fixes (bert_backbone.py) and its BertMaskedLM head's options.
BACKBONE_ACTIVATION, BACKBONE_LAYER_NORM_EPS = "gelu_tanh", 1e-12
MLM_ACTIVATION, MLM_LAYER_NORM_EPS = "gelu", 1e-5
# A written preset whose outputs move more than this from ours gets a warning line.
TOLERANCE = 1e-5


def _class_name(path, file_name):
    """The keras-hub class a preset's JSON file names (e.g. "BertBackbone"), or None."""
    try:
        with open(os.path.join(path, file_name), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    registered = data.get("registered_name") if isinstance(data, dict) else None
    if not isinstance(registered, str) or not registered.startswith("keras_hub>"):
        return None
    return registered.split(">", 1)[1]


def is_preset(path):
    """Whether `path` holds a keras-hub preset (of any architecture)."""
    return _class_name(path, "config.json") is not None


def _config_from_backbone(arguments):
    # keras-hub has one dropout rate for both places BERT puts one.
    return BertConfig(
        vocab_size=arguments["vocabulary_size"], hidden_size=arguments["hidden_dim"],
        num_hidden_layers=arguments["num_layers"], num_attention_heads=arguments["num_heads"],
        intermediate_size=arguments["intermediate_dim"], hidden_act=BACKBONE_ACTIVATION,
        hidden_dropout_prob=arguments["dropout"],
        attention_probs_dropout_prob=arguments["dropout"],
        max_position_embeddings=arguments["max_sequence_length"],
        type_vocab_size=arguments["num_segments"], layer_norm_eps=BACKBONE_LAYER_NORM_EPS)


def _backbone_variables(backbone, num_layers):
    """[(canonical name, keras-hub variable)] of a BertBackbone: the encoder's and the pooler's."""
    get = backbone.get_layer
    norm = get("embeddings_layer_norm")
    pairs = [(f"{EMB}/word_embeddings", get("token_embedding").embeddings),
             (f"{EMB}/position_embeddings", get("position_embedding").position_embeddings),
             (f"{EMB}/token_type_embeddings", get("segment_embedding").embeddings),
             (f"{EMB}/LayerNorm/gamma", norm.gamma), (f"{EMB}/LayerNorm/beta", norm.beta)]

    def dense(name, layer):
        return [(f"{name}/kernel", layer.kernel), (f"{name}/bias", layer.bias)]

    def layer_norm(name, layer):
        return [(f"{name}/gamma", layer.gamma), (f"{name}/beta", layer.beta)]

    for i in range(num_layers):
        block, p = get(f"transformer_layer_{i}"), layer_prefix(i)
        attention = block._self_attention_layer
        pairs += dense(f"{p}/attention/self/query", attention._query_dense)
        pairs += dense(f"{p}/attention/self/key", attention._key_dense)
        pairs += dense(f"{p}/attention/self/value", attention._value_dense)
        pairs += dense(f"{p}/attention/output/dense", attention._output_dense)
        pairs += layer_norm(f"{p}/attention/output/LayerNorm", block._self_attention_layer_norm)
        pairs += dense(f"{p}/intermediate/dense", block._feedforward_intermediate_dense)
        pairs += dense(f"{p}/output/dense", block._feedforward_output_dense)
        pairs += layer_norm(f"{p}/output/LayerNorm", block._feedforward_layer_norm)
    return pairs + dense(f"{POOLER}/dense", get("pooled_dense"))


def _head_variables(task):
    """{head group: [(canonical name, keras-hub variable)]} of a keras-hub BERT task."""
    if task is None:
        return {}
    if hasattr(task, "masked_lm_head"):
        head, p = task.masked_lm_head, "cls/predictions"
        return {p: [(f"{p}/transform/dense/kernel", head._intermediate_dense.kernel),
                    (f"{p}/transform/dense/bias", head._intermediate_dense.bias),
                    (f"{p}/transform/LayerNorm/gamma", head._intermediate_layer_norm.gamma),
                    (f"{p}/transform/LayerNorm/beta", head._intermediate_layer_norm.beta),
                    (f"{p}/output_bias", head._bias)]}
    g = "cls/classifier"  # kernels are [in, out] in both
    return {g: [(f"{g}/output_weights", task.output_dense.kernel),
                (f"{g}/output_bias", task.output_dense.bias)]}


def _mlm_options(task):
    """The masked-LM head's activation and LayerNorm epsilon, under our names."""
    head_config = task.masked_lm_head.get_config()
    activation = head_config.get("intermediate_activation")
    if activation not in ACTIVATIONS:  # keras's "gelu" is the exact (erf) one, as is ours
        raise BertInputError(f"masked-LM head activation {activation!r} has no keras_bert_x "
                             f"equivalent; supported: {', '.join(sorted(ACTIVATIONS))}")
    return {"activation": activation, "layer_norm_eps": float(head_config["layer_norm_epsilon"])}


def _load(path, task_name):
    """The keras-hub model a preset holds (its task, else its backbone), without preprocessor."""
    import keras_hub  # here, not at the top: detecting a layout must not load it

    try:
        if task_name is None:
            return keras_hub.models.BertBackbone.from_preset(path)
        return getattr(keras_hub.models, task_name).from_preset(path, preprocessor=None)
    except (ValueError, OSError, KeyError, TypeError) as e:
        raise BertInputError(f"{path}: keras-hub cannot load this preset ({first_line(e)})") \
            from None


def _read_tokenizer(path, config):
    """(vocabulary or None, lower_case or None) of a preset's tokenizer. Our uncased tokenizer
    strips accents (as Google's and Hugging Face's do); keras-hub's does so only when asked, so
    a preset that lower-cases but keeps accents gets a warning: accented words tokenize
    differently."""
    vocab_path = os.path.join(path, VOCAB_FILE)
    if not os.path.isfile(vocab_path):
        return None, None
    tokens = read_vocab(vocab_path)
    if len(tokens) != config.vocab_size:
        raise BertInputError(f"{vocab_path}: {len(tokens)} tokens, but the backbone's "
                             f"vocabulary_size is {config.vocab_size}")
    settings = {}
    try:
        with open(os.path.join(path, "tokenizer.json"), encoding="utf-8") as f:
            settings = json.load(f)["config"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    lower_case = settings.get("lowercase") if isinstance(settings, dict) else None
    if lower_case is True and not settings.get("strip_accents"):
        log.warning("%s: its tokenizer lower-cases but keeps accents; keras_bert_x's uncased "
                    "tokenizer strips them (as BERT's does), so accented words get other ids",
                    path)
    return tokens, lower_case if isinstance(lower_case, bool) else None


def read(path):
    """(config, canonical encoder tensors, heads, head options, vocabulary, lower_case) of a
    keras-hub BERT preset: a BertBackbone, BertMaskedLM or BertTextClassifier."""
    name = _class_name(path, "config.json")
    if name is None:
        raise BertInputError(f"{path}: not a keras-hub preset (config.json names no keras_hub "
                             "class)")
    if name != BACKBONE:
        raise BertInputError(f"{path}: a keras-hub {name} preset; keras_bert_x reads BERT "
                             f"presets ({BACKBONE}, with {' or '.join(TASK_HEADS)})")
    task_name = None
    if os.path.isfile(os.path.join(path, "task.json")):
        task_name = _class_name(path, "task.json")
        if task_name not in TASK_HEADS:
            held = f"a keras-hub {task_name}" if task_name else "no keras-hub task"
            raise BertInputError(f"{path}: task.json holds {held}; keras_bert_x reads "
                                 f"{', '.join(TASK_HEADS)} tasks")
    weights = os.path.join(path, "model.weights.h5")
    if not os.path.isfile(weights):
        raise BertInputError(f"{weights}: weights file not found (a preset saved without its "
                             "weights?)")
    loaded = _load(path, task_name)
    task = None if task_name is None else loaded
    backbone = loaded if task is None else task.backbone
    config = _config_from_backbone(backbone.get_config())
    shapes = encoder_tensor_shapes(config)
    encoder = {}
    for canonical, variable in _backbone_variables(backbone, config.num_hidden_layers):
        encoder[canonical] = np.asarray(variable.numpy(), np.float32).reshape(shapes[canonical])
    pooler = {k: encoder.pop(k) for k in list(encoder) if k.startswith(POOLER + "/")}
    heads = {POOLER: pooler}
    options = {}
    # Without task.weights.h5 the head was not saved: it starts fresh, with a warning.
    if task is not None and os.path.isfile(os.path.join(path, "task.weights.h5")):
        for group, pairs in _head_variables(task).items():
            heads[group] = {n: np.asarray(v.numpy(), np.float32) for n, v in pairs}
        if task_name == "BertMaskedLM":
            options["cls/predictions"] = _mlm_options(task)
        elif task.get_config().get("activation") not in (None, "linear"):
            log.warning("%s: its classifier ends in %r; BertClassifier returns the logits "
                        "before it", path, task.get_config()["activation"])
    vocabulary, lower_case = _read_tokenizer(path, config)
    return config, encoder, heads, options, vocabulary, lower_case


# ---- writing ----------------------------------------------------------------------------------

WRITABLE = ("BertEncoder", "BertMaskedLM", "BertPretrainer", "BertClassifier")


def _differences(model):
    """What keras-hub's BERT cannot express of `model`: [description]."""
    config, out = model.config, []
    if ACTIVATIONS[config.hidden_act] != BACKBONE_ACTIVATION:
        out.append(f"its hidden_act {config.hidden_act!r} (keras-hub's BertBackbone uses the "
                   "tanh approximation of GELU)")
    if config.layer_norm_eps != BACKBONE_LAYER_NORM_EPS:
        out.append(f"its layer_norm_eps {config.layer_norm_eps:g} (keras-hub: 1e-12)")
    if config.attention_probs_dropout_prob != config.hidden_dropout_prob:
        out.append(f"its attention dropout {config.attention_probs_dropout_prob:g} (keras-hub "
                   f"has one rate: {config.hidden_dropout_prob:g})")
    head = getattr(model, "masked_lm_head", None)
    if head is not None and (ACTIVATIONS[head.activation] != MLM_ACTIVATION
                             or head.layer_norm_eps != MLM_LAYER_NORM_EPS):
        out.append(f"its masked-LM head's {head.activation} and epsilon "
                   f"{head.layer_norm_eps:g} (keras-hub: {MLM_ACTIVATION}, "
                   f"{MLM_LAYER_NORM_EPS:g})")
    if getattr(model, "next_sentence_head", None) is not None:
        out.append("its next-sentence head (keras-hub's BertMaskedLM has none)")
    if getattr(model, "labels", None):
        out.append("its label names (keras-hub's classifier has only a count)")
    return out


def _probe_difference(model, keras_hub_model):
    """Largest |ours - keras-hub's| of the main output on a fixed batch with padding."""
    config = model.config
    rng = np.random.default_rng(0)
    length = min(12, config.max_position_embeddings)
    ids = rng.integers(5, config.vocab_size, (2, length)).astype("int32")
    mask = np.ones_like(ids)
    mask[1, length // 2 + 1:] = 0
    ids[1, length // 2 + 1:] = 0
    types = np.zeros_like(ids)
    types[:, length // 3:] = 1 if config.type_vocab_size > 1 else 0
    ours = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}
    theirs = {"token_ids": ids, "padding_mask": mask, "segment_ids": types}
    if hasattr(model, "masked_lm_head"):
        positions = np.array([[0, 1], [1, 0]], "int32")
        a = model({**ours, "masked_lm_positions": positions})["mlm_logits"]
        b = keras_hub_model({**theirs, "mask_positions": positions})
    elif hasattr(model, "classifier_head"):
        a, b = model(ours), keras_hub_model(theirs)
    else:
        a = model(ours)["sequence_output"]
        b = keras_hub_model(theirs)["sequence_output"]
        valid = mask.astype(bool)  # padded positions are not compared: neither model uses them
        a, b = np.asarray(a)[valid], np.asarray(b)[valid]
    return float(np.max(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))))


def _build(model):
    """The keras-hub model (task, else backbone) holding `model`'s weights, and its tokenizer."""
    import keras_hub

    from keras_bert_x.models.weights import encoder_weights, head_weights

    config, kind = model.config, type(model).__name__
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads, hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size, dropout=config.hidden_dropout_prob,
        max_sequence_length=config.max_position_embeddings, num_segments=config.type_vocab_size)
    tokenizer = None
    if model.vocabulary is not None:
        lower_case = True if model.lower_case is None else bool(model.lower_case)
        try:  # accents go with case, as in our tokenizer (keras-hub keeps them by default)
            tokenizer = keras_hub.models.BertTokenizer(
                vocabulary=list(model.vocabulary), lowercase=lower_case, strip_accents=lower_case)
        except ValueError as e:
            raise BertInputError(f"keras-hub's BertTokenizer refuses this model's vocabulary "
                                 f"({first_line(e)})") from None
    # keras-hub's preprocessors pack to 512 tokens unless told: no more than the model holds.
    length = min(512, config.max_position_embeddings)
    if kind in ("BertMaskedLM", "BertPretrainer"):
        preprocessor = tokenizer and keras_hub.models.BertMaskedLMPreprocessor(
            tokenizer, sequence_length=length)
        task = keras_hub.models.BertMaskedLM(backbone, preprocessor=preprocessor)
    elif kind == "BertClassifier":
        preprocessor = tokenizer and keras_hub.models.BertTextClassifierPreprocessor(
            tokenizer, sequence_length=length)
        task = keras_hub.models.BertTextClassifier(backbone, num_classes=model.num_classes,
                                                   dropout=model.dropout,
                                                   preprocessor=preprocessor)
    else:
        task = None
    tensors = encoder_weights(getattr(model, "encoder", model))
    for group in head_weights(model).values():
        tensors.update(group)
    pairs = _backbone_variables(backbone, config.num_hidden_layers)
    for group in _head_variables(task).values():
        pairs += group
    for canonical, variable in pairs:
        variable.assign(np.reshape(tensors[canonical], variable.shape))
    return (task or backbone), tokenizer, task is None


def write(model, path, overwrite=False):
    """Writes `model` as a keras-hub preset directory; returns the largest output difference
    between it and keras-hub's model on a probe batch (0 when keras-hub expresses it exactly).

    A BertEncoder becomes a BertBackbone preset, a BertMaskedLM or BertPretrainer a
    BertMaskedLM, a BertClassifier a BertTextClassifier; the vocabulary, when known, goes in as
    keras-hub's tokenizer (and the task's preprocessor).
    """
    kind = type(model).__name__
    if kind not in WRITABLE:
        raise BertInputError(f"keras-hub has no BERT task for a {kind}; write its encoder "
                             "(BertEncoder.from_pretrained(dir)) instead")
    if ACTIVATIONS[model.config.hidden_act] not in ("gelu", "gelu_tanh"):
        raise BertInputError(f"hidden_act {model.config.hidden_act!r}: keras-hub's "
                             "BertBackbone always uses GELU")
    # Entered first: an output that may not be replaced is refused before any work.
    with atomic_output_dir(path, overwrite=overwrite, replaceable=is_preset,
                           replaceable_kind="keras-hub preset") as tmp:
        keras_hub_model, tokenizer, bare_backbone = _build(model)
        difference = _probe_difference(model, keras_hub_model)
        keras_hub_model.save_to_preset(tmp)
        if bare_backbone and tokenizer is not None:
            tokenizer.save_to_preset(tmp)
    notes = _differences(model)
    if model.vocabulary is None:
        notes.append("a tokenizer (the model has no vocabulary)")
    if notes or difference > TOLERANCE:
        dropped = f"written without {'; '.join(notes)}. " if notes else ""
        log.warning("%s: %skeras-hub's outputs differ from this %s's by up to %.2g on a probe "
                    "batch", path, dropped, kind, difference)
    return difference
