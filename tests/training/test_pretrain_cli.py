"""trainers/pretrain.py: resume after kill -9, Model Garden records, bad input, TPU errors."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.training.conftest import P, ROOT, T, common_args, losses, run_script


@pytest.mark.parametrize("variant", ["fp32", "mirrored_fp16_dropout"])
def test_kill_9_then_resume_gives_the_same_losses(train_files, tmp_path, variant):
    """Also as GPU users run it: two replicas, mixed_float16 and dropout on. The dropout seed
    states and the loss scale are in the checkpoint, so the resumed run draws the same masks."""
    args = common_args(train_files, num_train_steps=12, save_checkpoints_steps=2)
    if variant != "fp32":
        config = json.loads(open(train_files[2]).read())
        config.update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
        (tmp_path / "dropout.json").write_text(json.dumps(config))
        args = common_args(train_files, num_train_steps=12, save_checkpoints_steps=2,
                           config=tmp_path / "dropout.json", mixed_precision="mixed_float16",
                           strategy="mirrored", num_cpu_devices=2)
    reference = tmp_path / "reference"
    run = run_script("pretrain.py", f"--model_dir={reference}", *args)
    assert run.returncode == 0, run.stderr[-3000:]

    killed = tmp_path / "killed"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "trainers", "pretrain.py"),
                             f"--model_dir={killed}", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:  # wait for a checkpoint past step 4, then kill -9
        done = losses(killed) if (killed / "metrics.jsonl").exists() else {}
        if max(done, default=0) >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted_at = max(losses(killed))
    assert interrupted_at < 12, "the run finished before it could be killed"

    resumed = run_script("pretrain.py", f"--model_dir={killed}", *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr
    expected, got = losses(reference), losses(killed)  # later lines overwrite replayed steps
    for step in range(1, 13):
        assert abs(expected[step] - got[step]) <= 1e-5, (step, expected[step], got[step])


@pytest.mark.parametrize("strategy", ["default", "mirrored"])
def test_accelerator_loop_compiled_and_in_graph_loops(train_files, tmp_path, strategy):
    """What a TPU or GPU run uses: --jit_compile and --steps_per_loop (here 4, cut to 3 by the
    checkpoints every 3 steps), on one device and on two replicas: same losses as the plain
    loop, checkpoints where asked, metrics once per loop."""
    reference = tmp_path / "reference"
    run = run_script("pretrain.py", f"--model_dir={reference}", *common_args(train_files))
    assert run.returncode == 0, run.stderr[-3000:]
    extra = {"strategy": "mirrored", "num_cpu_devices": 2} if strategy == "mirrored" else {}
    fast = tmp_path / "fast"
    run = run_script("pretrain.py", f"--model_dir={fast}", *common_args(
        train_files, steps_per_loop=4, jit_compile=None, **extra))
    assert run.returncode == 0, run.stderr[-3000:]
    expected, got = losses(reference), losses(fast)
    assert sorted(got) == [3, 6]
    for step in got:  # each loop's loss is over its 3 steps (weighted by masked tokens)
        window = [expected[s] for s in range(step - 2, step + 1)]
        assert min(window) - 1e-4 <= got[step] <= max(window) + 1e-4, (step, window, got[step])
    import keras_bert_x as kbx

    trained = [kbx.BertPretrainer.from_pretrained(d / "pretrained").get_weights()
               for d in (reference, fast)]
    assert max(float(abs(a - b).max()) for a, b in zip(*trained)) < 1e-4
    checkpoints = {p.name.split(".")[0] for p in (fast / "checkpoints").iterdir()
                   if p.name.startswith("ckpt-")}
    assert checkpoints == {"ckpt-3", "ckpt-6"}


def test_sigterm_saves_a_checkpoint(train_files, tmp_path):
    args = common_args(train_files, num_train_steps=400, save_checkpoints_steps=1000)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "trainers", "pretrain.py"),
                             f"--model_dir={tmp_path}", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (tmp_path / "metrics.jsonl").exists():
        time.sleep(0.05)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-2000:]
    assert "SIGTERM: saved checkpoint at step" in stderr
    assert any(p.name.endswith(".index") for p in (tmp_path / "checkpoints").iterdir())


def test_trains_on_model_garden_records(train_files, tmp_path):
    from official.nlp.data import create_pretraining_data as mg
    from official.nlp.tools import tokenization

    records, vocab, _ = train_files
    corpus = os.path.join(os.path.dirname(records), "corpus.txt")
    tokenizer = tokenization.FullTokenizer(vocab_file=vocab, do_lower_case=True)
    instances = mg.create_training_instances([corpus], tokenizer,
                                             mg.get_processor_text_fn(False, True), T, 1, 0.1,
                                             0.15, P, random.Random(3))
    mg_file = str(tmp_path / "mg.tfrecord")
    mg.write_instance_to_example_files(instances, tokenizer, T, P, [mg_file], False, False)
    run = run_script("pretrain.py", f"--model_dir={tmp_path / 'run'}",
                     *common_args(train_files, train_data=mg_file, num_train_steps=3))
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "run" / "pretrained" / "model.weights.h5").exists()
    assert any(p.name.startswith("events.") for p in (tmp_path / "run" / "train").iterdir())


@pytest.mark.parametrize("case", ["no_match", "bad_features", "init_shapes", "bad_tpu",
                                  "tpu_name", "accum_uneven", "accum_per_replica",
                                  "steps_per_loop"])
def test_bad_input_one_error_line(train_files, tmp_path, case, minilm_dir):
    model_dir = tmp_path / "run"
    (model_dir / "checkpoints").mkdir(parents=True)
    (model_dir / "checkpoints" / "keep.txt").write_text("existing")
    overrides, expected = {}, ""
    if case == "no_match":
        overrides, expected = {"train_data": str(tmp_path / "none-*.tfrecord")}, "no input file matches"
    elif case == "bad_features":
        overrides = {"max_seq_length": 64}
        expected = "feature 'input_ids' has 32 values, expected 64 (check --max_seq_length)"
    elif case == "init_shapes":
        overrides = {"init_checkpoint": minilm_dir}
        expected = "hidden_size is 384 but the training config has 32"
    elif case == "bad_tpu":
        overrides, expected = {"tpu": "grpc://127.0.0.1:1"}, "cannot reach the TPU"
    elif case == "tpu_name":
        overrides, expected = {"tpu": "no-such-tpu-xyz"}, "--tpu=no-such-tpu-xyz"
    elif case == "accum_uneven":  # 8 examples cannot make 3 equal micro-batches
        overrides = {"grad_accum_steps": 3}
        expected = "gives 8 examples per replica, which --grad_accum_steps=3 does not divide"
    elif case == "steps_per_loop":
        overrides, expected = {"steps_per_loop": 0}, "--steps_per_loop=0: must be at least 1"
    else:  # 8 over 2 replicas is 4 each: fewer than 8 micro-batches
        overrides = {"grad_accum_steps": 8, "strategy": "mirrored", "num_cpu_devices": 2}
        expected = "gives 4 examples per replica, which --grad_accum_steps=8 does not divide"
    start = time.time()
    run = run_script("pretrain.py", f"--model_dir={model_dir}",
                     *common_args(train_files, **overrides), timeout=120)
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode == 1 and len(errors) == 1, run.stderr[-3000:]
    assert expected in errors[0], errors[0]
    assert "Traceback" not in run.stderr
    assert time.time() - start < 90
    assert sorted(p.name for p in (model_dir / "checkpoints").iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("form", ["bare_first", "bare_middle", "bare_last", "named", "address",
                                  "space_separated", "empty"])
def test_tpu_flag_forms(train_files, tmp_path, form):
    """`--tpu` as Cloud TPU VM users type it. Without a TPU each form ends at the probe of the
    TPU it means, with one error line naming it."""
    rest = [f"--model_dir={tmp_path}", *common_args(train_files)]
    argv, expected = {
        "bare_first": (["--tpu", *rest], "--tpu=local:"),
        "bare_middle": ([rest[0], "--tpu", *rest[1:]], "--tpu=local:"),
        "bare_last": ([*rest, "--tpu"], "--tpu=local:"),
        "named": ([*rest, "--tpu=no-such-tpu-xyz"], "--tpu=no-such-tpu-xyz:"),
        "address": ([*rest, "--tpu=grpc://127.0.0.1:1"], "cannot reach the TPU"),
        "space_separated": ([*rest, "--tpu", "my-tpu"],
                            "unexpected argument 'my-tpu' (a TPU name goes as --tpu=NAME)"),
        "empty": ([*rest, "--tpu="], "--tpu= is empty"),  # --tpu=$UNSET: not the CPU instead
    }[form]
    run = run_script("pretrain.py", *argv, timeout=120)
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode == 1 and len(errors) == 1, run.stderr[-3000:]
    assert expected in errors[0], errors[0]
    assert "Traceback" not in run.stderr


def test_help_lists_the_flags_and_explains_tpu():
    run = run_script("pretrain.py", "--help", timeout=120)
    text = " ".join(run.stdout.split())
    assert "a bare --tpu means this VM's TPU ('local')" in text
    for flag in ("--model_dir", "--train_data", "--mixed_precision", "--[no]nsp",
                 "--num_cpu_devices"):
        assert flag in text, flag


def test_output_is_clean(train_files, tmp_path):
    """What a user reads: no TensorFlow start-up lines, no absl INFO lines (functional_saver
    and the like) between the progress bar and the metrics."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, os.path.join(ROOT, "trainers", "pretrain.py"),
                          f"--model_dir={tmp_path}", *common_args(train_files),
                          f"--eval_data={train_files[0]}", "--eval_steps=2"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    noise = [line for line in (run.stdout + run.stderr).splitlines()
             if "oneDNN" in line or "cuInit" in line or "cpu_feature_guard" in line
             or "functional_saver" in line or line.startswith(("I1", "W1", "E1"))]
    assert noise == [], noise
    assert [line.split()[0] for line in run.stdout.splitlines()] == ["final"]


