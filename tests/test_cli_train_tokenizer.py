"""`course train-tokenizer`: both implementations write folders every loader reads;
bad input is one clear line, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import regex

from course_lib.cli import main
from course_lib.tokenizer import ENDOFTEXT, GPT2_SPLIT_PATTERN, BPETokenizer, load_tokenizer

TEXT = "It was the best of times, it was the worst of times. " * 40 + "Naïve café 日本 😀\n" * 10


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    p = tmp_path / "train.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


@pytest.mark.parametrize("impl", ["course", "hf"])
def test_trains_and_saves_a_loadable_folder(impl: str, text_file: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import AutoTokenizer

    out = tmp_path / f"tok_{impl}"
    assert main(["train-tokenizer", "--text", str(text_file), "--vocab_size", "300", "--out", str(out),
                 "--impl", impl]) == 0
    printed = capsys.readouterr().out
    assert "bytes per token" in printed and "note:" not in printed  # 300 was reached
    tok = load_tokenizer(out)
    assert len(tok) == 300 and ENDOFTEXT in tok.special_tokens
    auto = AutoTokenizer.from_pretrained(out)
    assert auto.eos_token == ENDOFTEXT
    assert auto.backend_tokenizer.encode(TEXT).ids == tok.encode_ordinary(TEXT)
    assert tok.decode(tok.encode_ordinary(TEXT)) == TEXT


@pytest.mark.parametrize("impl", ["course", "hf"])
def test_a_vocabulary_smaller_than_asked_is_explained(impl: str, text_file: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A small text runs out of pairs to merge; the command says so instead of staying silent."""
    out = tmp_path / "tok_8k"
    assert main(["train-tokenizer", "--text", str(text_file), "--vocab_size", "8000", "--out", str(out),
                 "--impl", impl]) == 0
    printed = capsys.readouterr().out
    got = len(load_tokenizer(out))
    assert got < 8000
    note = printed.splitlines()[-1]
    assert note.startswith(f"note: --vocab_size 8,000 asked for more tokens than {text_file} supports")
    assert f"the vocabulary has {got:,} (256 bytes + {got - 257:,} merges + 1 special)" in note
    assert "--min_frequency 2" in note and "distinct words" in note and f"real size ({got:,})" in note
    words = len(set(regex.findall(GPT2_SPLIT_PATTERN, TEXT)))
    assert f"only {words:,} distinct words and symbols" in note


def test_course_and_hf_folders_agree(text_file: Path, tmp_path: Path) -> None:
    for impl in ("course", "hf"):
        assert main(["train-tokenizer", "--text", str(text_file), "--vocab-size", "320",
                     "--out", str(tmp_path / impl), "--impl", impl]) == 0
    a, b = load_tokenizer(tmp_path / "course"), load_tokenizer(tmp_path / "hf")
    assert [(a.vocab[x], a.vocab[y]) for x, y in a.merges] == [(b.vocab[x], b.vocab[y]) for x, y in b.merges]


def test_refuses_a_non_empty_out_folder_unless_overwrite(text_file: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("do not lose me", encoding="utf-8")
    args = ["train-tokenizer", "--text", str(text_file), "--vocab_size", "280", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "mine" in err and "--overwrite" in err and "--resume" not in err and "Traceback" not in err
    assert (out / "notes.txt").read_text(encoding="utf-8") == "do not lose me"
    assert main([*args, "--overwrite"]) == 0
    assert not (out / "notes.txt").exists()
    assert isinstance(BPETokenizer.load(out), BPETokenizer)


@pytest.mark.parametrize(
    ("setup", "vocab", "expected"),
    [
        ("missing", "300", "file not found"),
        ("empty", "300", "is empty"),
        ("latin1", "300", "offset 9"),
        ("ok", "256", "at least 257"),
        ("ok", "12", "at least 257"),
    ],
)
def test_bad_input_is_one_clear_line(setup: str, vocab: str, expected: str, text_file: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = {"missing": tmp_path / "nope.txt", "empty": tmp_path / "empty.txt",
            "latin1": tmp_path / "latin1.txt", "ok": text_file}[setup]
    if setup == "empty":
        path.write_text("", encoding="utf-8")
    if setup == "latin1":
        path.write_bytes("hello caf\xe9".encode("latin-1"))
    out = tmp_path / "out"
    assert main(["train-tokenizer", "--text", str(path), "--vocab_size", vocab, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    if setup != "ok":
        assert path.name in err
    assert not out.exists() or not any(out.iterdir())


def test_real_command_line_prints_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"abc\xff\xfe")
    proc = subprocess.run(
        [sys.executable, "-m", "course_lib", "train-tokenizer", "--text", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "bad.txt" in proc.stderr and "offset 3" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_required_flags_exit_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train-tokenizer", "--vocab_size", "300"])
    assert info.value.code == 2
    assert "--text" in capsys.readouterr().err
