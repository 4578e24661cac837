"""course_lib.data: corpora (offline, no network), augmentation, splits, encoding cache, batches.

References: tiktoken / course_lib.tokenizer ids for the encoded corpus, `torch.Tensor.unfold`
for the windows, a plain slice for the x/y shift.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tiktoken
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import data as D
from course_lib.data import corpora
from course_lib.errors import CourseInputError

TRAIN_TXT = Path(__file__).resolve().parent.parent / "data" / "train.txt"


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Downloads and caches go to a temporary folder; no network unless a test allows it."""
    d = tmp_path / "data"
    monkeypatch.setenv("COURSE_DATA_DIR", str(d))
    monkeypatch.delenv(D.SHAKESPEARE_ENV, raising=False)
    monkeypatch.setenv("COURSE_OFFLINE", "1")

    def no_network(url: str, timeout: float) -> bytes:
        raise AssertionError("the network was touched")

    monkeypatch.setattr(corpora, "_download", no_network)
    return d


def _online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return out[0]


# --------------------------------------------------------------------------- corpora

def test_default_corpus_offline_is_the_offline_corpus_and_says_why(capsys) -> None:
    text = D.load_corpus(D.DEFAULT_CORPUS)
    line = _one_line(capsys)
    assert isinstance(text, str) and len(text) > 100_000
    assert text == D.offline_corpus()
    assert "offline" in line and "Tiny Shakespeare not used" in line and "COURSE_OFFLINE" in line


def test_offline_corpus_is_prose_and_deterministic() -> None:
    corpora._OFFLINE_CACHE.clear()
    a = D.offline_corpus()
    corpora._OFFLINE_CACHE.clear()
    b = D.offline_corpus()
    assert a == b
    assert a.startswith("The Zen of Python")
    assert "Beautiful is better than ugly." in a
    words = a.split()
    assert len(words) > 15_000
    # prose: mostly letters and spaces, few code symbols
    letters = sum(c.isalpha() or c.isspace() for c in a)
    assert letters / len(a) > 0.85


def test_shakespeare_unavailable_offline_is_a_clear_error() -> None:
    with pytest.raises(CourseInputError, match="offline mode.*COURSE_SHAKESPEARE"):
        D.load_corpus("shakespeare")


