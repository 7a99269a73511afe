"""Running a `.tflite` file from Python, inputs bound by name.

A TFLite model's `get_input_details()` lists inputs in the converter's order, which is not the
Keras order: feeding by position gives wrong answers with no error. `TFLiteModel` goes through
the signature runner, which takes inputs by name, and refuses a missing or unknown name. Models
with the tokenizer inside use tf-text's custom ops, registered here for every model.

Token-ids files take any sequence length (their signature is [1, -1]): each call runs at the
length of its inputs, the interpreter's tensors resized (and re-planned) only when that length
changes. Older files converted for one length refuse any other with a clear error.
"""

import numpy as np


class TFLiteModel:
    """>>> lite = TFLiteModel("model.tflite")                    # doctest: +SKIP
    >>> lite(input_word_ids=ids, input_mask=mask, input_type_ids=types)["logits"]  # doctest: +SKIP
    """

    def __init__(self, path=None, content=None, num_threads=None):
        import tensorflow_text
        from ai_edge_litert.interpreter import InterpreterWithCustomOps

        from keras_bert_x.io_utils import native_logs_held

        with native_logs_held():  # "INFO: Created TensorFlow Lite XNNPACK delegate ..."
            self.interpreter = InterpreterWithCustomOps(
                model_path=path, model_content=content, num_threads=num_threads,
                custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS)
            self.interpreter.allocate_tensors()
        signatures = self.interpreter.get_signature_list()
        self.signature_name = "serving_default" if "serving_default" in signatures \
            else next(iter(signatures))
        self.runner = self.interpreter.get_signature_runner(self.signature_name)
        self.input_details = self.runner.get_input_details()
        self.input_names = tuple(sorted(self.input_details))
        self.output_names = tuple(sorted(self.runner.get_output_details()))
        # Per input, its dims with -1 where any size goes (shape_signature; `shape` says 1).
        self.signatures = {n: tuple(int(x) for x in d["shape_signature"])
                           for n, d in self.input_details.items()}

    @property
    def seq_length(self):
        """The token count a token-ids file was converted for; None if it takes any length
        (and for text-input files)."""
        shape = self.signatures.get("input_word_ids")
        return None if shape is None or shape[-1] == -1 else shape[-1]

    @property
    def batch_size(self):
        """Rows per call the model was converted for (1 for our exports)."""
        shape = next(iter(self.input_details.values()))["shape"]
        return int(shape[0]) if len(shape) else 1

    def __call__(self, **inputs):
        """{output name: array} for inputs given by name (arrays of the model's shapes)."""
        missing = sorted(set(self.input_names) - set(inputs))
        unknown = sorted(set(inputs) - set(self.input_names))
        if missing or unknown:
            raise ValueError(f"inputs {sorted(inputs)} do not match the model's "
                             f"{list(self.input_names)}")
        feed = {}
        for name, value in inputs.items():
            dtype = self.input_details[name]["dtype"]
            feed[name] = np.asarray(value, dtype=object if dtype in (np.bytes_, np.object_)
                                    else dtype)
            expected, shape = self.signatures[name], feed[name].shape
            # A fixed dim given another size would be resized anyway and fail deep in XNNPACK
            # ("failed to reshape runtime") or compute on wrong shapes: refuse it here.
            if len(shape) != len(expected) or any(e not in (-1, n)
                                                   for e, n in zip(expected, shape)):
                raise ValueError(f"{name}: shape {list(shape)}, the model takes "
                                 f"{[e if e >= 0 else None for e in expected]}")
        # The signature runner resizes each input to its array's shape and re-allocates;
        # both are no-ops when the shapes are those of the previous call.
        return self.runner(**feed)

    def predict(self, inputs):
        """Row by row over arrays [N, ...] given by name: {output name: array [N, ...]}."""
        rows = len(next(iter(inputs.values())))
        outputs = [self(**{k: np.asarray(v)[i:i + 1] for k, v in inputs.items()})
                   for i in range(rows)]
        if not outputs:
            return {}
        return {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
