"""The loop in-process on one device and on MirroredStrategy over the two logical CPUs that
tests/conftest.py sets up: mixed_float16 overflow handling, and gradients all-reduced once."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_bert_x as kbx
from keras_bert_x.training.losses import PretrainingTask
from keras_bert_x.training.loop import TrainingLoop
from keras_bert_x.training.optimization import create_optimizer

CONFIG = kbx.BertConfig.from_preset("bert_tiny", vocab_size=101, hidden_size=32,
                                    num_attention_heads=2, intermediate_size=64,
                                    max_position_embeddings=16, hidden_dropout_prob=0.0,
                                    attention_probs_dropout_prob=0.0)


class PoisonedTask(PretrainingTask):
    """Adds `poison · Σ nsp_logits` to the loss: a poison of inf on one example makes the
    gradients of the replica holding it non-finite, as an fp16 overflow does."""

    def sums(self, batch, outputs):
        sums = super().sums(batch, outputs)
        logits = tf.reduce_sum(tf.cast(outputs["nsp_logits"], tf.float32), axis=-1)
        sums["nsp_loss"] += tf.reduce_sum(batch["poison"] * logits)
        return sums


def _batch(poison_row=None, batch=4, seq=12, predictions=3):
    rng = np.random.default_rng(0)
    ids = rng.integers(5, CONFIG.vocab_size, (batch, seq)).astype("int32")
    poison = np.zeros(batch, "float32")
    if poison_row is not None:
        poison[poison_row] = np.inf
    return {"input_word_ids": ids, "input_mask": np.ones_like(ids),
            "input_type_ids": np.zeros_like(ids),
            "masked_lm_positions": rng.integers(1, seq, (batch, predictions)).astype("int32"),
            "masked_lm_ids": rng.integers(5, CONFIG.vocab_size, (batch, predictions)).astype("int32"),
            "masked_lm_weights": np.ones((batch, predictions), "float32"),
            "next_sentence_labels": rng.integers(0, 2, batch).astype("int32"),
            "example_weights": np.ones(batch, "float32"), "poison": poison}


def _strategy(name):
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    return tf.distribute.get_strategy()


def _loop(strategy, policy="float32", optimizer="adamw", loss_scale=0.0):
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(1)
        with strategy.scope():
            model = kbx.BertPretrainer(kbx.BertEncoder(CONFIG))
            opt = (keras.optimizers.SGD(0.1) if optimizer == "sgd"
                   else create_optimizer("adamw", 1e-3, 100, 0))
            loop = TrainingLoop(strategy, model, opt, PoisonedTask(), loss_scale=loss_scale)
        return loop, model
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _iterator(strategy, batch):
    return iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch).repeat()))


def _values(model):
    return [np.array(v.numpy()) for v in model.trainable_variables]


@pytest.mark.parametrize("strategy_name", ["default", "mirrored"])
def test_overflow_skips_the_update_and_halves_the_scale(strategy_name):
    strategy = _strategy(strategy_name)
    loop, model = _loop(strategy, "mixed_float16", loss_scale=2.0 ** 15)
    before = _values(model)
    # Row 3 goes to the second replica under MirroredStrategy: one replica's overflow must stop
    # the update on both.
    metrics = loop.train_step(_iterator(strategy, _batch(poison_row=3)))
    assert not np.isfinite(metrics["loss"])
    assert float(loop.loss_scale.numpy()) == 2.0 ** 14 and int(loop.good_steps.numpy()) == 0
    assert int(loop.optimizer.iterations.numpy()) == 0
    for old, new in zip(before, _values(model)):
        np.testing.assert_array_equal(old, new)

    metrics = loop.train_step(_iterator(strategy, _batch()))  # a clean batch trains
    assert np.isfinite(metrics["loss"])
    assert float(loop.loss_scale.numpy()) == 2.0 ** 14 and int(loop.good_steps.numpy()) == 1
    assert int(loop.optimizer.iterations.numpy()) == 1
    assert any(not np.array_equal(o, n) for o, n in zip(before, _values(model)))


def test_loss_scale_grows_after_good_steps(monkeypatch):
    monkeypatch.setattr(TrainingLoop, "GROWTH_INTERVAL", 2)
    strategy = _strategy("mirrored")
    loop, _ = _loop(strategy, "mixed_float16", loss_scale=2.0 ** 10)
    iterator = _iterator(strategy, _batch())
    loop.train_step(iterator)
    loop.train_step(iterator)
    assert float(loop.loss_scale.numpy()) == 2.0 ** 11 and int(loop.good_steps.numpy()) == 0


@pytest.mark.parametrize("policy,loss_scale", [("float32", 0.0), ("mixed_float16", 2.0 ** 15)])
def test_mirrored_update_equals_one_device(policy, loss_scale):
    """With plain SGD the update is proportional to the gradient: an all-reduce done twice
    (once by the loop, once inside the optimizer) would double it on two replicas."""
    updates = {}
    for name in ("default", "mirrored"):
        strategy = _strategy(name)
        loop, model = _loop(strategy, policy, optimizer="sgd", loss_scale=loss_scale)
        before = _values(model)
        loop.train_step(_iterator(strategy, _batch()))
        updates[name] = [new - old for old, new in zip(before, _values(model))]
    largest = max(np.abs(u).max() for u in updates["default"])
    assert largest > 1e-4  # it did move
    tolerance = (1e-4 if policy == "float32" else 1e-2) * largest
    for single, mirrored in zip(updates["default"], updates["mirrored"]):
        np.testing.assert_allclose(mirrored, single, rtol=0, atol=tolerance)
