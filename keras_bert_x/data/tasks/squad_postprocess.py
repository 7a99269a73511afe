"""From start/end logits of SQuAD windows to answer text and character offsets.

For each question, every window proposes its `n_best` highest start and end logits; a span is
valid if both ends fall in the context, the window gives its start the most context, end >=
start and it is at most `max_answer_length` pieces long, and it scores start + end logit. The
best span's words are cut back to the answer's own characters (punctuation a word carries
beyond the predicted pieces is dropped, as Google's `get_final_text` does). SQuAD v2.0: the
null answer scores the [CLS] logits of the window where they are lowest, and wins when it
beats the best span by more than `null_threshold`.
"""

import collections
import unicodedata

import numpy as np


def _is_punctuation(c):
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def _normalized_chars(text, lower_case):
    """(normalised characters without spaces, the index in `text` each comes from): BERT's
    text normalisation (lower-case, accents stripped) one character at a time, so that a
    predicted answer can be found back in the original text."""
    chars, origin = [], []
    for i, c in enumerate(text):
        if is_space(c):
            continue
        piece = c
        if lower_case:
            piece = "".join(x for x in unicodedata.normalize("NFD", c.lower())
                            if unicodedata.category(x) != "Mn")
        for x in piece:
            chars.append(x)
            origin.append(i)
    return "".join(chars), origin


def is_space(c):
    return c.isspace() or unicodedata.category(c) == "Zs"


def final_span(predicted, original, lower_case=True):
    """(start, end) characters of `original` (the predicted words, as written) that the
    predicted pieces' text `predicted` covers; the whole of `original` if it cannot be told."""
    target, _ = _normalized_chars(predicted, lower_case)
    chars, origin = _normalized_chars(original, lower_case)
    at = chars.find(target) if target else -1
    if at < 0:
        return 0, len(original)
    return origin[at], origin[at + len(target) - 1] + 1


def _pieces_text(pieces, vocabulary):
    text = " ".join(vocabulary[p] for p in pieces).replace(" ##", "").replace("##", "")
    return " ".join(text.split())


def squad_predictions(data, features, start_logits, end_logits, vocabulary, n_best=20,
                      max_answer_length=30, null_threshold=0.0, lower_case=True):
    """{question id: answer text} and {question id: [n-best {text, start, end, score}]}.

    `start_logits`/`end_logits` are [windows, T] in the order of `features`; `start` and `end`
    are character offsets into the question's context (end exclusive).
    """
    by_example = collections.defaultdict(list)
    for window, example in enumerate(features.example_index):
        by_example[int(example)].append(window)
    ids = features.arrays["input_word_ids"]
    mask = features.arrays["input_mask"]
    answers, nbest_json = {}, {}
    for e, example in enumerate(data.examples):
        candidates, null_score = [], None
        for window in by_example.get(e, []):
            # Padding is never a candidate: the answers do not depend on how far a window
            # was padded (a length bucket or max_seq_length).
            real = mask[window][:len(start_logits[window])] > 0
            starts = np.where(real, start_logits[window][:len(real)], -np.inf)
            ends = np.where(real, end_logits[window][:len(real)], -np.inf)
            score_null = float(starts[0] + ends[0])
            null_score = score_null if null_score is None else min(null_score, score_null)
            to_word, context = features.token_to_word[window], features.max_context[window]
            for s in np.argsort(-starts)[:n_best]:
                for t in np.argsort(-ends)[:n_best]:
                    s, t = int(s), int(t)
                    if to_word[s] < 0 or to_word[t] < 0 or not context[s]:
                        continue
                    if t < s or t - s + 1 > max_answer_length:
                        continue
                    candidates.append((float(starts[s] + ends[t]), window, s, t))
        candidates.sort(key=lambda c: -c[0])
        entries, seen = [], set()
        for score, window, s, t in candidates:
            if len(entries) >= n_best:
                break
            to_word = features.token_to_word[window]
            first, last = int(to_word[s]), int(to_word[t])
            begin = example.word_starts[first]
            stop = example.word_starts[last] + len(example.words[last])
            original = example.context[begin:stop]
            lo, hi = final_span(_pieces_text(ids[window][s:t + 1], vocabulary), original,
                                lower_case)
            text = original[lo:hi]
            if text in seen:
                continue
            seen.add(text)
            entries.append({"text": text, "start": begin + lo, "end": begin + hi,
                            "score": score})
        if data.version_2 and null_score is not None:
            entries.append({"text": "", "start": -1, "end": -1, "score": null_score})
            entries.sort(key=lambda x: -x["score"])
        if not entries:
            entries = [{"text": "", "start": -1, "end": -1, "score": 0.0}]
        best = entries[0]
        if data.version_2:
            spans = [x for x in entries if x["text"]]
            best = spans[0] if spans and null_score - spans[0]["score"] <= null_threshold \
                else {"text": "", "start": -1, "end": -1, "score": null_score}
        answers[example.qid] = best["text"]
        nbest_json[example.qid] = entries
    return answers, nbest_json
