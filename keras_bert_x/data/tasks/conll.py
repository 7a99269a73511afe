"""Token classification data in the CoNLL/BIO format: `token<TAB or spaces>tag` per line, a
blank (or whitespace-only) line between sentences; files with more columns (CoNLL-2003's four)
are read with `fields=4`: the token is the first field, the tag the last."""

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
    with open(path, encoding="utf-8-sig") as f:  # with or without a BOM
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
    """[sentence][word] -> list of WordPiece ids, aligned in the graph by
    `BertTokenizer.tokenize_words` (every word tokenized alone, as `is_split_into_words`
    tokenizers do; a word that gives no piece, a zero-width character say, becomes [UNK], so
    every word keeps a position and a label)."""
    return tokenizer.word_pieces([" ".join(words) for words in sentences.words])


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


def predicted_tags(predictions, labels, word_counts, tags):
    """Tag sequences from predicted tag ids [N, T]: the prediction at each kept word's first
    piece (where `labels` >= 0), and "O" for the words cut by `max_seq_length`."""
    out = []
    for row_predictions, row_labels, count in zip(predictions, labels, word_counts):
        kept = [tags[i] for i in row_predictions[row_labels >= 0]]
        out.append(kept + ["O"] * (int(count) - len(kept)))
    return out
