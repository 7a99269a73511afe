"""What every benchmark child shares: the model sizes, a fixed synthetic batch, the timer and
the FLOP count used for model FLOP utilisation (MFU)."""

import statistics
import time

import numpy as np

# bert_mini as the issue measures it, and bert_base (BERT paper) for the big-model row.
MODELS = {
    "bert_mini": dict(layers=4, hidden=256, heads=4, intermediate=1024),
    "bert_base": dict(layers=12, hidden=768, heads=12, intermediate=3072),
}
VOCAB, MAX_POSITIONS, TYPES = 30522, 512, 2
SEQ, PREDICTIONS = 128, 20
WARMUP = 3


def pretraining_batch(batch, seq=SEQ, predictions=PREDICTIONS, seed=0):
    """One fixed batch in our feature names: every token real, 20 masked positions, NSP labels."""
    rng = np.random.default_rng(seed)
    return {
        "input_word_ids": rng.integers(999, VOCAB, (batch, seq)).astype("int32"),
        "input_mask": np.ones((batch, seq), "int32"),
        "input_type_ids": (np.arange(seq) >= seq // 2).astype("int32")[None].repeat(batch, 0),
        "masked_lm_positions": np.sort(rng.choice(np.arange(1, seq), (batch, predictions)), -1)
        .astype("int32"),
        "masked_lm_ids": rng.integers(999, VOCAB, (batch, predictions)).astype("int32"),
        "masked_lm_weights": np.ones((batch, predictions), "float32"),
        "next_sentence_labels": rng.integers(0, 2, batch).astype("int32"),
        "example_weights": np.ones(batch, "float32"),
    }


def time_calls(fn, steps, steps_per_call=1):
    """Seconds per step: the median over `steps` timed calls of `fn` (each runs
    `steps_per_call` steps and returns only once their results exist), after warm-up calls."""
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) / steps_per_call)
    return {"median_s": statistics.median(times), "min_s": min(times),
            "p90_s": float(np.percentile(times, 90)), "steps": steps * steps_per_call}


def encoder_matmul_params(m):
    """Weights that multiply every token: Q, K, V, attention output, and the two FFN kernels."""
    return m["layers"] * (4 * m["hidden"] ** 2 + 2 * m["hidden"] * m["intermediate"])


def forward_flops(m, batch, seq=SEQ, predictions=None):
    """Multiply-adds ×2 of one forward pass: 2·N·tokens for the matmul weights, the two
    attention products (QKᵀ and PV: 2·2·B·T²·H per layer), and the pooler; with `predictions`,
    also the MLM head on the masked positions (its H×H transform and the tied H×V projection)
    and the NSP layer."""
    tokens = batch * seq
    flops = 2 * encoder_matmul_params(m) * tokens
    flops += 2 * 2 * batch * seq * seq * m["hidden"] * m["layers"]
    flops += 2 * batch * m["hidden"] ** 2  # pooler
    if predictions:
        flops += 2 * batch * predictions * (m["hidden"] ** 2 + m["hidden"] * VOCAB)
        flops += 2 * batch * m["hidden"] * 2
    return flops


def train_flops(m, batch, seq=SEQ, predictions=PREDICTIONS):
    """A training step is three forward passes' worth (forward, and two products per matmul in
    the backward pass): 6·N·tokens + 3·(attention + heads)."""
    return 3 * forward_flops(m, batch, seq, predictions)


def keras_hub_backbone(size):
    """keras-hub's BertBackbone of `size` (random weights)."""
    import keras_hub

    m = MODELS[size]
    return keras_hub.models.BertBackbone(
        vocabulary_size=VOCAB, num_layers=m["layers"], num_heads=m["heads"],
        hidden_dim=m["hidden"], intermediate_dim=m["intermediate"], max_sequence_length=512)


def model_garden_encoder(size):
    """Model Garden's BertEncoderV2 of `size` (random weights, tf_keras)."""
    from official.nlp.modeling import networks

    m = MODELS[size]
    return networks.BertEncoderV2(
        vocab_size=VOCAB, hidden_size=m["hidden"], num_layers=m["layers"],
        num_attention_heads=m["heads"], inner_dim=m["intermediate"], max_sequence_length=512,
        type_vocab_size=2)