@pytest.mark.parametrize("source", ["records", "text"])
def test_mlm_only_pretraining(train_files, tmp_path, source):
    """--nonsp trains a BertMaskedLM: next_sentence_labels are not read (records) or not made
    (text: single segments), and the saved model loads as one."""
    import keras_bert_x as kbx

    overrides = {"nonsp": None}
    if source == "text":
        overrides.update(train_data="", train_text=os.path.join(os.path.dirname(train_files[0]),
                                                                "corpus.txt"))
    run = run_script("pretrain.py", f"--model_dir={tmp_path}",
                     *common_args(train_files, **overrides))
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert "nsp_loss" not in rows[0] and rows[-1]["mlm_loss"] < rows[0]["mlm_loss"]
    config = json.loads((tmp_path / "pretrained" / "config.json").read_text())
    assert config["keras_bert_x"]["class"] == "BertMaskedLM"
    assert kbx.BertMaskedLM.from_pretrained(tmp_path / "pretrained").vocabulary is not None


def test_init_from_a_masked_lm_checkpoint_warns_once(train_files, tmp_path):
    """A BertMaskedLM directory as --init_checkpoint of NSP pretraining: its MLM head is used,
    and one warning line says the next-sentence head starts fresh."""
    first = tmp_path / "mlm"
    assert run_script("pretrain.py", f"--model_dir={first}",
                      *common_args(train_files, nonsp=None, num_train_steps=2)).returncode == 0
    run = run_script("pretrain.py", f"--model_dir={tmp_path / 'both'}",
                     *common_args(train_files, init_checkpoint=first / "pretrained",
                                  num_train_steps=2))
    assert run.returncode == 0, run.stderr[-3000:]
    warnings = [line for line in run.stderr.splitlines() if "fresh" in line]
    assert len(warnings) == 1 and "next-sentence head (cls/seq_relationship)" in warnings[0]
