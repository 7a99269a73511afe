"""keras-hub presets both ways: what `save_to_preset` writes loads into our classes, and what we
write loads with keras-hub's `from_preset`; outputs agree to 1e-5 (exactly, in practice)."""

import logging
import os

import keras
import keras_hub
import numpy as np
import pytest

import keras_bert_x as kbx
from keras_bert_x.errors import BertInputError
from keras_bert_x.io_utils import read_vocab
from keras_bert_x.text.tokenizer import BertTokenizer
from tests.helpers import SENTENCES, convert, max_diff_on_tokens, one_error_line, random_batch

VOCAB = 60
TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]
POSITIONS = np.array([[1, 2], [3, 4], [0, 2]], "int32")


def scramble(model, seed=0):
    """Every weight random and far from its initial value (LayerNorm gammas and biases too), so
    a mapping that swaps or drops a tensor shows in the outputs."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if "seed_generator" not in variable.path and variable.dtype != "int64":
            variable.assign(rng.normal(0, 0.3, variable.shape).astype(variable.dtype))


def theirs(batch):
    return {"token_ids": batch["input_word_ids"], "segment_ids": batch["input_type_ids"],
            "padding_mask": batch["input_mask"]}


def backbone():
    return keras_hub.models.BertBackbone(vocabulary_size=VOCAB, num_layers=2, num_heads=4,
                                         hidden_dim=32, intermediate_dim=48,
                                         max_sequence_length=24, num_segments=2)


def tokenizer(lowercase=True):
    return keras_hub.models.BertTokenizer(vocabulary=TOKENS, lowercase=lowercase)


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    """{kind: (keras-hub model, its save_to_preset directory)} of random-weight BERT models."""
    root = tmp_path_factory.mktemp("keras_hub")
    keras.utils.set_random_seed(3)
    models = {
        "backbone": backbone(),
        "masked_lm": keras_hub.models.BertMaskedLM(
            backbone(), preprocessor=keras_hub.models.BertMaskedLMPreprocessor(tokenizer())),
        "classifier": keras_hub.models.BertTextClassifier(
            backbone(), num_classes=3,
            preprocessor=keras_hub.models.BertTextClassifierPreprocessor(tokenizer(False))),
    }
    out = {}
    for i, (kind, model) in enumerate(models.items()):
        scramble(model, seed=i)
        model.save_to_preset(str(root / kind))
        out[kind] = (model, root / kind)
    return out


def test_backbone_preset_loads_as_our_encoder(presets):
    model, path = presets["backbone"]
    encoder = kbx.BertEncoder.from_pretrained(path)
    batch = random_batch(VOCAB)
    ours, ref = encoder(batch), model(theirs(batch))
    assert encoder.config.hidden_act == "gelu_tanh"  # keras-hub's choice, kept
    assert max_diff_on_tokens(ours["sequence_output"], ref["sequence_output"],
                              batch["input_mask"]) <= 1e-5
    assert np.abs(np.asarray(ours["pooled_output"]) - np.asarray(ref["pooled_output"])).max() \
        <= 1e-5
    assert encoder.vocabulary is None  # a bare backbone preset has no tokenizer


def test_masked_lm_preset_loads_with_its_head_and_vocabulary(presets, caplog):
    model, path = presets["masked_lm"]
    batch = random_batch(VOCAB)
    ref = np.asarray(model({**theirs(batch), "mask_positions": POSITIONS}))
    with caplog.at_level(logging.WARNING, logger="keras_bert_x"):
        mlm = kbx.BertMaskedLM.from_pretrained(path)
    # keras-hub's default uncased tokenizer keeps accents; ours strips them: said, not hidden.
    assert "lower-cases but keeps accents" in caplog.text
    caplog.clear()
    ours = np.asarray(mlm({**batch, "masked_lm_positions": POSITIONS})["mlm_logits"])
    assert np.abs(ours - ref).max() <= 1e-5
    # keras-hub's head: exact GELU and epsilon 1e-5, unlike its tanh-GELU encoder.
    assert (mlm.masked_lm_head.activation, mlm.masked_lm_head.layer_norm_eps) == ("gelu", 1e-5)
    assert mlm.vocabulary == tuple(TOKENS) and mlm.lower_case is True
    with caplog.at_level(logging.WARNING, logger="keras_bert_x"):
        pretrainer = kbx.BertPretrainer.from_pretrained(path)
    assert "next-sentence head" in caplog.text  # keras-hub has none: fresh, said once
    out = pretrainer({**batch, "masked_lm_positions": POSITIONS})["mlm_logits"]
    assert np.abs(np.asarray(out) - ref).max() <= 1e-5


def test_classifier_preset_loads_as_our_classifier(presets, tmp_path):
    model, path = presets["classifier"]
    batch = random_batch(VOCAB)
    classifier = kbx.BertClassifier.from_pretrained(path)
    assert classifier.num_classes == 3 and classifier.lower_case is False
    assert np.abs(np.asarray(classifier(batch)) - np.asarray(model(theirs(batch)))).max() <= 1e-5
    # Saved in our format and loaded again, the head options and weights survive.
    classifier.save_pretrained(tmp_path / "ours")
    again = kbx.BertClassifier.from_pretrained(tmp_path / "ours")
    assert np.array_equal(np.asarray(again(batch)), np.asarray(classifier(batch)))


def test_our_encoder_written_as_preset_loads_in_keras_hub(tmp_path):
    config = kbx.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=4, intermediate_size=48,
                            max_position_embeddings=24, hidden_act="gelu_tanh")
    encoder = kbx.BertEncoder(config)
    scramble(encoder)
    encoder.vocabulary, encoder.lower_case = tuple(TOKENS), True
    assert encoder.save_pretrained(tmp_path / "p", format="keras_hub") <= 1e-5
    loaded = keras_hub.models.BertBackbone.from_preset(str(tmp_path / "p"))
    batch = random_batch(VOCAB)
    ours, ref = encoder(batch), loaded(theirs(batch))
    assert max_diff_on_tokens(ours["sequence_output"], ref["sequence_output"],
                              batch["input_mask"]) <= 1e-5
    assert np.abs(np.asarray(ours["pooled_output"]) - np.asarray(ref["pooled_output"])).max() \
        <= 1e-5
    ids = keras_hub.models.BertTokenizer.from_preset(str(tmp_path / "p"))(["w3 W4"])
    assert np.asarray(ids).tolist() == [[8, 9]]  # our vocabulary, lower-cased as ours was


@pytest.mark.parametrize("kind", ["masked_lm", "classifier"])
def test_round_trip_through_our_format_is_exact(presets, tmp_path, kind):
    """keras-hub -> ours -> keras-hub: the task class, head and outputs come back unchanged."""
    model, path = presets[kind]
    ours_class = kbx.BertMaskedLM if kind == "masked_lm" else kbx.BertClassifier
    ours = ours_class.from_pretrained(path)
    ours.save_pretrained(tmp_path / "ours")
    assert ours_class.from_pretrained(tmp_path / "ours").save_pretrained(
        tmp_path / "back", format="keras_hub") <= 1e-5
    task_class = type(model)
    back = task_class.from_preset(str(tmp_path / "back"), preprocessor=None)
    batch = theirs(random_batch(VOCAB))
    if kind == "masked_lm":
        batch["mask_positions"] = POSITIONS
    assert np.abs(np.asarray(back(batch)) - np.asarray(model(batch))).max() <= 1e-5
    assert isinstance(task_class.from_preset(str(tmp_path / "back")).preprocessor,
                      keras_hub.models.Preprocessor)  # the vocabulary went in as a tokenizer


@pytest.mark.parametrize("lower_case", [True, False])
def test_written_preset_tokenizes_and_predicts_text_as_we_do(vocab_file, tmp_path, lower_case):
    """The written tokenizer and preprocessor give our ids (accents stripped with case, as
    ours), and keras-hub's `predict` on raw text gives our logits."""
    config = kbx.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=4, intermediate_size=48,
                            max_position_embeddings=24, hidden_act="gelu_tanh")
    classifier = kbx.BertClassifier(kbx.BertEncoder(config), num_classes=3)
    scramble(classifier)
    classifier.vocabulary, classifier.lower_case = read_vocab(vocab_file), lower_case
    assert classifier.save_pretrained(tmp_path / "p", format="keras_hub") <= 1e-5
    ours = BertTokenizer(classifier.vocabulary, lower_case=lower_case, max_seq_length=24)
    loaded = keras_hub.models.BertTextClassifier.from_preset(str(tmp_path / "p"))
    their_ids = loaded.preprocessor.tokenizer(SENTENCES)
    assert [list(map(int, row)) for row in their_ids] == ours.tokenize(SENTENCES).to_list()
    logits = loaded.predict(SENTENCES, verbose=0)  # packed to 24 tokens, as the model holds
    assert np.abs(logits - np.asarray(classifier(ours(SENTENCES)))).max() <= 1e-5


