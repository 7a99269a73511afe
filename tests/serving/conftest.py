"""Stand-in servers speaking TF Serving's REST and gRPC predict protocols over the exported
SavedModels, loaded as TF Serving loads them. No `tensorflow_model_server` binary can be
installed on this machine (it is on neither PyPI nor Debian); `test_client.py` also runs the
real one when it is on PATH."""

import http.server
import json
import re
import threading
from concurrent import futures

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.export.conftest import exports, model_dirs  # noqa: F401  (fixtures)


def run_signature(saved_models, name, signature_name, inputs):
    signature = saved_models[name].signatures[signature_name or "serving_default"]
    out = signature(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


class _Predictions(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, saved_models):
        self.saved_models = saved_models

    def Predict(self, request, context):
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        out = run_signature(self.saved_models, request.model_spec.name,
                            request.model_spec.signature_name, inputs)
        response = predict_pb2.PredictResponse()
        for k, v in out.items():
            response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
        return response


def _rest_handler(saved_models):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            match = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/\d+)?:predict", self.path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not match or match.group(1) not in saved_models:
                return self._send(404, {"error": f"Servable not found for request: {self.path}"})
            out = run_signature(saved_models, match.group(1), body.get("signature_name"),
                                body["inputs"])
            self._send(200, {"outputs": {k: _json_value(v) for k, v in out.items()}})

        def _send(self, status, payload):
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler


def _json_value(array):
    if array.dtype == object:
        return tf.nest.map_structure(lambda b: b.decode("utf-8"), array.tolist())
    return array.tolist()


@pytest.fixture(scope="session")
def servers(exports):  # noqa: F811
    """(REST address, gRPC address) of stand-in servers for every export, by kind name."""
    saved_models = {kind: tf.saved_model.load(path) for kind, path in exports.items()}
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        _Predictions(saved_models), grpc_server)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    rest_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(saved_models))
    threading.Thread(target=rest_server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{rest_server.server_address[1]}", f"127.0.0.1:{grpc_port}", saved_models
    rest_server.shutdown()
    grpc_server.stop(0)
