"""Same global batch, same seed: one device, MirroredStrategy (2 logical CPUs) and 2 workers on
localhost give the same per-step losses; gradient accumulation equals the large batch."""

import pytest

from tests.training.conftest import common_args, losses, run_script


@pytest.fixture(scope="module")
def single_device(train_files, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("single")
    run = run_script("pretrain.py", f"--model_dir={model_dir}", *common_args(train_files))
    assert run.returncode == 0, run.stderr[-3000:]
    return losses(model_dir)


def _assert_same(reference, other, tolerance=1e-5):
    assert sorted(reference) == sorted(other) == list(range(1, 7))
    worst = max(abs(reference[s] - other[s]) for s in reference)
    print(f"worst per-step loss difference {worst:.2e}")
    assert worst <= tolerance, (worst, reference, other)
    assert reference[6] < reference[1]  # and it does learn


def test_mirrored_two_cpus_matches_single_device(single_device, train_files, tmp_path):
    run = run_script("pretrain.py", f"--model_dir={tmp_path}", "--strategy=mirrored",
                     "--num_cpu_devices=2", *common_args(train_files))
    assert run.returncode == 0, run.stderr[-3000:]
    _assert_same(single_device, losses(tmp_path))


@pytest.mark.slow
def test_two_workers_on_localhost_match_single_device(single_device, train_files, tmp_path):
    run = run_script("launch_local.py", "--num_workers=2", "--timeout=500", "--",
                     f"--model_dir={tmp_path}", *common_args(train_files))
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    _assert_same(single_device, losses(tmp_path))


def test_gradient_accumulation_equals_large_batch(train_files, tmp_path):
    runs = {}
    for name, extra in (("big", []), ("accumulated", ["--grad_accum_steps=4"])):
        model_dir = tmp_path / name
        run = run_script("pretrain.py", f"--model_dir={model_dir}",
                         *common_args(train_files, train_batch_size=32), *extra)
        assert run.returncode == 0, run.stderr[-3000:]
        runs[name] = losses(model_dir)
    _assert_same(runs["big"], runs["accumulated"])


def test_missing_peer_fails_within_the_cluster_timeout(train_files, tmp_path):
    import json
    import os
    import subprocess
    import sys
    import time

    from tests.training.conftest import ROOT

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=json.dumps(
        {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
         "task": {"type": "worker", "index": 0}}))
    start = time.time()
    run = subprocess.run([sys.executable, os.path.join(ROOT, "trainers", "pretrain.py"),
                          f"--model_dir={tmp_path}", "--strategy=multi_worker",
                          "--cluster_timeout=10", *common_args(train_files)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode != 0
    assert "did not come up within 10s" in run.stderr
    assert time.time() - start < 60


@pytest.mark.parametrize("strategy", [
    [], ["--strategy=mirrored", "--num_cpu_devices=2"],
    pytest.param("two_workers", marks=pytest.mark.slow)])
def test_mixed_float16_trains_under_every_strategy(single_device, train_files, tmp_path,
                                                   strategy):
    """fp16 with dynamic loss scaling, as GPU users run it, on one device, two mirrored
    replicas and two workers: it trains, and its losses follow the fp32 run's."""
    args = [f"--model_dir={tmp_path}", "--mixed_precision=mixed_float16",
            *common_args(train_files)]
    if strategy == "two_workers":
        run = run_script("launch_local.py", "--num_workers=2", "--timeout=500", "--", *args)
    else:
        run = run_script("pretrain.py", *strategy, *args)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    _assert_same(single_device, losses(tmp_path), tolerance=1e-3)
