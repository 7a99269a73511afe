"""SQuAD v1.1 and v2.0: reading the JSON, and sliding windows of WordPiece inputs over contexts.

As google-research/bert's run_squad.py does it: the context is split on whitespace into words
(with each word's character offsets), every word is WordPiece-tokenized alone, and a question
of at most `max_query_length` pieces is paired with windows of the context `doc_stride` pieces
apart, each `[CLS] question [SEP] window [SEP]` of `max_seq_length`. A training answer is the
piece span that covers its words (narrowed to the answer's own pieces); a window that does not
hold it whole, or an unanswerable v2.0 question, points at [CLS]. `squad_postprocess` maps
logits back to text and character offsets.
"""

import dataclasses
import json
import os
from typing import List, Optional

import numpy as np

from keras_bert_x.errors import BertInputError


def is_whitespace(c):
    """The characters words are split on (as `BertTokenizer.tokenize_words` splits them)."""
    return c in " \t\r\n" or ord(c) == 0x202F


@dataclasses.dataclass
class SquadExample:
    qid: str
    question: str
    context: str
    words: List[str]                     # the context split on whitespace
    word_starts: List[int]               # character offset of each word in the context
    answers: List[str]                   # every given answer text ([] when unanswerable)
    start_word: Optional[int] = None     # training target (the first answer), in words
    end_word: Optional[int] = None
    answer_text: str = ""
    impossible: bool = False


@dataclasses.dataclass
class SquadData:
    examples: List[SquadExample]
    version_2: bool
    skipped: int                         # training answers whose offset does not match their text
    source: str


def split_words(context):
    """(words, their character offsets, the word of each character) of a context."""
    words, starts, previous_space = [], [], True
    char_to_word = []
    for i, c in enumerate(context):
        if is_whitespace(c):
            previous_space = True
        else:
            if previous_space:
                words.append(c)
                starts.append(i)
            else:
                words[-1] += c
            previous_space = False
        char_to_word.append(len(words) - 1)
    return words, starts, char_to_word


def read_squad(path, is_training):
    """The questions of a SQuAD JSON file (v1.1 or v2.0, told apart by `is_impossible`).

    A question's first answer gives its target (also for evaluation, so that the evaluation
    loss means something); for training, a question whose answer is not found where its
    `answer_start` points is skipped and counted (as Google's script does). Missing fields and
    bad JSON are one error line.
    """
    if not os.path.isfile(path):
        raise BertInputError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8-sig") as f:  # with or without a BOM
            articles = json.load(f)["data"]
    except (ValueError, KeyError, TypeError) as e:
        raise BertInputError(f"{path}: not a SQuAD JSON file ({type(e).__name__}: {e})") from None
    examples, skipped, version_2 = [], 0, False
    try:
        for article in articles:
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                words, starts, char_to_word = split_words(context)
                for qa in paragraph["qas"]:
                    impossible = bool(qa.get("is_impossible", False))
                    version_2 = version_2 or "is_impossible" in qa
                    answers = [a["text"] for a in qa.get("answers", [])]
                    example = SquadExample(str(qa["id"]), qa["question"], context, words, starts,
                                           answers, impossible=impossible)
                    if is_training and not impossible and not qa["answers"]:
                        raise BertInputError(f"{path}: question {qa['id']} has no answer")
                    if not impossible and qa["answers"]:
                        answer = qa["answers"][0]
                        if _locate(example, int(answer["answer_start"]), answer["text"],
                                   char_to_word) is None and is_training:
                            skipped += 1
                            continue
                    examples.append(example)
    except (KeyError, TypeError) as e:
        raise BertInputError(f"{path}: a question or paragraph lacks {e}") from None
    if not examples:
        raise BertInputError(f"{path}: no questions")
    return SquadData(examples, version_2, skipped, path)


def _locate(example, offset, text, char_to_word):
    """Sets the example's target words from its first answer, as Google's run_squad: the words
    under [offset, offset + len(text)) must contain the answer's text (whitespace normalised);
    returns None (no target) when they do not."""
    end = offset + len(text) - 1
    if not text.strip() or not 0 <= offset <= end < len(char_to_word):
        return None
    first, last = char_to_word[offset], char_to_word[end]
    if " ".join(example.words[first:last + 1]).find(" ".join(text.split())) == -1:
        return None
    example.start_word, example.end_word, example.answer_text = first, last, text
    return example


