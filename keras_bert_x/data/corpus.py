"""Reading corpora in BERT's pretraining text format: one sentence per line, blank line between
documents. Files may be gzip-compressed; lines that are not valid UTF-8 are skipped and counted.
"""

import dataclasses
import glob
import gzip
import os

from keras_bert_x.errors import BertInputError

# Package data (see setup.cfg), so it is there in an installed wheel as in a checkout.
BUNDLED_CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "brown", "brown.txt.gz")


def bundled_documents():
    """The 500 Brown documents of the bundled corpus, each as its text (one sentence a line)."""
    with gzip.open(BUNDLED_CORPUS, "rt", encoding="utf-8") as f:
        return [d.strip("\n") for d in f.read().split("\n\n") if d.strip()]


def write_documents(path, documents):
    """Writes documents (texts) in the pretraining format: a blank line between documents."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(documents) + "\n")
    return str(path)


def expand_inputs(patterns):
    """Files matching comma-separated globs; BertInputError naming the pattern that matched none."""
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p.strip()]
    files = []
    for pattern in patterns:
        matched = sorted(glob.glob(pattern.strip()))
        if not matched:
            raise BertInputError(f"{pattern}: no input file matches")
        files.extend(matched)
    for path in files:
        if os.path.getsize(path) == 0:
            raise BertInputError(f"{path}: input file is empty")
    return files


@dataclasses.dataclass
class ReadStats:
    lines: int = 0
    skipped_non_utf8: int = 0


def _open(path):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def read_documents(files, stats=None):
    """Yields documents (lists of non-empty, stripped sentences) from corpus files."""
    stats = stats if stats is not None else ReadStats()
    for path in files:
        document = []
        with _open(path) as f:
            for raw in f:
                stats.lines += 1
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError:
                    stats.skipped_non_utf8 += 1
                    continue
                if line:
                    document.append(line)
                elif document:
                    yield document
                    document = []
        if document:
            yield document


def tokenize_documents(files, vocab_tokens, lower_case=True, batch_size=8192):
    """(documents, ReadStats): each document a list of sentences, each a list of WordPiece ids.

    Sentences are tokenized by `BertTokenizer` in large batches (tf-text, C++); sentences and
    documents left empty are dropped.
    """
    from keras_bert_x.text.tokenizer import BertTokenizer

    stats = ReadStats()
    raw = list(read_documents(files, stats))
    tokenizer = BertTokenizer(vocab_tokens, lower_case=lower_case)
    sentences = [s for doc in raw for s in doc]
    ids = []
    for start in range(0, len(sentences), batch_size):
        ids.extend(tokenizer.tokenize(sentences[start:start + batch_size]).to_list())
    documents, cursor = [], 0
    for doc in raw:
        pieces = [s for s in ids[cursor:cursor + len(doc)] if s]
        cursor += len(doc)
        if pieces:
            documents.append(pieces)
    return documents, stats
