"""Helpers shared by tests: real sentences, reference-model runners, comparisons, commands."""

import os
import subprocess
import sys

import numpy as np

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A movie that is, by turns, funny and heartbreaking.",
    "BERT reads text in both directions at once.",
    "Hello!",
    "Stock markets fell sharply on Tuesday after the central bank raised interest rates "
    "for the third time this year, surprising analysts.",
    "Where is the nearest train station?",
    "naïve café owners in São Paulo serve açaí bowls",
    "I don't think that's right, do you?",
    "Tokenization splits unaffordable words into word pieces.",
    "The cat sat.",
]



def torch_outputs(hf_model, batch):
    """(sequence_output, pooled_output) of an HF BertModel on our input dict, as numpy."""
    import torch

    with torch.no_grad():
        out = hf_model(input_ids=torch.tensor(batch["input_word_ids"]).long(),
                       attention_mask=torch.tensor(batch["input_mask"]).long(),
                       token_type_ids=torch.tensor(batch["input_type_ids"]).long())
    return out.last_hidden_state.numpy(), out.pooler_output.numpy()


def keras_outputs(encoder, batch):
    out = encoder(batch)
    return np.asarray(out["sequence_output"]), np.asarray(out["pooled_output"])


def max_diff_on_tokens(a, b, mask):
    """Max |a - b| over real (unpadded) tokens of [B, T, H] arrays."""
    real = np.asarray(mask).astype(bool)
    return float(np.abs(np.asarray(a)[real] - np.asarray(b)[real]).max())


def random_batch(vocab_size, batch=3, seq_len=9, type_vocab_size=2, seed=0):
    """Random ids with a different amount of padding per row ([CLS]=first id is not special)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab_size, size=(batch, seq_len)).astype("int32")
    lengths = np.linspace(seq_len, max(2, seq_len // 2), batch).astype(int)
    mask = (np.arange(seq_len)[None, :] < lengths[:, None]).astype("int32")
    types = (rng.integers(0, type_vocab_size, size=(batch, seq_len)) * mask).astype("int32")
    return {"input_word_ids": ids * mask, "input_mask": mask, "input_type_ids": types}


def write_brown_subset(path, num_documents):
    """Writes the first `num_documents` of the bundled Brown corpus as plain text; returns path."""
    from keras_bert_x.data.corpus import bundled_documents, write_documents

    return write_documents(path, bundled_documents()[:num_documents])


def copy_dir(src, dst):
    """A flat copy of directory `src` (a model directory) at `dst`; returns dst."""
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def convert(*args):
    """`python -m keras_bert_x.convert ARGS` in a fresh process."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "keras_bert_x.convert", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env)


def error_lines(run):
    return [line for line in run.stderr.splitlines() if line.startswith("error:")]


def one_error_line(run):
    """The single `error: ...` line a command printed on bad input (and nothing else on
    stderr), checking it exited with 1."""
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    return lines[0]
