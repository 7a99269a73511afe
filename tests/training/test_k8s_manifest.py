"""trainers/k8s/tfjob.yaml: a Kubeflow TFJob whose command is a valid pretrain.py command line."""

import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_tfjob_runs_multi_worker_pretraining_on_shared_storage():
    with open(os.path.join(ROOT, "trainers", "k8s", "tfjob.yaml")) as f:
        job = yaml.safe_load(f)
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "TFJob")
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["replicas"] >= 2
    pod = worker["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "tensorflow")
    command = container["command"]
    assert command[:2] == ["python", "trainers/pretrain.py"]
    assert "--strategy=multi_worker" in command
    # Every flag is one pretrain.py defines (its --helpfull lists them).
    run = subprocess.run([sys.executable, os.path.join(ROOT, "trainers", "pretrain.py"),
                          "--helpfull"], capture_output=True, text=True, timeout=300)
    defined = set(re.findall(r"--(?:\[no\])?(\w+):", run.stdout))
    names = [a.split("=")[0][2:] for a in command[2:]]
    unknown = [n for n in names if n not in defined and n.removeprefix("no") not in defined]
    assert len(defined) > 20 and unknown == []
    # --model_dir and the data sit on the volume every worker mounts.
    mount = container["volumeMounts"][0]["mountPath"]
    for flag in ("--model_dir=", "--train_data=", "--vocab_file="):
        value = next(a for a in command if a.startswith(flag))[len(flag):]
        assert value.startswith(mount + "/"), value
    assert pod["volumes"][0]["name"] == container["volumeMounts"][0]["name"]


def test_dockerfile_puts_the_trainers_where_the_job_runs_them():
    with open(os.path.join(ROOT, "trainers", "k8s", "tfjob.yaml")) as f:
        job = yaml.safe_load(f)
    container = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    with open(os.path.join(ROOT, "trainers", "k8s", "Dockerfile")) as f:
        lines = [line.split() for line in f if line.strip() and not line.startswith("#")]
    assert ["WORKDIR", container["workingDir"]] in lines
    assert ["COPY", "trainers", "./trainers"] in lines
    assert lines[-2][:3] == ["RUN", "pip", "install"]
