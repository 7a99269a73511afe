"""keras-hub BERT presets (what `save_to_preset` writes), read into canonical tensors and written
from our models.

A preset is a directory: `config.json` (a `BertBackbone`'s arguments), `model.weights.h5`, the
tokenizer (`tokenizer.json`, `assets/tokenizer/vocabulary.txt`) and, for a task, `task.json` and
`task.weights.h5`. keras-hub itself loads and saves them (the names inside its .h5 files follow
layer order, not stable names); one table, `_backbone_variables` and `_head_variables`, pairs
its variables with our canonical tensors in both directions.

keras-hub's BERT makes two fixed choices that Google's does not: its transformer layers use the
tanh approximation of GELU, and its masked-LM head normalises with epsilon 1e-5. A preset read
here keeps both (`hidden_act="gelu_tanh"`, and the head's own options), so our model computes
what keras-hub's does. A model of ours written here is converted to keras-hub's choices, and if
that moves its outputs, one warning line says by how much (measured on a probe batch).
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


def _keras_hub():
    try:
        import keras_hub
    except ImportError:
        raise BertInputError("keras-hub presets need keras-hub: pip install 'keras-hub==0.32.*'") \
            from None
    return keras_hub


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
    keras_hub = _keras_hub()
    try:
        if task_name is None:
            return keras_hub.models.BertBackbone.from_preset(path)
        return getattr(keras_hub.models, task_name).from_preset(path, preprocessor=None)
    except (ValueError, OSError, KeyError, TypeError) as e:
        raise BertInputError(f"{path}: keras-hub cannot load this preset ({first_line(e)})") \
            from None


def _read_tokenizer(path, config):
    """(vocabulary or None, lower_case or None) of a preset's tokenizer."""
    vocab_path = os.path.join(path, VOCAB_FILE)
    if not os.path.isfile(vocab_path):
        return None, None
    tokens = read_vocab(vocab_path)
    if len(tokens) != config.vocab_size:
        raise BertInputError(f"{vocab_path}: {len(tokens)} tokens, but the backbone's "
                             f"vocabulary_size is {config.vocab_size}")
    lower_case = None
    try:
        with open(os.path.join(path, "tokenizer.json"), encoding="utf-8") as f:
            lower_case = json.load(f)["config"].get("lowercase")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
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
            raise BertInputError(f"{path}: task.json holds a keras-hub {task_name}; keras_bert_x "
                                 f"reads {', '.join(TASK_HEADS)} tasks")
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
    # keras-hub writes task.weights.h5 with every task; without it the head was never saved.
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
        out.append(f"hidden_act {config.hidden_act!r} (keras-hub uses the tanh approximation "
                   "of GELU)")
    if config.layer_norm_eps != BACKBONE_LAYER_NORM_EPS:
        out.append(f"layer_norm_eps {config.layer_norm_eps:g} (keras-hub: 1e-12)")
    if config.attention_probs_dropout_prob != config.hidden_dropout_prob:
        out.append(f"attention dropout {config.attention_probs_dropout_prob:g} (keras-hub has "
                   f"one rate: {config.hidden_dropout_prob:g})")
    head = getattr(model, "masked_lm_head", None)
    if head is not None and (ACTIVATIONS[head.activation] != MLM_ACTIVATION
                             or head.layer_norm_eps != MLM_LAYER_NORM_EPS):
        out.append(f"masked-LM head {head.activation} with epsilon {head.layer_norm_eps:g} "
                   f"(keras-hub: {MLM_ACTIVATION}, {MLM_LAYER_NORM_EPS:g})")
    if getattr(model, "next_sentence_head", None) is not None:
        out.append("the next-sentence head (keras-hub's BertMaskedLM has none; not written)")
    if getattr(model, "labels", None):
        out.append("label names (keras-hub's classifier has only a count)")
    return out


def _probe_difference(model, keras_hub_model):
    """Largest |ours - keras-hub's| of the main output on a fixed batch with padding."""
    config = model.config
    rng = np.random.default_rng(0)
    ids = rng.integers(5, config.vocab_size, (2, 12)).astype("int32")
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    ids[1, 7:] = 0
    types = np.zeros_like(ids)
    types[:, 4:] = 1 if config.type_vocab_size > 1 else 0
    ours = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}
    theirs = {"token_ids": ids, "padding_mask": mask, "segment_ids": types}
    if hasattr(model, "masked_lm_head"):
        positions = np.array([[1, 3], [2, 5]], "int32")
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


def _build(model, keras_hub):
    """The keras-hub model (task, else backbone) holding `model`'s weights, and its tokenizer."""
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
        tokenizer = keras_hub.models.BertTokenizer(vocabulary=list(model.vocabulary),
                                                   lowercase=lower_case)
    if kind in ("BertMaskedLM", "BertPretrainer"):
        preprocessor = tokenizer and keras_hub.models.BertMaskedLMPreprocessor(tokenizer)
        task = keras_hub.models.BertMaskedLM(backbone, preprocessor=preprocessor)
    elif kind == "BertClassifier":
        preprocessor = tokenizer and keras_hub.models.BertTextClassifierPreprocessor(tokenizer)
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
    keras_hub = _keras_hub()
    kind = type(model).__name__
    if kind not in WRITABLE:
        raise BertInputError(f"keras-hub has no BERT task for a {kind}; write its encoder "
                             "(BertEncoder.from_pretrained(dir)) instead")
    if ACTIVATIONS[model.config.hidden_act] not in ("gelu", "gelu_tanh"):
        raise BertInputError(f"hidden_act {model.config.hidden_act!r}: keras-hub's "
                             "BertBackbone always uses GELU")
    keras_hub_model, tokenizer, bare_backbone = _build(model, keras_hub)
    difference = _probe_difference(model, keras_hub_model)
    with atomic_output_dir(path, overwrite=overwrite, replaceable=is_preset) as tmp:
        keras_hub_model.save_to_preset(tmp)
        if bare_backbone and tokenizer is not None:
            tokenizer.save_to_preset(tmp)
    notes = _differences(model)
    if notes:
        log.warning("%s: keras-hub's BERT has no place for: %s. Its outputs differ from this "
                    "%s's by up to %.2g on a probe batch", path, "; ".join(notes), kind,
                    difference)
    if model.vocabulary is None:
        log.warning("%s: written without a tokenizer (the model has no vocabulary)", path)
    return difference
