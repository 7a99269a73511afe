"""BertClassifier, BertTokenClassifier, BertSpanQA: HF task checkpoints load with their heads
and labels (logits match torch), save/load round trips, and plain Keras compile/fit/predict."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
import transformers

import keras_bert_x as kbx
from tests.helpers import random_batch

HF_CONFIG = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=48, max_position_embeddings=40)


def _torch_outputs(model, batch):
    with torch.no_grad():
        return model(input_ids=torch.tensor(batch["input_word_ids"]).long(),
                     attention_mask=torch.tensor(batch["input_mask"]).long(),
                     token_type_ids=torch.tensor(batch["input_type_ids"]).long())


@pytest.mark.parametrize("kind", ["sequence", "regression", "token", "qa"])
def test_hf_task_checkpoints_load_with_heads(tmp_path, kind):
    hf_class, ours, extra = {
        "sequence": (transformers.BertForSequenceClassification, kbx.BertClassifier,
                     dict(num_labels=3, id2label={0: "neg", 1: "neu", 2: "pos"},
                          label2id={"neg": 0, "neu": 1, "pos": 2})),
        "regression": (transformers.BertForSequenceClassification, kbx.BertClassifier,
                       dict(num_labels=1, problem_type="regression")),
        "token": (transformers.BertForTokenClassification, kbx.BertTokenClassifier,
                  dict(num_labels=4, id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC"},
                       label2id={"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3})),
        "qa": (transformers.BertForQuestionAnswering, kbx.BertSpanQA, {}),
    }[kind]
    torch.manual_seed(0)
    reference = hf_class(transformers.BertConfig(**HF_CONFIG, **extra)).eval()
    with torch.no_grad():  # random-init biases are zero: make them count
        for name, parameter in reference.named_parameters():
            if name.endswith("bias") and ("classifier" in name or "qa_outputs" in name):
                parameter.normal_()
    reference.save_pretrained(tmp_path)
    batch = random_batch(120, batch=3, seq_len=9)
    expected = _torch_outputs(reference, batch)
    model = ours.from_pretrained(tmp_path)
    out = model(batch)
    if kind == "qa":
        diff = max(np.abs(np.asarray(out["start_logits"]) - expected.start_logits.numpy()).max(),
                   np.abs(np.asarray(out["end_logits"]) - expected.end_logits.numpy()).max())
    else:
        diff = float(np.abs(np.asarray(out) - expected.logits.numpy()).max())
    print(f"{hf_class.__name__} ({kind}) -> {ours.__name__}: logits {diff:.2e}")
    assert diff <= 1e-4
    labels = {"sequence": ("neg", "neu", "pos"), "regression": None,
              "token": ("O", "B-PER", "I-PER", "B-LOC"), "qa": None}[kind]
    assert getattr(model, "labels", None) == labels
    if kind == "regression":
        assert model.is_regression


def test_google_classifier_checkpoint(tmp_path):
    """google-research/bert's run_classifier.py saves its layer as output_weights [C, H]."""
    from keras_bert_x.convert import read_checkpoint
    from tests.convert.writers import write_google_checkpoint

    torch.manual_seed(1)
    reference = transformers.BertForSequenceClassification(
        transformers.BertConfig(**HF_CONFIG, num_labels=5)).eval()
    reference.save_pretrained(tmp_path / "hf")
    tensors = read_checkpoint(tmp_path / "hf").all_tensors()
    tensors["output_weights"] = tensors.pop("cls/classifier/output_weights").T
    tensors["output_bias"] = tensors.pop("cls/classifier/output_bias")
    write_google_checkpoint(tensors, read_checkpoint(tmp_path / "hf").config, tmp_path / "g")
    batch = random_batch(120, batch=2, seq_len=7)
    model = kbx.BertClassifier.from_pretrained(tmp_path / "g")
    assert model.num_classes == 5
    np.testing.assert_allclose(model(batch), _torch_outputs(reference, batch).logits.numpy(),
                               atol=1e-4)


def test_head_is_fitted_to_the_labels_asked_for(tmp_path, caplog):
    """Fine-tuning from a task checkpoint: its head is kept for the same labels in another
    order (columns reordered), and starts fresh with one warning line for other labels or
    another size (an MNLI head for a binary task, a classifier for regression)."""
    import logging

    torch.manual_seed(0)
    names = {0: "neg", 1: "neu", 2: "pos"}
    reference = transformers.BertForSequenceClassification(transformers.BertConfig(
        **HF_CONFIG, num_labels=3, id2label=names, label2id={v: k for k, v in names.items()}))
    reference.eval().save_pretrained(tmp_path)
    batch = random_batch(120, batch=2, seq_len=7)
    expected = _torch_outputs(reference, batch).logits.numpy()
    with caplog.at_level(logging.WARNING, logger="keras_bert_x"):
        model = kbx.BertClassifier.from_pretrained(tmp_path, labels=["pos", "neg", "neu"])
    assert [r.getMessage() for r in caplog.records] == []
    np.testing.assert_allclose(model(batch), expected[:, [2, 0, 1]], atol=1e-4)
    for args, reason in (({"labels": ["no", "yes"]}, "has 3 outputs, not 2"),
                         ({"labels": ["a", "b", "c"]}, "is for labels (neg, neu, pos), not "
                                                       "(a, b, c)"),
                         ({"num_classes": 1}, "has 3 outputs, not 1")):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="keras_bert_x"):
            model = kbx.BertClassifier.from_pretrained(tmp_path, **args)
        assert [r.getMessage() for r in caplog.records] == [
            f"{tmp_path}: its classification head {reason}; BertClassifier starts it fresh: "
            "train before use"]
        assert model.num_classes == len(args.get("labels", [0]))


