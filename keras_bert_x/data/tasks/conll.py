"""Token classification data in the CoNLL/BIO format: `token<TAB or spaces>tag` per line, a
blank (or whitespace-only) line between sentences; extra columns between token and tag, as in
CoNLL-2003, are allowed with `tag_column=-1` (the default: the last field is the tag)."""

import dataclasses
import os
from typing import List

import numpy as np

from keras_bert_x.errors import BertInputError


@dataclasses.dataclass
class TaggedSentences:
    words: List[List[str]]
    tags: List[List[str]]
    lines: List[int]                 # the line each sentence starts on
    source: str

    def __len__(self):
        return len(self.words)


def read_conll(path, fields=2):
    """Sentences of a CoNLL file whose lines have exactly `fields` fields (token first, tag
    last); one BertInputError line for a missing or empty file or a line of another shape."""
    if not os.path.isfile(path):
        raise BertInputError(f"{path}: no such file")
    words, tags, lines = [], [], []
    sentence_words, sentence_tags, start = [], [], 0
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            parts = line.split()
            if not parts or line.startswith("-DOCSTART-"):
                if sentence_words:
                    words.append(sentence_words)
                    tags.append(sentence_tags)
                    lines.append(start)
                sentence_words, sentence_tags = [], []
                continue
            if len(parts) != fields:
                raise BertInputError(f"{path}:{number}: {len(parts)} fields, expected {fields} "
                                     "(token and tag, separated by a tab or spaces)")
            if not sentence_words:
                start = number
            sentence_words.append(parts[0])
            sentence_tags.append(parts[-1])
    if sentence_words:
        words.append(sentence_words)
        tags.append(sentence_tags)
        lines.append(start)
    if not words:
        raise BertInputError(f"{path}: no sentences")
    return TaggedSentences(words, tags, lines, path)


def tag_names(sentences):
    """The tags of training sentences: "O" first, then the rest sorted by entity type."""
    names = {t for sentence in sentences.tags for t in sentence}
    rest = sorted(names - {"O"}, key=lambda t: (t[2:], t[:2]))
    return tuple((["O"] if "O" in names else []) + rest)


def word_pieces(tokenizer, sentences):
    """[sentence][word] -> list of WordPiece ids; one tokenizer call for every word at once
    (a word is tokenized alone, as `is_split_into_words` tokenizers do). A word that gives no
    piece at all (a zero-width or control character) becomes [UNK], so every word keeps a
    position and a label."""
    flat = [w for sentence in sentences.words for w in sentence]
    pieces = []
    for start in range(0, len(flat), 65536):
        pieces.extend(tokenizer.tokenize(flat[start:start + 65536]).to_list())
    out, cursor = [], 0
    for sentence in sentences.words:
        out.append([p or [tokenizer.unk_id] for p in pieces[cursor:cursor + len(sentence)]])
        cursor += len(sentence)
    return out


def token_classification_features(tokenizer, sentences, tags):
    """{input_word_ids, input_mask, input_type_ids, labels, word_counts, example_weights}.

    `labels` [N, T] holds the tag id at each word's first piece and -1 elsewhere (other pieces,
    [CLS], [SEP], padding). Words past `max_seq_length` are cut; `word_counts` says how many
    words each sentence had, so that evaluation can count the cut ones as missed.
    """
    index = {t: i for i, t in enumerate(tags)}
    t = tokenizer.max_seq_length
    n = len(sentences)
    ids = np.zeros((n, t), np.int32)
    labels = np.full((n, t), -1, np.int32)
    lengths = np.zeros(n, np.int32)
    for row, (pieces, sentence_tags) in enumerate(zip(word_pieces(tokenizer, sentences),
                                                      sentences.tags)):
        position = 1
        for word_pieces_, tag in zip(pieces, sentence_tags):
            if tag not in index:
                raise BertInputError(f"{sentences.source}:{sentences.lines[row]}: tag '{tag}' "
                                     f"is not one of the training tags ({', '.join(tags)})")
            if position + len(word_pieces_) > t - 1:
                break
            ids[row, position:position + len(word_pieces_)] = word_pieces_
            labels[row, position] = index[tag]
            position += len(word_pieces_)
        ids[row, 0], ids[row, position] = tokenizer.cls_id, tokenizer.sep_id
        lengths[row] = position + 1
    mask = (np.arange(t)[None, :] < lengths[:, None]).astype(np.int32)
    return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": np.zeros_like(ids),
            "labels": labels, "word_counts": np.array([len(w) for w in sentences.words],
                                                      np.int32),
            "example_weights": np.ones(n, np.float32)}


def predicted_tags(logits, labels, word_counts, tags):
    """Tag sequences from logits [N, T, K]: the argmax at each kept word's first piece, and
    "O" for the words cut by `max_seq_length`."""
    out = []
    best = np.asarray(logits).argmax(-1)
    for row in range(len(best)):
        kept = [tags[i] for i in best[row][labels[row] >= 0]]
        out.append(kept + ["O"] * (int(word_counts[row]) - len(kept)))
    return out


def true_tags(labels, word_counts, sentences_tags=None, tags=None):
    """Gold tag sequences: from the sentences when given (cut words included), else labels."""
    if sentences_tags is not None:
        return [list(s) for s in sentences_tags]
    return [[tags[i] for i in row[row >= 0]] for row in labels]
