"""In-process checks of the loop, optimizers and schedule (no subprocesses)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_bert_x as kbx
from keras_bert_x.training.losses import PretrainingTask
from keras_bert_x.training.loop import TrainingLoop
from keras_bert_x.training.optimization import Lamb, WarmupPolynomialDecay, create_optimizer


def _batch(vocab=101, batch=4, seq=12, predictions=3, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, (batch, seq)).astype("int32")
    return {"input_word_ids": ids, "input_mask": np.ones_like(ids),
            "input_type_ids": np.zeros_like(ids),
            "masked_lm_positions": rng.integers(1, seq, (batch, predictions)).astype("int32"),
            "masked_lm_ids": rng.integers(5, vocab, (batch, predictions)).astype("int32"),
            "masked_lm_weights": np.ones((batch, predictions), "float32"),
            "next_sentence_labels": rng.integers(0, 2, batch).astype("int32"),
            "example_weights": np.ones(batch, "float32")}


def _loop(optimizer_name="adamw", policy="float32", loss_scale=0.0):
    keras.mixed_precision.set_global_policy(policy)
    try:
        strategy = tf.distribute.get_strategy()
        config = kbx.BertConfig.from_preset("bert_tiny", vocab_size=101, hidden_size=32,
                                            num_attention_heads=2, intermediate_size=64,
                                            max_position_embeddings=16)
        model = kbx.BertPretrainer(kbx.BertEncoder(config))
        optimizer = create_optimizer(optimizer_name, 1e-3, 100, 2)
        return TrainingLoop(strategy, model, optimizer, PretrainingTask(), loss_scale=loss_scale), model
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_loss_goes_down_on_a_repeated_batch(name):
    loop, _ = _loop(name)
    data = tf.data.Dataset.from_tensors(_batch()).repeat()
    iterator = iter(data)
    first = loop.train_step(iterator)["loss"]
    for _ in range(20):
        last = loop.train_step(iterator)["loss"]
    assert np.isfinite(last) and last < first


def test_one_step_calls_then_graph_loops_train_as_single_steps_do():
    """A resumed run's first call may be 1 step (up to a checkpoint), its next ones loops of
    several: the first runs without the graph loop, the later ones in it, on the same weights."""
    batches = [_batch(seed=i) for i in range(5)]

    def trained(counts):
        keras.utils.set_random_seed(0)
        loop, model = _loop()
        iterator = iter(tf.data.Dataset.from_tensor_slices(
            {k: np.stack([b[k] for b in batches]) for k in batches[0]}))
        losses = [loop.train_steps(iterator, n)["loss"] for n in counts]
        return losses, model.get_weights()

    singles, expected = trained([1] * 5)
    mixed, got = trained([1, 3, 1])
    assert mixed[0] == pytest.approx(singles[0], abs=1e-6)
    assert mixed[2] == pytest.approx(singles[4], abs=1e-6)
    assert max(float(np.abs(a - b).max()) for a, b in zip(expected, got)) < 1e-5


@pytest.mark.parametrize("policy,loss_scale", [("mixed_bfloat16", 0.0), ("mixed_float16", 2.0 ** 15)])
def test_mixed_precision_steps_are_finite(policy, loss_scale):
    keras.mixed_precision.set_global_policy(policy)
    try:
        loop, model = _loop(policy=policy, loss_scale=loss_scale)
        iterator = iter(tf.data.Dataset.from_tensors(_batch()).repeat())
        metrics = [loop.train_step(iterator) for _ in range(3)]
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(np.isfinite(m["loss"]) for m in metrics)
    assert model.trainable_variables[0].dtype == "float32"


def test_adamw_and_lamb_exclude_layer_norm_and_bias():
    variables = {"kernel": keras.Variable(np.ones((4, 4), "float32") * 3, name="kernel"),
                 "bias": keras.Variable(np.ones(4, "float32") * 3, name="bias"),
                 "gamma": keras.Variable(np.ones(4, "float32") * 3, name="gamma")}
    for optimizer in (create_optimizer("adamw", 0.1, 10, 0, weight_decay=0.5),
                      Lamb(learning_rate=0.1, lamb_weight_decay=0.5)):
        values = {k: keras.Variable(v.numpy(), name=k) for k, v in variables.items()}
        optimizer.apply_gradients([(tf.zeros_like(v), v) for v in values.values()])
        # Zero gradients: only weight decay moves a variable.
        assert not np.allclose(values["kernel"].numpy(), 3.0)
        np.testing.assert_allclose(values["bias"].numpy(), 3.0)
        np.testing.assert_allclose(values["gamma"].numpy(), 3.0)


def test_lamb_trust_ratio_only_for_adapted_variables():
    kernel = keras.Variable(np.full((2, 2), 10.0, "float32"), name="kernel")
    bias = keras.Variable(np.full(2, 10.0, "float32"), name="bias")
    lamb = Lamb(learning_rate=0.01, lamb_weight_decay=0.0)
    lamb.apply_gradients([(tf.ones((2, 2)), kernel), (tf.ones(2), bias)])
    # Adam's first step is ~lr·sign(g) = 0.01; the trust ratio ‖w‖/‖u‖ = 10 scales the kernel's.
    np.testing.assert_allclose(10.0 - kernel.numpy(), 0.1, rtol=1e-3)
    np.testing.assert_allclose(10.0 - bias.numpy(), 0.01, rtol=1e-3)


def test_warmup_then_linear_decay():
    schedule = WarmupPolynomialDecay(1.0, warmup_steps=10, total_steps=110)
    values = [float(schedule(s)) for s in (0, 5, 10, 60, 110, 200)]
    np.testing.assert_allclose(values, [0.0, 0.5, 1.0, 0.5, 0.0, 0.0], atol=1e-6)


def test_a_log_line_cut_by_a_kill_loses_only_itself(tmp_path):
    """A kill in mid-write leaves half a JSON line: the records appended after the restart
    still parse, and a resumed fine-tuning run reads back every whole evaluation."""
    from keras_bert_x.training.finetuning import _evaluations
    from keras_bert_x.training.runner import open_log

    path = tmp_path / "eval_metrics.jsonl"
    path.write_text('{"step": 10, "accuracy": 0.5}\n{"step": 20, "accur')
    with open_log(str(path)) as log:
        log.write('{"step": 20, "accuracy": 0.75}\n')
    rows = _evaluations(str(tmp_path), up_to_step=20, per_epoch=10)
    assert rows == [{"step": 10, "epoch": 1.0, "accuracy": 0.5},
                    {"step": 20, "epoch": 2.0, "accuracy": 0.75}]


def test_ctrl_c_and_sigterm_set_the_stop_flag_and_a_second_ctrl_c_stops_at_once():
    import os
    import signal
    import subprocess
    import sys
    import threading

    from keras_bert_x.training.checkpoints import StopFlag

    before = signal.getsignal(signal.SIGINT)
    with StopFlag() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == "SIGTERM"
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt: a flag the loop reads
        assert stop.requested == "SIGINT"
    assert signal.getsignal(signal.SIGINT) is before

    def off_the_main_thread():  # where signal.signal raises: nothing installed, no error
        with StopFlag() as stop:
            seen.append(stop.requested)
    seen = []
    thread = threading.Thread(target=off_the_main_thread)
    thread.start()
    thread.join()
    assert seen == [None] and signal.getsignal(signal.SIGINT) is before

    code = ("import os, signal, time\n"
            "from keras_bert_x.training.checkpoints import StopFlag\n"
            "with StopFlag():\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "    time.sleep(60)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert run.returncode == 130
    assert run.stderr.strip().splitlines()[-1] == "interrupted again (Ctrl-C): stopped at once"