@pytest.mark.parametrize("model_class,args", [
    (kbx.BertClassifier, {"labels": ["negative", "positive"]}),
    (kbx.BertClassifier, {"num_classes": 1}),
    (kbx.BertTokenClassifier, {"labels": ["O", "B-X", "I-X"]}),
    (kbx.BertSpanQA, {})])
def test_save_pretrained_round_trip(tiny_config, tmp_path, model_class, args):
    model = model_class(kbx.BertEncoder(tiny_config), **args)
    model.save_pretrained(tmp_path / "m")
    loaded = model_class.from_pretrained(tmp_path / "m")
    batch = random_batch(tiny_config.vocab_size, seq_len=9)
    for a, b in zip(tf.nest.flatten(model(batch)), tf.nest.flatten(loaded(batch))):
        np.testing.assert_array_equal(a, b)
    assert loaded._head_config() == model._head_config()
    # .keras serialization too
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    for a, b in zip(tf.nest.flatten(model(batch)), tf.nest.flatten(again(batch))):
        np.testing.assert_allclose(a, b, atol=1e-6)


def _sentiment(n, seed=0):
    rng = np.random.default_rng(seed)
    good = ["good", "great", "wonderful", "fine"]
    bad = ["bad", "awful", "terrible", "poor"]
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        word = rng.choice(good if label else bad)
        texts.append(f"the film was {word} and the music was {rng.choice(good + bad)}")
        labels.append(label)
    return texts, np.array(labels)


def test_plain_keras_compile_fit_predict(vocab_file):
    """How a keras-hub user tries it: BertTokenizer features, numpy and tf.data, one device."""
    config = kbx.BertConfig.from_preset("bert_tiny", hidden_size=32, num_attention_heads=2,
                                        intermediate_size=64, max_position_embeddings=64,
                                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    tokenizer = kbx.BertTokenizer(vocab_file, max_seq_length=16)
    texts, labels = _sentiment(96)
    features = {k: v.numpy() for k, v in tokenizer(texts).items()}
    keras.utils.set_random_seed(0)
    clf = kbx.BertClassifier(kbx.BertEncoder(config), labels=["negative", "positive"])
    clf.compile(optimizer=keras.optimizers.Adam(3e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    history = clf.fit(features, labels, batch_size=16, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    dataset = tf.data.Dataset.from_tensor_slices((tokenizer(texts), labels)).batch(16)
    loss, accuracy = clf.evaluate(dataset, verbose=0)
    assert accuracy > 0.8, accuracy
    predictions = clf.predict(tokenizer(["the film was wonderful"]), verbose=0)
    assert clf.labels[int(predictions.argmax())] == "positive"

    ner = kbx.BertTokenClassifier(kbx.BertEncoder(config), labels=["O", "B-X"])
    ner.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=-1))
    tags = np.where(features["input_mask"] > 0, 0, -1)
    ner.fit(features, tags, batch_size=32, epochs=1, verbose=0)
    assert ner.predict(features, verbose=0).shape == (96, 16, 2)

    qa = kbx.BertSpanQA(kbx.BertEncoder(config))
    qa.compile(optimizer="adam", loss={
        "start_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "end_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    positions = np.ones(96, "int32")
    qa.fit(features, {"start_logits": positions, "end_logits": positions}, batch_size=32,
           epochs=1, verbose=0)
    assert qa.predict(features, verbose=0)["start_logits"].shape == (96, 16)


@pytest.mark.parametrize("model_class,head", [
    (kbx.BertClassifier, "classifier_head"), (kbx.BertTokenClassifier, "token_classifier_head"),
    (kbx.BertSpanQA, "span_head")])
def test_new_heads_start_as_in_bert(model_class, head):
    """BERT's initialisation: N(0, 0.02) truncated at two standard deviations, zero bias; the
    classifiers' dropout is the config's hidden dropout."""
    config = kbx.BertConfig(vocab_size=50, hidden_size=256, num_hidden_layers=1,
                            num_attention_heads=4, intermediate_size=64,
                            hidden_dropout_prob=0.15)
    keras.utils.set_random_seed(1)
    model = model_class(kbx.BertEncoder(config), **({} if model_class is kbx.BertSpanQA
                                                     else {"labels": list("abcdefgh")}))
    dense = getattr(model, head)
    kernel, bias = (np.asarray(w) for w in dense.weights)
    assert kernel.shape[0] == 256 and dense.dtype_policy.compute_dtype == "float32"
    assert abs(kernel.std() - 0.02 * 0.88) < 0.002  # a truncated N(0, 0.02) has std 0.0176
    assert np.abs(kernel).max() <= 0.04 and (bias == 0).all()
    if model_class is not kbx.BertSpanQA:
        assert model.dropout == 0.15
