"""export/serving/: the TF Serving config, docker-compose file and Kubernetes manifest parse,
agree with each other, and pin the server to the tensorflow-text release models are exported
with."""

import os

import tensorflow_text
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

SERVING = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "export", "serving")


def _minor(version):
    return tuple(version.split(".")[:2])


def test_models_config_parses_as_tf_serving_reads_it():
    with open(os.path.join(SERVING, "models.config")) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    entries = config.model_config_list.config
    assert [c.name for c in entries] == ["mr"]
    assert all(c.base_path == f"/models/{c.name}" for c in entries)


def test_images_are_pinned_to_the_tf_text_release_of_the_exports():
    with open(os.path.join(SERVING, "docker-compose.yml")) as f:
        compose = yaml.safe_load(f)
    with open(os.path.join(SERVING, "k8s.yaml")) as f:
        deployment = next(d for d in yaml.safe_load_all(f) if d["kind"] == "Deployment")
    service = compose["services"]["tf-serving"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for image in (service["image"], container["image"]):
        name, tag = image.split(":")
        assert name == "tensorflow/serving"
        assert _minor(tag) == _minor(tensorflow_text.__version__), image
    for args in (service["command"], container["args"]):
        assert "--model_config_file=/config/models.config" in args
        assert "--enable_model_warmup=true" in args
    assert {"8500:8500", "8501:8501"} == set(service["ports"])