def test_exact_gelu_model_is_written_with_its_measured_difference(tmp_path, caplog):
    """keras-hub's BertBackbone has only tanh GELU: an erf-GELU model is written anyway and the
    warning gives the measured difference, which is what keras-hub then computes."""
    encoder = kbx.BertEncoder(kbx.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                             num_attention_heads=4, intermediate_size=48,
                                             max_position_embeddings=24))
    scramble(encoder)
    with caplog.at_level(logging.WARNING, logger="keras_bert_x"):
        difference = encoder.save_pretrained(tmp_path / "p", format="keras_hub")
    assert "tanh approximation of GELU" in caplog.text and f"{difference:.2g}" in caplog.text
    assert len(caplog.records) == 1
    loaded = keras_hub.models.BertBackbone.from_preset(str(tmp_path / "p"))
    batch = random_batch(VOCAB, seed=1)
    actual = max_diff_on_tokens(encoder(batch)["sequence_output"],
                                loaded(theirs(batch))["sequence_output"], batch["input_mask"])
    assert 1e-5 < difference and 0.1 < actual / difference < 10


def test_an_unexplained_difference_is_reported_too(tmp_path, caplog):
    """Not only the causes we know of: any difference over 1e-5 gets the warning (here, a
    bfloat16 model written as keras-hub's float32)."""
    config = kbx.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=4, intermediate_size=48,
                            max_position_embeddings=24, hidden_act="gelu_tanh")
    encoder = kbx.BertEncoder(config, dtype="bfloat16")
    scramble(encoder)
    encoder.vocabulary = tuple(TOKENS)
    with caplog.at_level(logging.WARNING, logger="keras_bert_x"):
        difference = encoder.save_pretrained(tmp_path / "p", format="keras_hub")
    assert difference > 1e-5 and "written without" not in caplog.text
    assert f"differ from this BertEncoder's by up to {difference:.2g}" in caplog.text


