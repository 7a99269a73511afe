"""Stages that run once: each writes its outputs under `output_dir/<name>/` and appears there
whole (with `result.json`) only when it finished, so an interrupted demo resumes at the stage it
was in. A stage is redone when its settings, or any earlier stage, changed; `fresh` redoes all.
Stages that train keep their partial folder across an interrupt: training resumes from its
last checkpoint.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import time
from typing import Callable

RESULT_FILE = "result.json"
PARTIAL_DIR = ".partial"


@dataclasses.dataclass
class Stage:
    name: str
    title: str
    run: Callable          # run(ctx, folder) -> dict of results (JSON); writes into folder
    settings: dict         # what the stage's outputs depend on, besides earlier stages
    resumable: bool = False


class Context:
    """What stages share: the output folder, the flags' values, earlier stages' results."""

    def __init__(self, output_dir, options):
        self.output_dir = os.path.abspath(output_dir)
        self.options = options
        self.results = {}

    def path(self, stage, *parts):
        """A file of a finished stage."""
        return os.path.join(self.output_dir, stage, *parts)


def _key(stage, previous_key):
    text = json.dumps([stage.name, stage.settings, previous_key], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _load(folder):
    try:
        with open(os.path.join(folder, RESULT_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def run_stages(stages, ctx, fresh=False, say=print):
    """Runs (or takes from the cache) every stage in order; returns {name: result}."""
    os.makedirs(ctx.output_dir, exist_ok=True)
    key = None
    for number, stage in enumerate(stages, 1):
        key = _key(stage, key)
        final = os.path.join(ctx.output_dir, stage.name)
        partial = os.path.join(ctx.output_dir, PARTIAL_DIR, stage.name)
        label = f"[{number}/{len(stages)}] {stage.title}"
        done = None if fresh else _load(final)
        if done is not None and done.get("key") == key:
            say(f"{label}: done before ({done['seconds']:.0f} s then), kept")
            ctx.results[stage.name] = done
            continue
        if fresh or not stage.resumable:
            shutil.rmtree(partial, ignore_errors=True)
        else:  # a resumable stage resumes only the same settings' work
            saved = _load(partial) or {}
            if saved.get("key") not in (None, key):
                shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial, exist_ok=True)
        with open(os.path.join(partial, RESULT_FILE), "w", encoding="utf-8") as f:
            json.dump({"key": key, "partial": True}, f)
        say(f"{label} ...")
        start = time.time()
        result = stage.run(ctx, partial)
        result = {**result, "key": key, "seconds": round(time.time() - start, 1)}
        with open(os.path.join(partial, RESULT_FILE), "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        ctx.results[stage.name] = result
        say(f"{label}: {result['seconds']:.0f} s")
    shutil.rmtree(os.path.join(ctx.output_dir, PARTIAL_DIR), ignore_errors=True)
    return ctx.results
