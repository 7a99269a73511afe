"""Sentence (pair) classification and regression data from CSV, TSV or JSON lines.

A table has a header row naming its columns (CSV: comma-separated, TSV: tab-separated; JSONL:
one object per line); `text_column` holds the text, `text_b_column` the optional second text of
a pair, `label_column` the class name (or, for regression, a number).
"""

import csv
import dataclasses
import json
import math
import os
from typing import List, Optional

import numpy as np

from keras_bert_x.errors import BertInputError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}


@dataclasses.dataclass
class TextExamples:
    texts: List[str]
    texts_b: Optional[List[str]]
    labels: list                 # class names (str) or numbers (float, regression)
    lines: List[int]             # where each example is in its file, for messages
    source: str

    def __len__(self):
        return len(self.texts)


def _rows(path, file_format):
    """(line number, {column: value}) of a table, and its column names."""
    with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: a BOM, as Excel writes
        if file_format == "jsonl":
            columns, rows = set(), []
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as e:
                    raise BertInputError(f"{path}:{number}: not a JSON object ({e})") from None
                if not isinstance(row, dict):
                    raise BertInputError(f"{path}:{number}: not a JSON object")
                columns |= set(row)
                rows.append((number, row))
            return rows, sorted(columns)
        reader = csv.reader(f, delimiter="," if file_format == "csv" else "\t")
        header = next(reader, None)
        if header is None:
            raise BertInputError(f"{path}: file is empty")
        header = [h.strip() for h in header]
        rows = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise BertInputError(f"{path}:{reader.line_num}: {len(row)} fields, the header "
                                     f"has {len(header)}")
            rows.append((reader.line_num, dict(zip(header, row))))
        return rows, header


def read_classification(path, text_column, label_column, text_b_column=None,
                        regression=False, file_format=None):
    """The examples of one table; one BertInputError line for a missing file or column, an
    empty file, a row without text or label, or (regression) a label that is not a number."""
    if not os.path.isfile(path):
        raise BertInputError(f"{path}: no such file")
    file_format = file_format or FORMATS.get(os.path.splitext(path)[1].lower())
    if file_format not in ("csv", "tsv", "jsonl"):
        raise BertInputError(f"{path}: unknown table format (name it .csv, .tsv or .jsonl)")
    rows, columns = _rows(path, file_format)
    if not rows:
        raise BertInputError(f"{path}: no examples")
    for column in filter(None, (text_column, text_b_column, label_column)):
        if column not in columns:
            raise BertInputError(f"{path}: no column '{column}' (columns: {', '.join(columns)})")
    texts, texts_b, labels, lines = [], [] if text_b_column else None, [], []
    for number, row in rows:
        text, label = row.get(text_column), row.get(label_column)
        if text is None or label is None or str(label).strip() == "":
            raise BertInputError(f"{path}:{number}: missing '{text_column}' or "
                                 f"'{label_column}'")
        if regression:
            try:
                value = float(label)
            except (TypeError, ValueError):
                value = math.nan
            if not math.isfinite(value):  # one nan or inf label would ruin every weight
                raise BertInputError(f"{path}:{number}: label {label!r} is not a finite number "
                                     "(regression)")
            label = value
        else:
            label = str(label).strip()
        texts.append(str(text))
        if text_b_column:
            texts_b.append(str(row.get(text_b_column) or ""))
        labels.append(label)
        lines.append(number)
    return TextExamples(texts, texts_b, labels, lines, path)


def label_names(examples):
    """The classes of training examples, sorted (so ids do not depend on the row order)."""
    return tuple(sorted(set(examples.labels)))


def label_ids(examples, labels):
    """Class ids of `examples` under `labels`; an unknown class is an error naming its row."""
    index = {name: i for i, name in enumerate(labels)}
    ids = []
    for label, line in zip(examples.labels, examples.lines):
        if label not in index:
            raise BertInputError(f"{examples.source}:{line}: label '{label}' is not one of the "
                                 f"training labels ({', '.join(labels)})")
        ids.append(index[label])
    return np.array(ids, np.int32)


def classification_features(tokenizer, examples, labels=None, batch_size=4096):
    """{input_word_ids, input_mask, input_type_ids, labels, example_weights} numpy arrays.

    `labels` are class names (classification) or None (regression: the numbers themselves).
    """
    parts = {"input_word_ids": [], "input_mask": [], "input_type_ids": []}
    for start in range(0, len(examples), batch_size):
        a = examples.texts[start:start + batch_size]
        inputs = (a, examples.texts_b[start:start + batch_size]) if examples.texts_b else a
        for name, value in tokenizer(inputs).items():
            parts[name].append(value.numpy())
    features = {name: np.concatenate(values) for name, values in parts.items()}
    features["labels"] = (label_ids(examples, labels) if labels is not None
                          else np.array(examples.labels, np.float32))
    features["example_weights"] = np.ones(len(examples), np.float32)
    return features
