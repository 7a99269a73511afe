"""A client for TF Serving models exported by keras_bert_x, over REST (JSON) or gRPC.

    python -m keras_bert_x.serving.client --server localhost:8501 --model mr "a gripping film"
    python -m keras_bert_x.serving.client --server localhost:8500 --protocol grpc --model squad \\
        --field question="Who visited Paris?" --field context="Obama visited Paris in 2009."

>>> client = ServingClient("localhost:8501", "mr")          # doctest: +SKIP
>>> client.predict({"text": ["a gripping film"]})["label"]  # doctest: +SKIP
array(['positive'], dtype=object)

REST sends `tf.string` inputs as plain JSON strings (the columnar "inputs" form); gRPC sends a
`PredictRequest` through `PredictionService`. Both return {output name: numpy array}, strings
as Python `str`.
"""

import json
import sys
import urllib.error
import urllib.request

import numpy as np

REST_PORT, GRPC_PORT = 8501, 8500


def rest_url(server, model, version=None):
    version_part = f"/versions/{int(version)}" if version is not None else ""
    return f"http://{server}/v1/models/{model}{version_part}:predict"


def rest_body(inputs, signature_name="serving_default"):
    """The JSON body of a REST predict call for {input name: list of values}."""
    return {"signature_name": signature_name,
            "inputs": {name: [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
                       for name, values in inputs.items()}}


def parse_rest_response(body):
    """{output name: numpy array} of a REST predict response (columnar "outputs")."""
    outputs = body["outputs"]
    if not isinstance(outputs, dict):  # a model with a single output returns it bare
        outputs = {"output": outputs}
    return {name: _as_array(value) for name, value in outputs.items()}


def _as_array(value):
    array = np.asarray(value)
    return array.astype(object) if array.dtype.kind == "U" else array


def predict_request(model, inputs, signature_name="serving_default", version=None):
    """A gRPC `PredictRequest` for {input name: list of values (strings or numbers)}."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2

    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model, signature_name=signature_name))
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, values in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
    return request


def parse_tensors(tensor_map):
    """{name: numpy array} of a map of `TensorProto`s (a response's outputs, a request's
    inputs); strings decoded to `str`."""
    import tensorflow as tf

    arrays = {}
    for name, proto in tensor_map.items():
        array = tf.make_ndarray(proto)
        if array.dtype == object:
            array = np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array)
        arrays[name] = array
    return arrays


class ServingClient:
    """Predictions from a model on a TF Serving server (`server` is HOST:PORT)."""

    def __init__(self, server, model, protocol="rest", signature_name="serving_default",
                 version=None, timeout=30.0):
        if protocol not in ("rest", "grpc"):
            raise ValueError(f"protocol must be rest or grpc, got {protocol!r}")
        self.server, self.model, self.protocol = server, model, protocol
        self.signature_name, self.version, self.timeout = signature_name, version, timeout
        self._stub = None

    def predict(self, inputs):
        """{input name: list of values} -> {output name: numpy array}."""
        if self.protocol == "rest":
            return self._predict_rest(inputs)
        return self._predict_grpc(inputs)

    def _predict_rest(self, inputs):
        data = json.dumps(rest_body(inputs, self.signature_name)).encode("utf-8")
        request = urllib.request.Request(rest_url(self.server, self.model, self.version), data,
                                         {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return parse_rest_response(json.load(response))
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except ValueError:
                pass
            raise RuntimeError(f"{self.server}: HTTP {e.code}: {detail}") from None
        except urllib.error.URLError as e:
            raise RuntimeError(f"{self.server}: cannot reach the server ({e.reason})") from None

    def _predict_grpc(self, inputs):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        if self._stub is None:
            channel = grpc.insecure_channel(self.server)
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_request(self.model, inputs, self.signature_name, self.version)
        try:
            response = self._stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise RuntimeError(f"{self.server}: gRPC {e.code().name}: {e.details()}") from None
        return parse_tensors(response.outputs)


def _rows(outputs):
    """One dict per input row from {output name: array [B, ...]}."""
    batch = len(next(iter(outputs.values())))
    return [{name: np.asarray(array[i], dtype=array.dtype).tolist()
             for name, array in outputs.items()} for i in range(batch)]


def main(argv):
    from absl import flags

    FLAGS = flags.FLAGS
    inputs = {}
    for field in FLAGS.field or []:
        name, sep, value = field.partition("=")
        if not sep:
            print(f"error: --field {field!r} is not NAME=VALUE", file=sys.stderr)
            return 1
        inputs.setdefault(name, []).append(value)
    if len(argv) > 1:
        inputs.setdefault(FLAGS.input_name, []).extend(argv[1:])
    if not inputs:
        print("error: nothing to send: give texts, or --field NAME=VALUE", file=sys.stderr)
        return 1
    server = FLAGS.server or f"localhost:{REST_PORT if FLAGS.protocol == 'rest' else GRPC_PORT}"
    client = ServingClient(server, FLAGS.model, FLAGS.protocol, FLAGS.signature_name,
                           FLAGS.version, FLAGS.timeout)
    try:
        outputs = client.predict(inputs)
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for row in _rows(outputs):
        print(json.dumps(row, ensure_ascii=False))
    return 0


def _define_flags():
    from absl import flags

    flags.DEFINE_string("server", None, "HOST:PORT of TF Serving (default: localhost, port "
                        f"{REST_PORT} for REST, {GRPC_PORT} for gRPC).")
    flags.DEFINE_string("model", None, "Model name (its folder in the server's base path).")
    flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "REST JSON or gRPC.")
    flags.DEFINE_string("signature_name", "serving_default", "Signature to call.")
    flags.DEFINE_integer("version", None, "Model version (default: the server's latest).")
    flags.DEFINE_float("timeout", 30.0, "Seconds to wait for the answer.")
    flags.DEFINE_string("input_name", "text", "Input the positional texts go to.")
    flags.DEFINE_multi_string("field", None, "NAME=VALUE for another input (repeatable), e.g. "
                              "--field text_b=..., --field question=... --field context=...")
    flags.mark_flag_as_required("model")


if __name__ == "__main__":
    from absl import app

    from keras_bert_x import cli

    cli.quiet_tensorflow()
    _define_flags()
    app.run(main)
