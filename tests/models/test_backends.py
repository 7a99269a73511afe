"""The same weights give the same outputs under Keras's torch backend as under TensorFlow."""

import os
import subprocess
import sys
import textwrap

import numpy as np

import keras_bert_x as kbx
from tests.helpers import keras_outputs, max_diff_on_tokens, random_batch

# Runs in a fresh interpreter: Keras fixes its backend at import.
_TORCH_SIDE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    assert keras.backend.backend() == "torch", keras.backend.backend()
    import keras_bert_x as kbx
    work = sys.argv[1]
    config = kbx.BertConfig.from_json_file(work + "/config.json")
    enc = kbx.BertEncoder(config)
    enc.load_weights(work + "/enc.weights.h5")
    batch = dict(np.load(work + "/batch.npz"))
    out = enc(batch)
    np.savez(work + "/torch_out.npz",
             seq=keras.ops.convert_to_numpy(out["sequence_output"]),
             pooled=keras.ops.convert_to_numpy(out["pooled_output"]))
""")


def test_torch_backend_matches_tensorflow(tmp_path):
    config = kbx.BertConfig(vocab_size=150, hidden_size=48, num_hidden_layers=3,
                            num_attention_heads=3, intermediate_size=96,
                            max_position_embeddings=24, hidden_act="gelu")
    enc = kbx.BertEncoder(config)
    batch = random_batch(150, batch=4, seq_len=13)
    enc.save_weights(str(tmp_path / "enc.weights.h5"))
    config.to_json_file(tmp_path / "config.json")
    np.savez(tmp_path / "batch.npz", **batch)

    env = dict(os.environ, KERAS_BACKEND="torch")
    run = subprocess.run([sys.executable, "-c", _TORCH_SIDE, str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    theirs = np.load(tmp_path / "torch_out.npz")
    seq, pooled = keras_outputs(enc, batch)
    seq_diff = max_diff_on_tokens(theirs["seq"], seq, batch["input_mask"])
    pooled_diff = float(np.abs(theirs["pooled"] - pooled).max())
    print(f"KERAS_BACKEND=torch vs tensorflow: sequence {seq_diff:.2e}, pooled {pooled_diff:.2e}")
    assert seq_diff <= 1e-5
    assert pooled_diff <= 1e-5