def test_converter_cli_reads_and_writes_presets(presets, tmp_path):
    _, path = presets["classifier"]
    run = convert("--source", "keras_hub", "--input", path, "--output", tmp_path / "ours",
                  "--model", "classifier")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "converted keras_hub checkpoint" in run.stdout
    run = convert("--input", tmp_path / "ours", "--output", tmp_path / "hub", "--model",
                  "classifier", "--output_format", "keras_hub")
    assert run.returncode == 0, run.stderr[-2000:]
    model = keras_hub.models.BertTextClassifier.from_preset(str(tmp_path / "hub"))
    batch = theirs(random_batch(VOCAB))
    assert np.abs(np.asarray(model(batch)) - np.asarray(presets["classifier"][0](batch))).max() \
        <= 1e-5


# ---- bad input: one clear error, nothing written ----------------------------------------------

def test_preset_of_another_architecture_is_refused(tmp_path):
    other = keras_hub.models.DistilBertBackbone(vocabulary_size=VOCAB, num_layers=1, num_heads=2,
                                                hidden_dim=16, intermediate_dim=32,
                                                max_sequence_length=16)
    other.save_to_preset(str(tmp_path / "distil"))
    with pytest.raises(BertInputError, match="keras-hub DistilBertBackbone preset"):
        kbx.BertEncoder.from_pretrained(tmp_path / "distil")
    run = convert("--input", tmp_path / "distil", "--output", tmp_path / "out")
    assert "DistilBertBackbone preset" in one_error_line(run)
    assert not os.path.exists(tmp_path / "out")


def test_preset_without_weights_is_refused(presets, tmp_path):
    import shutil

    shutil.copytree(presets["backbone"][1], tmp_path / "p")
    os.remove(tmp_path / "p" / "model.weights.h5")
    run = convert("--source", "keras_hub", "--input", tmp_path / "p", "--output", tmp_path / "out")
    assert one_error_line(run) == (f"error: {tmp_path / 'p' / 'model.weights.h5'}: weights "
                                   "file not found (a preset saved without its weights?)")
    assert not os.path.exists(tmp_path / "out")


def test_corrupt_preset_weights_are_one_error(presets, tmp_path):
    import shutil

    shutil.copytree(presets["backbone"][1], tmp_path / "p")
    (tmp_path / "p" / "model.weights.h5").write_bytes(b"not an h5 file")
    with pytest.raises(BertInputError, match="keras-hub cannot load this preset"):
        kbx.BertEncoder.from_pretrained(tmp_path / "p")


def test_writing_refuses_what_keras_hub_cannot_hold_and_keeps_existing_output(tmp_path):
    config = kbx.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1,
                            num_attention_heads=4, intermediate_size=48,
                            max_position_embeddings=24)
    with pytest.raises(BertInputError, match="keras-hub has no BERT task for a BertSpanQA"):
        kbx.BertSpanQA(kbx.BertEncoder(config)).save_pretrained(tmp_path / "qa",
                                                                format="keras_hub")
    relu = kbx.BertEncoder(kbx.BertConfig(**{**config.to_dict(), "hidden_act": "relu"}))
    with pytest.raises(BertInputError, match="always uses GELU"):
        relu.save_pretrained(tmp_path / "relu", format="keras_hub")
    assert not os.path.exists(tmp_path / "qa") and not os.path.exists(tmp_path / "relu")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(BertInputError, match="not empty and is not a keras-hub preset"):
        kbx.BertEncoder(config).save_pretrained(tmp_path / "busy", format="keras_hub",
                                                overwrite=True)
    assert os.listdir(tmp_path / "busy") == ["notes.txt"]
    # A preset of ours is replaced with --overwrite, whole.
    kbx.BertEncoder(config).save_pretrained(tmp_path / "p", format="keras_hub")
    kbx.BertClassifier(kbx.BertEncoder(config)).save_pretrained(tmp_path / "p",
                                                                format="keras_hub", overwrite=True)
    assert os.path.isfile(tmp_path / "p" / "task.json")
