"""`keras_bert_x.serving.client` over REST and gRPC gives what the SavedModel computes."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_bert_x.serving.client import ServingClient, parse_tensors, predict_request, rest_body
from tests.serving.conftest import run_signature

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEXTS = ["A gripping, beautifully acted film.", "Dull.", "naïve 東京", ""]


def test_grpc_request_and_rest_body_feed_the_signature_alike(servers):
    _, _, saved_models = servers
    inputs = {"question": ["Who visited Paris?"], "context": ["Obama visited Paris in 2009."]}
    from_grpc = run_signature(saved_models, "span_qa", "serving_default",
                              parse_tensors(predict_request("span_qa", inputs).inputs))
    body = json.loads(json.dumps(rest_body(inputs)))  # what goes over the wire
    assert body["inputs"] == inputs  # plain JSON strings for tf.string inputs
    from_rest = run_signature(saved_models, "span_qa", body["signature_name"], body["inputs"])
    for name in from_grpc:
        assert from_grpc[name].tolist() == from_rest[name].tolist(), name


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
@pytest.mark.parametrize("kind", ["classifier", "token_classifier", "span_qa", "encoder"])
def test_client_predicts_over_each_protocol(servers, protocol, kind):
    rest, grpc_address, saved_models = servers
    inputs = ({"question": TEXTS, "context": TEXTS[::-1]} if kind == "span_qa"
              else {"text": TEXTS})
    client = ServingClient(rest if protocol == "rest" else grpc_address, kind, protocol)
    out = client.predict(inputs)
    expected = run_signature(saved_models, kind, "serving_default", inputs)
    for name, value in expected.items():
        got = out[name]
        if value.dtype == object:
            assert got.tolist() == [[x.decode() for x in row] if isinstance(row, list)
                                    else row.decode() for row in value.tolist()], name
        else:
            np.testing.assert_allclose(got, value, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_client_command_line_prints_one_json_line_per_text(servers, protocol):
    rest, grpc_address, _ = servers
    run = subprocess.run(
        [sys.executable, "-m", "keras_bert_x.serving.client", "--model", "classifier",
         "--server", rest if protocol == "rest" else grpc_address, "--protocol", protocol,
         "a gripping film", "dull"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(rows) == 2 and {r["label"] for r in rows} <= {"negative", "positive"}
    assert all(abs(sum(r["probabilities"]) - 1) < 1e-5 for r in rows)


def test_client_command_line_reports_an_unknown_model_and_a_dead_server(servers):
    rest, _, _ = servers
    for server, model, message in ((rest, "nope", "HTTP 404"),
                                   ("127.0.0.1:9", "classifier", "Connection refused")):
        run = subprocess.run([sys.executable, "-m", "keras_bert_x.serving.client", "--model",
                              model, "--server", server, "--timeout", "5", "text"],
                             capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert run.returncode == 1
        assert run.stderr.strip().startswith("error: ") and len(run.stderr.strip().splitlines()) == 1
        assert message in run.stderr, run.stderr


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_tensorflow_model_server_when_installed(exports):
    binary = shutil.which("tensorflow_model_server")
    if binary is None:
        pytest.skip("no tensorflow_model_server on PATH (not installable here: not on PyPI or "
                    "Debian); the stand-in servers and the fresh-process test are the contract")
    grpc_port, rest_port = _free_port(), _free_port()
    base = os.path.dirname(exports["classifier"])
    server = subprocess.Popen([binary, f"--port={grpc_port}", f"--rest_api_port={rest_port}",
                               "--model_name=classifier", f"--model_base_path={base}"])
    try:
        for protocol, port in (("rest", rest_port), ("grpc", grpc_port)):
            client = ServingClient(f"127.0.0.1:{port}", "classifier", protocol, timeout=10)
            for _ in range(60):
                try:
                    out = client.predict({"text": TEXTS})
                    break
                except (RuntimeError, OSError):
                    time.sleep(1)
            else:
                pytest.fail(f"tensorflow_model_server did not answer over {protocol}")
            assert out["label"].tolist()[0] in ("negative", "positive")
    finally:
        server.terminate()
        server.wait(timeout=30)
