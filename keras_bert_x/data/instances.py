"""Turning tokenized documents into BERT pretraining instances: NSP pairs and MLM masks.

The algorithm is google-research/bert's `create_pretraining_data.py` (also Model Garden's),
on token ids instead of token strings: segments are built from whole sentences up to a target
length (shorter with probability `short_seq_prob`), B is the true continuation or, half the time,
a span of another document, and 15% of tokens (at most `max_predictions_per_seq`) are chosen
for prediction: 80% become [MASK], 10% stay, 10% become a random token. Two differences:
random replacements are drawn from ordinary tokens only, never [PAD]/[CLS]/[SEP]/[MASK]/[UNK]/
[unusedN]; and a one-sentence chunk is not forced to be a random-next pair (Google's script does
that, which gives ~54% random-next labels on Brown): when the coin says "actual next", the
following sentence becomes B (for a document's lone last sentence, its second part).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class MaskingConfig:
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    do_whole_word_mask: bool = False


@dataclasses.dataclass
class Instance:
    input_ids: np.ndarray          # int64 [T] (unpadded: [CLS] a [SEP] b [SEP])
    segment_ids: np.ndarray        # int64 [T]
    masked_lm_positions: np.ndarray
    masked_lm_ids: np.ndarray
    is_random_next: bool


class Vocab:
    """What masking needs to know about the vocabulary, as arrays indexed by token id."""

    def __init__(self, tokens):
        ids = {t: i for i, t in enumerate(tokens)}
        self.cls_id, self.sep_id, self.mask_id = ids["[CLS]"], ids["[SEP]"], ids["[MASK]"]
        self.is_suffix = np.array([t.startswith("##") for t in tokens])
        special = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
        self.random_ids = np.array(
            [i for i, t in enumerate(tokens)
             if t not in special and not (t.startswith("[unused") and t.endswith("]"))],
            np.int64)


def truncate_pair(tokens_a, tokens_b, max_num_tokens, rng):
    """Trims the longer list, from the front or the back at random, until both fit."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def _choose_whole_words(candidate, ids, budget, vocab, np_rng):
    """[N, T] bool of positions to predict when whole words are masked together.

    A word is a candidate piece that is not "##", plus the "##" pieces right after it. Words are
    taken in random order, each unless it would overrun its row's budget (as Google's script
    does); the loop runs over word ranks and is vectorized over rows. Also returns, per position,
    the draw of its word, so that a word is masked, kept or randomized as a whole.
    """
    n, t = ids.shape
    previous_candidate = np.zeros_like(candidate)
    previous_candidate[:, 1:] = candidate[:, :-1]
    begins = candidate & (~vocab.is_suffix[ids] | ~previous_candidate)
    word_of = np.where(candidate, np.cumsum(begins, axis=1) - 1, -1)  # [N, T]
    max_words = max(int(begins.sum(axis=1).max()), 1)
    rows = np.broadcast_to(np.arange(n)[:, None], (n, t))
    word_len = np.zeros((n, max_words), np.int64)
    np.add.at(word_len, (rows[candidate], word_of[candidate]), 1)
    keys = np.where(word_len > 0, np_rng.random((n, max_words)), 2.0)
    order = np.argsort(keys, axis=1)
    ranked_len = np.take_along_axis(word_len, order, axis=1)
    count = np.zeros(n, np.int64)
    taken_ranked = np.zeros((n, max_words), bool)
    for rank in range(max_words):
        fits = (ranked_len[:, rank] > 0) & (count + ranked_len[:, rank] <= budget)
        taken_ranked[:, rank] = fits
        count += np.where(fits, ranked_len[:, rank], 0)
        if not (count < budget).any():
            break
    taken = np.zeros_like(taken_ranked)
    np.put_along_axis(taken, order, taken_ranked, axis=1)
    word_draw = np_rng.random((n, max_words))
    safe_word = np.maximum(word_of, 0)
    chosen = candidate & np.take_along_axis(taken, safe_word, axis=1)
    return chosen, np.take_along_axis(word_draw, safe_word, axis=1)