@pytest.fixture
def expect_shakespeare(shakespeare_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`shakespeare_path`, with `load_corpus` expecting that file's size and sha256.

    With the whole Tiny Shakespeare nothing changes. With the stand-in (a fresh clone:
    data/train.txt), the verification constants become the stand-in's, so the same checks
    (verify, cache, reuse, refuse a wrong file) run on it.
    """
    from tests.conftest import SHAKESPEARE_STAND_IN

    if shakespeare_path == SHAKESPEARE_STAND_IN:
        data = shakespeare_path.read_bytes()
        monkeypatch.setattr(corpora, "SHAKESPEARE_BYTES", len(data))
        monkeypatch.setattr(corpora, "SHAKESPEARE_SHA256", hashlib.sha256(data).hexdigest())
    return shakespeare_path


def test_shakespeare_from_env_var(expect_shakespeare: Path, monkeypatch, capsys) -> None:
    shakespeare_path = expect_shakespeare
    monkeypatch.setenv(D.SHAKESPEARE_ENV, str(shakespeare_path))
    text = D.load_corpus(D.DEFAULT_CORPUS)
    assert "Tiny Shakespeare" in _one_line(capsys)
    assert text.encode("utf-8") == shakespeare_path.read_bytes()
    assert text.startswith("First Citizen:") or shakespeare_path.name == "train.txt"


def test_a_wrong_file_in_the_env_var_is_refused(tmp_path: Path, monkeypatch) -> None:
    fake = tmp_path / "fake.txt"
    fake.write_text("To be or not to be\n", encoding="utf-8")
    monkeypatch.setenv(D.SHAKESPEARE_ENV, str(fake))
    with pytest.raises(CourseInputError, match="not Tiny Shakespeare"):
        D.load_corpus("shakespeare")


def test_download_is_verified_cached_and_used_once(expect_shakespeare: Path, monkeypatch, capsys,
                                                   _data_dir: Path) -> None:
    shakespeare_path = expect_shakespeare
    _online(monkeypatch)
    calls = []

    def fake_download(url: str, timeout: float) -> bytes:
        calls.append((url, timeout))
        return shakespeare_path.read_bytes()

    monkeypatch.setattr(corpora, "_download", fake_download)
    text = D.load_corpus(D.DEFAULT_CORPUS)
    line = _one_line(capsys)
    assert "downloaded" in line and "sha256 verified" in line
    assert calls == [(D.SHAKESPEARE_URL, D.DOWNLOAD_TIMEOUT_S)]
    cached = _data_dir / D.SHAKESPEARE_FILE
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == corpora.SHAKESPEARE_SHA256
    assert len(text.encode("utf-8")) == corpora.SHAKESPEARE_BYTES == len(shakespeare_path.read_bytes())
    # the second time it comes from the cache, even offline
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert D.load_corpus("shakespeare") == text
    assert "cached at" in _one_line(capsys)
    assert len(calls) == 1


def test_a_bad_download_is_not_cached_and_falls_back(monkeypatch, capsys, _data_dir: Path) -> None:
    _online(monkeypatch)
    monkeypatch.setattr(corpora, "_download", lambda url, timeout: b"404: Not Found")
    text = D.load_corpus(D.DEFAULT_CORPUS)
    line = _one_line(capsys)
    assert text == D.offline_corpus()
    assert "did not match" in line
    assert not (_data_dir / D.SHAKESPEARE_FILE).exists()


def test_a_failed_download_falls_back_with_the_reason(monkeypatch, capsys) -> None:
    _online(monkeypatch)

    def boom(url: str, timeout: float) -> bytes:
        raise TimeoutError("timed out")

    monkeypatch.setattr(corpora, "_download", boom)
    assert D.load_corpus(D.DEFAULT_CORPUS) == D.offline_corpus()
    assert "download failed (TimeoutError: timed out)" in _one_line(capsys)


def test_a_corrupt_cached_copy_is_ignored(monkeypatch, capsys, _data_dir: Path) -> None:
    _data_dir.mkdir(parents=True, exist_ok=True)
    (_data_dir / D.SHAKESPEARE_FILE).write_text("truncated", encoding="utf-8")
    assert D.load_corpus(D.DEFAULT_CORPUS) == D.offline_corpus()
    assert "failed the sha256 check" in _one_line(capsys)


def test_own_file_and_its_errors(tmp_path: Path, capsys) -> None:
    p = tmp_path / "mine.txt"
    p.write_text("hello there\n", encoding="utf-8")
    assert D.load_corpus(p) == "hello there\n"
    assert "mine.txt" in _one_line(capsys)
    with pytest.raises(CourseInputError, match="no such file.*default, shakespeare, offline"):
        D.load_corpus(tmp_path / "missing.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(CourseInputError, match="not valid UTF-8.*offset 3"):
        D.load_corpus(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(CourseInputError, match="empty"):
        D.load_corpus(empty)


def test_corpus_stats() -> None:
    s = D.corpus_stats("ab a\nb\n", top=2)
    assert s["characters"] == 7 and s["lines"] == 2 and s["words"] == 3
    assert s["distinct_characters"] == 4 and s["most_common"][0][1] == 2


# --------------------------------------------------------------------------- expand_lines

def _lines() -> list[str]:
    return D.read_lines(TRAIN_TXT)[0]


def test_expand_exact_target_counts_add_up_and_originals_are_kept() -> None:
    src = _lines()
    out, rep = D.expand_lines(src, 2000, seed=7)
    assert len(out) == 2000
    assert rep.originals + rep.new + rep.repeats == 2000
    assert rep.originals == len(src)
    assert sum(rep.operations.values()) == rep.new
    # check the counts against the output itself
    counts = Counter(out)
    assert not Counter(src) - counts  # every original is still there
    assert len(counts) == len(set(src)) + rep.new
    assert sum(c - 1 for c in counts.values()) == rep.repeats + rep.input_duplicates
    assert len(rep.parents) == 2000
    assert all(0 <= i < len(src) for par in rep.parents for i in par)
    assert rep.repeats <= 5  # a real file expands almost only into new lines


def test_expand_is_deterministic_per_seed() -> None:
    src = _lines()
    a, _ = D.expand_lines(src, 1000, seed=7)
    b, _ = D.expand_lines(list(src), 1000, seed=7)
    c, _ = D.expand_lines(src, 1000, seed=8)
    assert a == b and a != c


def test_expand_operations_keep_text_plausible() -> None:
    src = _lines()
    out, rep = D.expand_lines(src, 1500, seed=1, shuffle=False)
    made = out[len(src):]
    assert out[: len(src)] == src  # no shuffle: originals first
    for line in made:
        assert line[0].isupper() and line[-1] in ".!?", line
        assert "  " not in line
    assert all(v > 0 for k, v in rep.operations.items() if k != "swap_words")


def test_expand_forbidden_lines_never_appear() -> None:
    src = _lines()
    train, val = D.train_val_split(src, 0.2, seed=3)
    out, rep = D.expand_lines(train, 3000, seed=3, forbidden=val)
    assert not set(out) & set(val)


def test_expand_tiny_input_repeats_honestly() -> None:
    out, rep = D.expand_lines(["hello", "world"], 10, seed=0)
    assert len(out) == 10 and rep.repeats == 8 and rep.new == 0
    assert "8 exact repeats" in rep.summary()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("src", "target"),
    [
        (["hello world", "foo bar"], 100),  # issue 14: this never returned
        ([f"the cat sat on the mat number {i % 3}" for i in range(50)], 500),  # 50 near-identical lines
        (["one"], 1000),
        (["same line, and the same words"] * 5, 200),
    ],
)
def test_expand_fills_with_repeats_when_no_operation_can_make_a_line(src: list[str], target: int) -> None:
    out, rep = D.expand_lines(src, target, seed=7)
    assert len(out) == target and rep.new == 0 and rep.repeats == target - len(src)
    assert set(out) == set(src) and not Counter(src) - Counter(out)
    assert rep.exhausted_at is not None and len(src) <= rep.exhausted_at < target
    assert f"no operation could make a new line after {rep.exhausted_at:,} lines" in rep.summary()
    assert f"the other {target - rep.exhausted_at:,} are exact repeats" in rep.summary()
    assert D.expand_lines(src, target, seed=7)[0] == out  # still deterministic


def test_expand_report_is_quiet_about_exhaustion_when_operations_keep_working() -> None:
    out, rep = D.expand_lines(_lines(), 600, seed=7)
    assert rep.exhausted_at is None and "no operation could" not in rep.summary()


def test_expand_bad_input() -> None:
    with pytest.raises(CourseInputError, match="smaller than the 3 input lines"):
        D.expand_lines(["a b", "c d", "e f"], 2, seed=0)
    with pytest.raises(CourseInputError, match="no input lines"):
        D.expand_lines([], 5, seed=0)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from("the cat, sat and on a mat. dog ran home the".split()),
                      min_size=1, max_size=9).map(" ".join), min_size=1, max_size=12),
    st.integers(0, 40),
    st.integers(0, 2**32),
)
def test_expand_property_counts_always_add_up(lines: list[str], extra: int, seed: int) -> None:
    target = len(lines) + extra
    out, rep = D.expand_lines(lines, target, seed=seed, max_tries=5)
    assert len(out) == target
    assert rep.originals + rep.new + rep.repeats == target
    assert not Counter(lines) - Counter(out)
    assert D.expand_lines(lines, target, seed=seed, max_tries=5)[0] == out


# --------------------------------------------------------------------------- splits

def test_split_text_and_ids_is_contiguous() -> None:
    text = "abcdefghij"
    assert D.train_val_split(text, 0.2) == ("abcdefgh", "ij")
    ids = np.arange(100)
    tr, va = D.train_val_split(ids, 0.1)
    assert np.array_equal(np.concatenate([tr, va]), ids) and len(va) == 10
    t = torch.arange(50)
    tr, va = D.train_val_split(t, 0.1)
    assert torch.equal(torch.cat([tr, va]), t)


def test_split_lines_keeps_duplicates_on_one_side() -> None:
    lines = [f"line {i % 40}" for i in range(200)]  # every line 5 times
    tr, va = D.train_val_split(lines, 0.1, seed=0)
    assert len(tr) + len(va) == 200 and not set(tr) & set(va)
    assert 15 <= len(va) <= 25
    assert D.train_val_split(lines, 0.1, seed=0) == (tr, va)
    assert D.train_val_split(lines, 0.1, seed=1) != (tr, va)


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, "x"])
def test_split_bad_fraction(bad) -> None:
    with pytest.raises(CourseInputError, match="val_fraction"):
        D.train_val_split("abcdef", bad)


# --------------------------------------------------------------------------- encoding cache

class CountingChars:
    """A stand-in tokenizer that counts how often it encodes."""

    def __init__(self, text: str, offset: int = 0) -> None:
        self.chars = sorted(set(text))
        self.offset = offset
        self.calls = 0

    def fingerprint(self) -> str:
        return f"{self.chars}{self.offset}"

    def encode(self, text: str) -> list[int]:
        self.calls += 1
        return [self.chars.index(c) + self.offset for c in text]

    def __len__(self) -> int:
        return len(self.chars) + self.offset


def test_encode_corpus_caches_and_keys_on_text_and_tokenizer(tmp_path: Path, capsys) -> None:
    text = "hello world, hello course"
    tok = CountingChars(text)
    a = D.encode_corpus(text, tok, tmp_path)
    assert a.dtype == np.uint16 and a.tolist() == tok.encode(text)
    assert "cached at" in capsys.readouterr().out
    tok.calls = 0
    b = D.encode_corpus(text, tok, tmp_path)
    assert tok.calls == 0 and np.array_equal(a, b)
    assert "loaded from cache" in capsys.readouterr().out
    D.encode_corpus(text[:-1], tok, tmp_path, verbose=False)
    assert tok.calls == 1  # another text: encoded again
    other = CountingChars(text, offset=70_000)  # another tokenizer with a big vocabulary
    c = D.encode_corpus(text, other, tmp_path, verbose=False)
    assert c.dtype == np.uint32 and (c.astype(np.int64) - 70_000).tolist() == a.tolist()
    assert len(list(tmp_path.glob("tokens-*.npy"))) == 3


def test_encode_corpus_matches_course_tokenizers_and_tiktoken(tmp_path: Path) -> None:
    from course_lib.tokenizer import BPETokenizer, CharTokenizer

    text = D.offline_corpus()[:20_000]
    char = CharTokenizer.train(text)
    assert D.encode_corpus(text, char, tmp_path, verbose=False).tolist() == char.encode(text)
    bpe = BPETokenizer.train(text, 400)
    ids = D.encode_corpus(text, bpe, tmp_path, verbose=False)
    assert ids.dtype == np.uint16 and ids.tolist() == bpe.encode_ordinary(text)
    # a BPE tokenizer's lookup cache must not change its cache key
    assert D.encode_corpus(text, bpe, tmp_path, verbose=False) is not None
    assert len(list(tmp_path.glob("tokens-*.npy"))) == 2
    # tiktoken (built offline from plain bytes + one merge): duck-typed via encode_ordinary/n_vocab
    ranks = {bytes([i]): i for i in range(256)}
    ranks[b"th"] = 256
    enc = tiktoken.Encoding(name="tiny", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={})
    got = D.encode_corpus(text, enc, tmp_path, verbose=False)
    assert got.tolist() == enc.encode_ordinary(text)


def test_encode_corpus_with_hf_tokenizers(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {c: i for i, c in enumerate("abc ")}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="a"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    ids = D.encode_corpus("abc cab", tok, tmp_path, verbose=False)
    assert ids.tolist() == tok.encode("abc cab").ids


def test_encode_corpus_rejects_non_tokenizers(tmp_path: Path) -> None:
    with pytest.raises(CourseInputError, match="vocabulary size"):
        D.encode_corpus("abc", object(), tmp_path)


# --------------------------------------------------------------------------- batches

def test_token_dataset_windows_match_unfold() -> None:
    ids = torch.randint(0, 100, (103,))
    for seq_len, stride in [(8, None), (8, 1), (5, 3), (102, None)]:
        ds = D.TokenDataset(ids.numpy().astype(np.uint16), seq_len, stride)
        ref = ids.unfold(0, seq_len + 1, stride or seq_len)  # (N, T+1)
        assert len(ds) == ref.shape[0]
        for i in range(len(ds)):
            x, y = ds[i]
            assert x.dtype == torch.long and x.shape == (seq_len,)
            assert torch.equal(x, ref[i, :-1]) and torch.equal(y, ref[i, 1:])
        assert torch.equal(ds[-1][0], ref[-1, :-1])
        with pytest.raises(IndexError):
            ds[len(ds)]


def test_token_dataset_each_token_is_a_target_once_by_default() -> None:
    ids = np.arange(1, 42)
    ds = D.TokenDataset(ids, 8)
    targets = torch.cat([ds[i][1] for i in range(len(ds))])
    assert targets.tolist() == list(range(2, 2 + len(targets)))


def test_seq_len_too_long_says_what_works() -> None:
    with pytest.raises(CourseInputError,
                       match=r"seq_len=64 is too long.*only 20 tokens.*largest seq_len that works is 19"):
        D.TokenDataset(list(range(20)), 64)
    with pytest.raises(CourseInputError, match="seq_len"):
        D.TokenDataset(list(range(20)), 0)
    with pytest.raises(CourseInputError, match="1-D"):
        D.TokenDataset(np.zeros((2, 3), dtype=np.int64), 2)
    with pytest.raises(CourseInputError, match="seq_len=8 is too long"):
        D.get_batch(np.arange(5), 2, 8)


def test_make_loader_is_seeded_and_batches_are_shifted() -> None:
    ds = D.TokenDataset(np.arange(200) % 50, 7)
    first = [x.clone() for x, _ in D.make_loader(ds, 4, shuffle=True, seed=1)]
    again = [x.clone() for x, _ in D.make_loader(ds, 4, shuffle=True, seed=1)]
    other = [x.clone() for x, _ in D.make_loader(ds, 4, shuffle=True, seed=2)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    x, y = next(iter(D.make_loader(ds, 4, shuffle=False)))
    assert x.shape == (4, 7) and torch.equal(x[:, 1:], y[:, :-1])
    with pytest.raises(CourseInputError, match="batch_size"):
        D.make_loader(ds, 0)


def test_get_batch_random_windows() -> None:
    ids = np.arange(1000)
    g = torch.Generator().manual_seed(0)
    x, y = D.get_batch(ids, 5, 16, generator=g)
    assert x.shape == y.shape == (5, 16) and x.dtype == torch.long
    assert torch.equal(y, x + 1)  # consecutive ids: y is x shifted by one


def test_benchmark_quick_mode_runs(capsys) -> None:
    """benchmarks/bench_data.py keeps working (no timing is asserted)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_data.py"
    spec = importlib.util.spec_from_file_location("bench_data", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "ids equal HF tokenizers'" in out and "cached run" in out and "vs reference" in out