@dataclasses.dataclass
class SquadFeatures:
    """The windows of a SquadData, as arrays, and what post-processing needs to map back
    (evaluation features only)."""
    arrays: dict                         # input_word_ids ... [N, T], start/end_positions [N]
    example_index: np.ndarray            # [N] which example each window is from
    token_to_word: Optional[np.ndarray]  # [N, T] context word at each position, -1 elsewhere
    max_context: Optional[np.ndarray]    # [N, T] whether this window gives the piece at that
    #                                      position its most context (the window to read it in)


def _max_context(spans, span_index, position):
    """Whether window `span_index` is the one where piece `position` has most context (its
    smaller side, plus a little for a longer window), as in Google's run_squad."""
    best_score, best = None, None
    for i, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best = score, i
    return best == span_index


def squad_features(tokenizer, data, max_seq_length=384, doc_stride=128, max_query_length=64,
                   is_training=False):
    """Sliding-window features of `data` (see the module docstring). Training features skip
    what only post-processing needs (`token_to_word`, `max_context`)."""
    if max_seq_length < max_query_length + 3 + 1:
        raise BertInputError(f"max_seq_length={max_seq_length} leaves no room for context "
                             f"after max_query_length={max_query_length}")
    questions = [q[:max_query_length] for q in tokenizer.tokenize(
        [e.question for e in data.examples]).to_list()]
    contexts = list(dict.fromkeys(e.context for e in data.examples))  # each paragraph once
    context_pieces = dict(zip(contexts, tokenizer.word_pieces(contexts)))
    targets = [e.answer_text if e.start_word is not None else "" for e in data.examples]
    answers = tokenizer.tokenize(targets).to_list()
    rows = {k: [] for k in ("input_word_ids", "input_mask", "input_type_ids", "start_positions",
                            "end_positions")}
    example_index, token_to_word, max_context = [], [], []
    for i, example in enumerate(data.examples):
        words = context_pieces[example.context]
        if len(words) != len(example.words):
            raise BertInputError(f"{data.source}: question {example.qid}: the context splits "
                                 "into words differently in the graph")  # cannot happen
        doc, piece_word, word_first = [], [], []
        for w, pieces in enumerate(words):
            word_first.append(len(doc))
            doc.extend(pieces)
            piece_word.extend([w] * len(pieces))
        start = end = None
        if example.start_word is not None:
            start = word_first[example.start_word]
            end = (word_first[example.end_word + 1] - 1 if example.end_word + 1 < len(word_first)
                   else len(doc) - 1)
            start, end = _narrow(doc, start, end, answers[i])
        query = questions[i]
        room = max_seq_length - len(query) - 3
        spans, offset = [], 0
        while True:
            length = min(len(doc) - offset, room)
            spans.append((offset, length))
            if offset + length >= len(doc):
                break
            offset += min(length, doc_stride)
        first = len(query) + 2
        for s, (span_start, length) in enumerate(spans):
            ids = [tokenizer.cls_id, *query, tokenizer.sep_id,
                   *doc[span_start:span_start + length], tokenizer.sep_id]
            start_position = end_position = 0
            if start is not None and span_start <= start and end < span_start + length:
                start_position, end_position = first + start - span_start, first + end - span_start
            pad = max_seq_length - len(ids)
            rows["input_word_ids"].append(ids + [tokenizer.pad_id] * pad)
            rows["input_mask"].append([1] * len(ids) + [0] * pad)
            rows["input_type_ids"].append([0] * first + [1] * (length + 1) + [0] * pad)
            rows["start_positions"].append(start_position)
            rows["end_positions"].append(end_position)
            example_index.append(i)
            if not is_training:
                to_word = np.full(max_seq_length, -1, np.int32)
                to_word[first:first + length] = piece_word[span_start:span_start + length]
                token_to_word.append(to_word)
                context = np.zeros(max_seq_length, bool)
                context[first:first + length] = [_max_context(spans, s, span_start + k)
                                                 for k in range(length)]
                max_context.append(context)
    arrays = {k: np.array(v, np.int32) for k, v in rows.items()}
    arrays["example_weights"] = np.ones(len(example_index), np.float32)
    return SquadFeatures(arrays, np.array(example_index),
                         None if is_training else np.array(token_to_word),
                         None if is_training else np.array(max_context))


def _narrow(doc, start, end, answer_pieces):
    """The sub-span of [start, end] whose pieces are exactly the answer's, if there is one
    ("1895" inside the word "(1895-1943)."), else the span itself."""
    n = len(answer_pieces)
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if new_end - new_start + 1 == n and doc[new_start:new_end + 1] == answer_pieces:
                return new_start, new_end
    return start, end