def mask_batch(sequences, config, vocab, np_rng):
    """Masks many sequences at once; returns [(masked ids, sorted positions, original ids)].

    As in Google's script: round(15% of the sequence) positions, at most
    max_predictions_per_seq, never [CLS]/[SEP]; each chosen token (or whole word) is 80% [MASK],
    10% unchanged, 10% a random token. Vectorized over the batch: per-sequence numpy calls
    cost more than the arithmetic they do.
    """
    lengths = np.array([len(s) for s in sequences])
    n, t = len(sequences), int(lengths.max())
    ids = np.zeros((n, t), np.int64)
    valid = np.arange(t)[None, :] < lengths[:, None]
    ids[valid] = np.concatenate(sequences)
    candidate = valid & (ids != vocab.cls_id) & (ids != vocab.sep_id)
    budget = np.minimum(np.minimum(config.max_predictions_per_seq,
                                   np.maximum(1, np.round(lengths * config.masked_lm_prob))),
                        candidate.sum(axis=1)).astype(np.int64)
    if config.do_whole_word_mask:
        chosen, draws = _choose_whole_words(candidate, ids, budget, vocab, np_rng)
    else:
        keys = np.where(candidate, np_rng.random((n, t)), 2.0)
        rank = np.argsort(np.argsort(keys, axis=1), axis=1)
        chosen = rank < budget[:, None]
        draws = np_rng.random((n, t))
    masked = ids.copy()
    masked[chosen & (draws < 0.8)] = vocab.mask_id
    randomize = chosen & (draws >= 0.9)
    masked[randomize] = vocab.random_ids[np_rng.integers(0, len(vocab.random_ids),
                                                         int(randomize.sum()))]
    results = []
    for row in range(n):
        positions = np.flatnonzero(chosen[row])
        results.append((masked[row, :lengths[row]], positions, ids[row, positions]))
    return results


def pairs_from_document(documents, index, config, vocab, rng):
    """Yields (ids, segment_ids, is_random_next) NSP pairs of `documents[index]`, unmasked.

    `documents` is a list of documents, each a list of sentences, each a list of token ids.
    """
    document = documents[index]
    max_num_tokens = config.max_seq_length - 3
    target = max_num_tokens
    if rng.random() < config.short_seq_prob:
        target = rng.randint(2, max_num_tokens)
    chunk, length, i = [], 0, 0
    while i < len(document):
        chunk.append(document[i])
        length += len(document[i])
        if i == len(document) - 1 or length >= target:
            is_random_next = rng.random() < 0.5
            if not is_random_next and len(chunk) == 1:
                # Google's script makes every one-sentence chunk a random-next pair, which
                # skews NSP labels towards 1; we take the next sentence as B when there is one.
                if i + 1 < len(document):
                    i += 1
                    chunk.append(document[i])
                elif len(chunk[0]) >= 2:  # a document's last sentence: split it in two
                    cut = rng.randint(1, len(chunk[0]) - 1)
                    chunk = [chunk[0][:cut], chunk[0][cut:]]
                else:
                    is_random_next = True
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            tokens_a = [t for s in chunk[:a_end] for t in s]
            tokens_b = []
            if is_random_next:
                for _ in range(10):  # a different document, unless there is only one
                    other = rng.randint(0, len(documents) - 1)
                    if other != index:
                        break
                random_document = documents[other]
                for sentence in random_document[rng.randint(0, len(random_document) - 1):]:
                    tokens_b.extend(sentence)
                    if len(tokens_b) >= target - len(tokens_a):
                        break
                i -= len(chunk) - a_end  # the unused sentences start the next chunk
            else:
                tokens_b = [t for s in chunk[a_end:] for t in s]
            truncate_pair(tokens_a, tokens_b, max_num_tokens, rng)
            if tokens_a and tokens_b:
                ids = np.array([vocab.cls_id, *tokens_a, vocab.sep_id, *tokens_b, vocab.sep_id],
                               np.int64)
                segments = np.zeros(len(ids), np.int64)
                segments[len(tokens_a) + 2:] = 1
                yield ids, segments, is_random_next
            chunk, length = [], 0
        i += 1


def segments_from_document(documents, index, config, vocab, rng):
    """Yields (ids, segment_ids, False) single-segment sequences of `documents[index]`, unmasked:
    RoBERTa's DOC-SENTENCES input for MLM-only pretraining (no NSP pairs, no second segment).

    Consecutive sentences fill `[CLS] ... [SEP]` until a target length is reached (the longest
    that fits, or with probability `short_seq_prob` a shorter one, drawn anew for each
    sequence); what does not fit continues in the next sequence, so no text is dropped.
    """
    max_num_tokens = config.max_seq_length - 2

    def draw_target():
        if rng.random() < config.short_seq_prob:
            return rng.randint(2, max_num_tokens)
        return max_num_tokens

    target, tokens = draw_target(), []
    sentences = documents[index]
    for i, sentence in enumerate(sentences):
        tokens.extend(sentence)
        last = i == len(sentences) - 1
        while tokens and (len(tokens) >= target or last):
            ids = np.array([vocab.cls_id, *tokens[:target], vocab.sep_id], np.int64)
            yield ids, np.zeros(len(ids), np.int64), False
            tokens, target = tokens[target:], draw_target()


def instances_from_documents(documents, indices, config, vocab, rng, np_rng):
    """Masked instances of `documents[i]` for i in `indices`: `rng` (random.Random) drives the
    pairing, `np_rng` (numpy Generator) the masking, done for all pairs at once."""
    pairs = [p for i in indices for p in pairs_from_document(documents, i, config, vocab, rng)]
    if not pairs:
        return []
    masked = mask_batch([p[0] for p in pairs], config, vocab, np_rng)
    return [Instance(ids, segments, positions, labels, is_random_next)
            for (_, segments, is_random_next), (ids, positions, labels) in zip(pairs, masked)]
