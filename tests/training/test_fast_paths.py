"""The speed-ups of the training step keep its numbers: fused AdamW, graph loops of
--steps_per_loop, XLA-compiled steps (what a TPU needs), and static-shape readers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_bert_x as kbx
from keras_bert_x.training.losses import PretrainingTask
from keras_bert_x.training.loop import TrainingLoop
from keras_bert_x.training.optimization import EXCLUDED, AdamW, create_optimizer
from tests.training.test_loop_units import _batch


def _apply_three_steps(optimizer_class, sparse=False):
    keras.utils.set_random_seed(1)
    kernel = keras.Variable(np.linspace(-1, 1, 12, dtype="float32").reshape(3, 4), name="kernel")
    bias = keras.Variable(np.ones(4, "float32"), name="bias")
    optimizer = optimizer_class(
        learning_rate=keras.optimizers.schedules.PolynomialDecay(1e-2, 10, 0.0),
        weight_decay=0.1, epsilon=1e-6)
    optimizer.exclude_from_weight_decay(var_names=list(EXCLUDED))
    optimizer.build([kernel, bias])

    @tf.function
    def step(gradient):
        kernel_gradient = gradient
        if sparse:  # as an embedding lookup's gradient arrives
            kernel_gradient = tf.IndexedSlices(gradient[:2], tf.constant([0, 2]),
                                               tf.constant([3, 4]))
        optimizer.apply_gradients([(kernel_gradient, kernel), (gradient[0], bias)])

    for i in range(3):
        step(tf.constant(np.sin(np.arange(12) + i).reshape(3, 4), tf.float32))
    return [v.numpy() for v in (kernel, bias, *optimizer.variables)]


@pytest.mark.parametrize("sparse", [False, True])
def test_fused_adamw_is_keras_adamw(sparse):
    ours, keras_ = _apply_three_steps(AdamW, sparse), _apply_three_steps(keras.optimizers.AdamW,
                                                                          sparse)
    start = np.linspace(-1, 1, 12, dtype="float32").reshape(3, 4)
    assert np.abs(ours[0] - start).max() > 0.01  # it trained, and decayed the kernel
    assert len(ours) == len(keras_) == 2 + 5  # + iterations, 2 moments, 2 velocities
    for a, b in zip(ours, keras_):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_keras_adamw_checkpoint_restores_into_ours(tmp_path):
    """Runs saved before the fused AdamW resume with it: the same variables, the same names."""
    kernel = keras.Variable(np.ones((3, 4), "float32"), name="kernel")
    saved = keras.optimizers.AdamW(1e-2, weight_decay=0.1)
    saved.apply_gradients([(tf.fill((3, 4), 0.5), kernel)])
    path = tf.train.Checkpoint(optimizer=saved).save(str(tmp_path / "ckpt"))
    ours = AdamW(1e-2, weight_decay=0.1)
    ours.build([kernel])
    tf.train.Checkpoint(optimizer=ours).restore(path).assert_consumed()
    for a, b in zip(saved.variables, ours.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(ours.iterations.numpy()) == 1


def test_create_optimizer_gives_the_fused_adamw():
    assert type(create_optimizer("adamw", 1e-4, 10, 1)) is AdamW


def _loop(dropout=0.0, jit_compile=False, policy="float32"):
    keras.utils.set_random_seed(3)
    keras.mixed_precision.set_global_policy(policy)
    try:
        config = kbx.BertConfig.from_preset(
            "bert_tiny", vocab_size=101, hidden_size=32, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=16, hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout)
        model = kbx.BertPretrainer(kbx.BertEncoder(config))
        return TrainingLoop(tf.distribute.get_strategy(), model,
                            create_optimizer("adamw", 1e-3, 100, 2), PretrainingTask(),
                            jit_compile=jit_compile), model
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _batches(n):
    return tf.data.Dataset.from_tensor_slices(
        {k: np.stack([_batch(seed=i)[k] for i in range(n)]) for k in _batch()})


def test_steps_per_loop_trains_the_same_as_single_steps():
    single, single_model = _loop(dropout=0.1)
    looped, looped_model = _loop(dropout=0.1)
    one_by_one = [single.train_step(iter_) for iter_ in [iter(_batches(4))] for _ in range(4)]
    in_one_call = looped.train_steps(iter(_batches(4)), 4)
    assert int(looped.optimizer.iterations.numpy()) == 4
    # Over the loop: every batch has the same counts, so the mean of the four steps' losses.
    assert in_one_call["loss"] == pytest.approx(np.mean([m["loss"] for m in one_by_one]),
                                                rel=1e-5)
    assert in_one_call["grad_norm"] == pytest.approx(
        np.mean([m["grad_norm"] for m in one_by_one]), rel=1e-5)
    for a, b in zip(single_model.weights, looped_model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="at least 1"):
        looped.train_steps(iter(_batches(1)), 0)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_the_whole_step_compiles_with_xla(policy):
    """jit_compile=True must compile (TensorFlow raises if any op of the step cannot be): the
    condition for a TPU. Without dropout the compiled and uncompiled steps agree."""
    plain, _ = _loop(policy=policy)
    compiled, _ = _loop(jit_compile=True, policy=policy)
    expected = [plain.train_step(iter_) for iter_ in [iter(_batches(3))] for _ in range(3)]
    got = compiled.train_steps(iter(_batches(3)), 3)
    tolerance = 1e-4 if policy == "float32" else 3e-2
    assert got["loss"] == pytest.approx(np.mean([m["loss"] for m in expected]), rel=tolerance)
    sums, _ = compiled._eval(next(iter(_batches(1))))
    assert np.isfinite(float(sums["mlm_loss"]))
    dropped, _ = _loop(dropout=0.1, jit_compile=True, policy=policy)
    assert np.isfinite(dropped.train_steps(iter(_batches(2)), 2)["loss"])


@pytest.mark.parametrize("loss_scale", [0.0, 2.0 ** 15])
def test_one_replica_step_compiles_whole(loss_scale):
    """What a TPU compiles: a replica's whole step, all-reduces, loss scaling, clipping and
    the optimizer update included (jit_compile=True raises if any op cannot compile)."""
    loop, model = _loop()
    loop._use_loss_scale = loss_scale > 0
    loop.loss_scale.assign(loss_scale)
    batch = {k: tf.constant(v) for k, v in _batch().items()}
    before = [w.numpy() for w in model.trainable_weights]
    grads, sums, norm, finite = tf.function(loop._replica_gradients, jit_compile=True)(batch)
    assert bool(finite) and float(norm) > 0
    train = tf.function(lambda b: loop._replica_train(b), jit_compile=True)
    train(batch)
    train(batch)  # the warm-up schedule's learning rate is 0 at the first step
    assert any(np.abs(a - w.numpy()).max() > 0 for a, w in zip(before, model.trainable_weights))
