"""TF Serving warm-up requests: `assets.extra/tf_serving_warmup_requests`.

TF Serving replays these `PredictionLog` records when it loads a version, before it takes
traffic, so the first user request does not pay for graph warm-up. At most 1000 records.
"""

import os

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from keras_bert_x.serving.client import predict_request

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000


def write_warmup(saved_model_dir, model_name, requests):
    """Writes [{input name: values}] as warm-up records of `saved_model_dir`."""
    if len(requests) > MAX_RECORDS:
        raise ValueError(f"{len(requests)} warm-up requests; TF Serving reads at most {MAX_RECORDS}")
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for inputs in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(
                    request=predict_request(model_name, inputs)))
            writer.write(log.SerializeToString())
    return path


def read_warmup(saved_model_dir):
    """The `PredictRequest`s of a SavedModel's warm-up file."""
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    requests = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests
