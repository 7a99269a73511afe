"""The demo's stage runner with stand-in stages: kept, redone, resumed, refused."""

import json
import os
import time

import pytest

from keras_bert_x.demo.pipeline import MARKER, Context, Stage, run_stages
from keras_bert_x.errors import BertInputError


def make_stages(calls, settings=None, fail=None, resumable=()):
    """Stages a -> b -> c (c reads a only); each records its call and writes a file. A failing
    stage first leaves a checkpoint file and spends 0.2 s."""
    settings = settings or {}

    def runner(name):
        def run(ctx, folder):
            calls.append(name)
            before = os.listdir(folder)
            if name == fail:
                open(os.path.join(folder, "ckpt"), "w").close()
                time.sleep(0.2)
                raise KeyboardInterrupt
            with open(os.path.join(folder, "out.txt"), "w") as f:
                f.write(name)
            return {"value": settings.get(name, 0), "found": sorted(before)}
        return run

    return [Stage("a", "A", runner("a"), {"s": settings.get("a", 0)}),
            Stage("b", "B", runner("b"), {"s": settings.get("b", 0)}, reads=("a",),
                  resumable="b" in resumable),
            Stage("c", "C", runner("c"), {"s": settings.get("c", 0)}, reads=("a",))]


def run(tmp_path, calls, fresh=False, said=None, **kwargs):
    ctx = Context(tmp_path / "out", None)
    say = said.append if said is not None else (lambda line: None)
    return run_stages(make_stages(calls, **kwargs), ctx, fresh=fresh, say=say)


def test_second_run_keeps_everything_and_fresh_redoes_it(tmp_path):
    calls = []
    run(tmp_path, calls)
    run(tmp_path, calls)
    assert calls == ["a", "b", "c"]
    run(tmp_path, calls, fresh=True)
    assert calls == ["a", "b", "c"] * 2
    assert sorted(os.listdir(tmp_path / "out")) == sorted([MARKER, "a", "b", "c"])


def test_a_change_redoes_the_stage_and_those_reading_it_only(tmp_path):
    calls = []
    run(tmp_path, calls)
    run(tmp_path, calls, settings={"b": 1})
    assert calls[3:] == ["b"]  # c reads a, not b: kept
    run(tmp_path, calls, settings={"b": 1, "a": 1})
    assert calls[4:] == ["a", "b", "c"]


def test_an_interrupt_keeps_finished_stages_and_the_next_run_resumes(tmp_path):
    calls = []
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, calls, fail="b", resumable=("b",))
    out = tmp_path / "out"
    assert (out / "a" / "result.json").is_file() and not (out / "b").exists()
    partial = json.loads((out / ".partial" / "b" / "result.json").read_text())
    assert partial["partial"] and partial["elapsed"] >= 0.2
    said = []
    results = run(tmp_path, calls, resumable=("b",), said=said)
    assert calls == ["a", "b", "b", "c"]  # a kept; b resumed in its own folder
    assert results["b"]["found"] == ["ckpt", "result.json"]
    assert results["b"]["seconds"] >= 0.2  # the interrupted attempt's time counts
    assert "[2/3] B: resuming ..." in said
    assert not (out / ".partial").exists()


def test_a_stage_that_is_not_resumable_starts_over(tmp_path):
    calls = []
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, calls, fail="b")
    results = run(tmp_path, calls)
    assert results["b"]["found"] == ["result.json"]  # its partial work was cleared


def test_an_interrupted_fresh_run_mixes_no_old_results(tmp_path):
    calls = []
    run(tmp_path, calls)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, calls, fresh=True, fail="b")
    assert not (tmp_path / "out" / "c").exists()  # the old c went with --fresh
    run(tmp_path, calls)
    assert calls[-2:] == ["b", "c"]


def test_a_folder_that_is_not_the_demos_is_refused_untouched(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a").mkdir()
    (tmp_path / "out" / "a" / "precious.py").write_text("mine")
    with pytest.raises(BertInputError, match="not a demo output folder"):
        run(tmp_path, [])
    assert os.listdir(tmp_path / "out" / "a") == ["precious.py"]
