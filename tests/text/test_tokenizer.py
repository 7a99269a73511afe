"""BertTokenizer: id parity with HF BertTokenizerFast, packing, export, bad vocabularies."""

import re

import numpy as np
import pytest
import tensorflow as tf
from transformers import BertTokenizerFast

import keras_bert_x as kbx
from keras_bert_x.data.corpus import BUNDLED_CORPUS, read_documents
from keras_bert_x.text import BertTokenizer

HARD_CASES = [
    "Héllo Wörld naïve café Ångström résumé", "中文字符测试 日本語のテキスト 한국어",
    "emoji 😀👍🏽 test ❤️", "ctrl\x00char\x07s\u200b zero\ufeffwidth \x85nel\x0bvt \ufffdrepl",
    "a" * 120, "é" * 60, "ж" * 60, "ж" * 101, "ab" * 40 + "é" * 25, "", "   \t\n ", " ",
    "!!!???...", "--- *** ((()))", "U.S.A. e-mail @user #tag $5.00 50% a&b", "ﬁ ligature Ⅻ ① ﬀ",
    "soft\u00adhyphen", "tab\there", "İstanbul ǅ ß ΣΑΣ ς", "\u0301combining", "x\u3000y",
    "don't can't", "[CLS] [MASK] [unused1]", "a\u2028b", "\u00a0nbsp", "ｆｕｌｌｗｉｄｔｈ",
    "\U0001d400 math bold", "¡¿«»—–…‘’“”", "unaffable supercalifragilisticexpialidocious",
]


@pytest.fixture(scope="module")
def hf(vocab_file):
    return BertTokenizerFast(vocab_file, do_lower_case=True)


@pytest.fixture(scope="module")
def tok(vocab_file):
    return BertTokenizer(vocab_file, max_seq_length=64)


def _hf_ids(hf, texts):
    # As Google's BERT does, text that spells "[CLS]" is text, not a special token.
    return hf(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def test_hard_cases_match_hf(tok, hf):
    ours = tok.tokenize(HARD_CASES).to_list()
    for text, a, b in zip(HARD_CASES, ours, _hf_ids(hf, HARD_CASES)):
        assert a == b, f"{text!r}: ours {a[:10]} hf {b[:10]}"


def test_whole_bundled_corpus_matches_hf(tok, hf):
    lines = [s for doc in read_documents([BUNDLED_CORPUS]) for s in doc]
    assert sum(len(s.encode()) for s in lines) > 1_000_000
    mismatches = 0
    for start in range(0, len(lines), 4096):
        chunk = lines[start:start + 4096]
        for text, a, b in zip(chunk, tok.tokenize(chunk).to_list(), _hf_ids(hf, chunk)):
            mismatches += a != b
    assert mismatches == 0, f"{mismatches} of {len(lines)} sentences differ"


def test_single_sentences_pack_like_hf(tok, hf):
    texts = ["Hello world!", "", "word " * 100, "naïve café"]
    ours = tok(texts)
    ref = hf(texts, max_length=64, truncation=True, padding="max_length", split_special_tokens=True)
    np.testing.assert_array_equal(ours["input_word_ids"], ref["input_ids"])
    np.testing.assert_array_equal(ours["input_mask"], ref["attention_mask"])
    np.testing.assert_array_equal(ours["input_type_ids"], ref["token_type_ids"])
    assert ours["input_word_ids"].dtype == tf.int32


@pytest.mark.parametrize("len_a,len_b", [(10, 10), (3, 80), (80, 3), (40, 41), (0, 90), (70, 0),
                                         (30, 30), (5, 5)])
def test_pairs_truncate_longest_first_like_hf(vocab_file, hf, len_a, len_b):
    tok = BertTokenizer(vocab_file, max_seq_length=32)
    a, b = ["one " * len_a + "end"], ["two " * len_b]
    ours = tok((a, b))
    ref = hf(a, b, max_length=32, truncation="longest_first", padding="max_length")
    np.testing.assert_array_equal(ours["input_word_ids"], ref["input_ids"])
    np.testing.assert_array_equal(ours["input_mask"], ref["attention_mask"])
    np.testing.assert_array_equal(ours["input_type_ids"], ref["token_type_ids"])


def test_cased_vocabulary_keeps_case_and_accents():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Café", "café", "cafe"]
    cased = BertTokenizer(vocab, lower_case=False)
    assert cased.tokenize(["Café café cafe"]).to_list() == [[5, 6, 7]]
    uncased = BertTokenizer(vocab)
    assert uncased.tokenize(["Café café cafe"]).to_list() == [[7, 7, 7]]


def test_detokenize(tok):
    out = tok(["Hello, unaffable world!"])
    assert tok.detokenize(out["input_word_ids"]).numpy().tolist() == [b"hello , unaffable world !"]


def test_config_round_trip(tok):
    clone = BertTokenizer.from_config(tok.get_config())
    texts = ["Round trip, naïvely."]
    np.testing.assert_array_equal(clone(texts)["input_word_ids"], tok(texts)["input_word_ids"])


def test_tokenizer_feeds_encoder(tok, minilm_dir):
    enc = kbx.BertEncoder.from_pretrained(minilm_dir)
    out = enc(tok(["The tokenizer output feeds the encoder directly."]))
    assert tuple(out["pooled_output"].shape) == (1, 384)


@pytest.mark.parametrize("tokens,message", [
    (["[PAD]", "[UNK]", "[CLS]", "hello"], "lacks the reserved token(s) [SEP] [MASK]"),
    (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "a"], "'a' appears more than once"),
])
def test_bad_vocabularies(tmp_path, tokens, message):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n")
    with pytest.raises(kbx.BertInputError, match=re.escape(message)) as e:
        BertTokenizer(str(path))
    assert str(path) in str(e.value)
    with pytest.raises(kbx.BertInputError, match="vocab file not found"):
        BertTokenizer(str(tmp_path / "missing.txt"))


def test_tokenize_words_aligns_pieces_with_words_in_the_graph(vocab_file):
    """Pieces grouped by whitespace word, with byte offsets into the original text: what a
    serving signature needs to return per-word tags and answer spans from raw strings."""
    from keras_bert_x.data.corpus import bundled_documents
    from keras_bert_x.data.tasks.squad import split_words

    tok = kbx.BertTokenizer(vocab_file)
    texts = bundled_documents()[0].splitlines()[:200] + [
        "  São  Paulo\tcafé ", "unaffordable\u00a0housing", "a\u202fb", "a \x00 b", "", "   "]
    pieces, starts, ends = (x.to_list() for x in tf.function(tok.tokenize_words)(texts))
    all_words, all_pieces = [], []
    for text, text_pieces, text_starts, text_ends in zip(texts, pieces, starts, ends):
        raw = text.encode("utf-8")
        words = [raw[s:e].decode("utf-8") for s, e in zip(text_starts, text_ends)]
        assert words == split_words(text)[0], (text, words)  # the Python readers' split
        all_words += words
        all_pieces += text_pieces
    # each word tokenized on its own (one batch, a word per row) gives the same pieces
    alone = tok.tokenize(all_words).to_list()
    for word, word_pieces, word_alone in zip(all_words, all_pieces, alone):
        assert word_pieces == (word_alone or [tok.unk_id]), word
    assert len(all_words) > 1000
