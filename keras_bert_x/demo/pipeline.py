"""Stages that run once: each writes its outputs under `output_dir/<name>/` and appears there
whole (with `result.json`) only when it finished, so an interrupted demo resumes at the stage it
was in. A stage is redone when its settings, the package's version, or a stage it reads
changed; `fresh` redoes all. Stages that train keep their partial folder across an interrupt:
training resumes from its last checkpoint.

The output folder is the demo's own: a marker file says so, and a non-empty folder without it
is refused (a stage folder is deleted before it is replaced).
"""

import dataclasses
import hashlib
import json
import os
import shutil
import time
from typing import Callable

from keras_bert_x.errors import BertInputError

RESULT_FILE = "result.json"
PARTIAL_DIR = ".partial"
MARKER = ".keras_bert_x_demo"


@dataclasses.dataclass
class Stage:
    name: str
    title: str
    run: Callable          # run(ctx, folder) -> dict of results (JSON); writes into folder
    settings: dict         # what the stage's outputs depend on, besides `reads`
    reads: tuple = ()      # earlier stages whose outputs it uses
    resumable: bool = False


class Context:
    """What stages share: the output folder, the flags' values, earlier stages' results, and
    the stage now running (for messages)."""

    def __init__(self, output_dir, options):
        self.output_dir = os.path.abspath(output_dir)
        self.options = options
        self.results = {}
        self.running = None

    def path(self, stage, *parts):
        """A file of a finished stage."""
        return os.path.join(self.output_dir, stage, *parts)


def _load(folder):
    try:
        with open(os.path.join(folder, RESULT_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write(folder, data):
    path = os.path.join(folder, RESULT_FILE)
    with open(path + ".partial", "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(path + ".partial", path)


def _remove(folder):
    """Deletes a stage folder, its result first: a half-deleted folder never looks finished."""
    if os.path.exists(os.path.join(folder, RESULT_FILE)):
        os.remove(os.path.join(folder, RESULT_FILE))
    shutil.rmtree(folder, ignore_errors=True)


def claim_output_dir(path, stage_names):
    """Makes `path` the demo's (new or empty), or checks it already is."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise BertInputError(f"{path}: exists and is not a directory")
    if os.path.isdir(path) and os.listdir(path) and \
            not os.path.isfile(os.path.join(path, MARKER)):
        raise BertInputError(f"{path}: not empty and not a demo output folder; choose another "
                             "--output_dir (nothing there is touched)")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, MARKER), "w", encoding="utf-8") as f:
        f.write("Written by python -m keras_bert_x.demo; its stages: "
                f"{', '.join(stage_names)}\n")


def run_stages(stages, ctx, fresh=False, say=print, version=""):
    """Runs (or keeps from an earlier run) every stage in order; returns {name: result}."""
    claim_output_dir(ctx.output_dir, [s.name for s in stages])
    if fresh:  # all at once, before anything runs: an interrupted --fresh run mixes nothing
        for stage in stages:
            _remove(os.path.join(ctx.output_dir, stage.name))
        shutil.rmtree(os.path.join(ctx.output_dir, PARTIAL_DIR), ignore_errors=True)
        report = os.path.join(ctx.output_dir, "report.md")  # published from them
        if os.path.exists(report):
            os.remove(report)
    keys = {}
    for number, stage in enumerate(stages, 1):
        keys[stage.name] = key = hashlib.sha256(json.dumps(
            [stage.name, stage.settings, version, [keys[r] for r in stage.reads]],
            sort_keys=True).encode()).hexdigest()[:16]
        final = os.path.join(ctx.output_dir, stage.name)
        partial = os.path.join(ctx.output_dir, PARTIAL_DIR, stage.name)
        label = f"[{number}/{len(stages)}] {stage.title}"
        done = _load(final)
        if done is not None and done.get("key") == key and not done.get("partial"):
            say(f"{label}: done before ({done['seconds']:.0f} s then), kept")
            ctx.results[stage.name] = done
            continue
        started = _load(partial) or {}
        if not stage.resumable or started.get("key") != key:
            _remove(partial)
            started = {}
        os.makedirs(partial, exist_ok=True)
        elapsed = started.get("elapsed", 0.0)  # time spent in earlier, interrupted attempts
        _write(partial, {"key": key, "partial": True, "elapsed": elapsed})
        say(f"{label} ..." if not started else f"{label}: resuming ...")
        ctx.running = (stage.name, partial)
        start = time.time()
        try:
            result = stage.run(ctx, partial)
        finally:
            if os.path.isdir(partial):
                _write(partial, {"key": key, "partial": True,
                                 "elapsed": elapsed + time.time() - start})
        result = {**result, "key": key, "seconds": round(elapsed + time.time() - start, 1)}
        _write(partial, result)
        # The old folder goes aside first: until the new one is in place, one of them is whole.
        old = final + ".old"
        _remove(old)
        if os.path.exists(final):
            os.replace(final, old)
        os.replace(partial, final)
        _remove(old)
        ctx.results[stage.name] = result
        ctx.running = None
        say(f"{label}: {result['seconds']:.0f} s")
    shutil.rmtree(os.path.join(ctx.output_dir, PARTIAL_DIR), ignore_errors=True)
    return ctx.results
