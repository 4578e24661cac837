"""`course expand`: exact target, byte-identical per seed, honest report, no leakage, clear errors."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from course_lib.cli import main

TRAIN_TXT = Path(__file__).resolve().parent.parent / "data" / "train.txt"


def expand(*args: str) -> int:
    return main(["expand", *args])


def _report_counts(out: str) -> tuple[int, int, int, int]:
    m = re.search(r"([\d,]+) lines = ([\d,]+) originals \+ ([\d,]+) new \+ ([\d,]+) exact repeats", out)
    assert m, out
    return tuple(int(g.replace(",", "")) for g in m.groups())  # type: ignore[return-value]


def test_same_seed_same_bytes_exact_target_and_counts_add_up(tmp_path: Path, capsys) -> None:
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    assert expand("--in_txt", str(TRAIN_TXT), "--out_txt", str(a), "--target", "1500", "--seed", "7") == 0
    total, orig, new, rep = _report_counts(capsys.readouterr().out)
    assert expand("--in-txt", str(TRAIN_TXT), "--out-txt", str(b), "--target", "1500", "--seed", "7") == 0
    capsys.readouterr()
    assert a.read_bytes() == b.read_bytes()
    lines = a.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == 1500  # exactly target lines, each ending in \n
    assert total == 1500 and orig + new + rep == 1500
    src = [ln for ln in TRAIN_TXT.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert orig == len(src)
    counts = Counter(lines[:-1])
    assert len(counts) == orig + new and sum(v - 1 for v in counts.values()) == rep
    assert expand("--in_txt", str(TRAIN_TXT), "--out_txt", str(c), "--target", "1500", "--seed", "8") == 0
    assert c.read_bytes() != a.read_bytes()


def test_validation_split_happens_before_expansion(tmp_path: Path, capsys) -> None:
    out, val = tmp_path / "train_aug.txt", tmp_path / "val.txt"
    assert expand("--in_txt", str(TRAIN_TXT), "--out_txt", str(out), "--target", "2000", "--seed", "3",
                  "--val_fraction", "0.1", "--val_txt", str(val)) == 0
    printed = capsys.readouterr().out
    src = [ln for ln in TRAIN_TXT.read_text(encoding="utf-8").splitlines() if ln.strip()]
    train_lines = out.read_text(encoding="utf-8").splitlines()
    val_lines = val.read_text(encoding="utf-8").splitlines()
    assert len(train_lines) == 2000 and 25 <= len(val_lines) <= 35
    assert set(val_lines) <= set(src)  # validation lines are written untouched
    assert not set(val_lines) & set(train_lines)  # and none reaches training
    # no augmented copy either: no training line shares a clause-sized run of 6 words with a val line
    def grams(line: str) -> set[tuple[str, ...]]:
        w = line.split()
        return {tuple(w[i:i + 6]) for i in range(len(w) - 5)}
    val_grams = set().union(*(grams(v) for v in val_lines))
    assert not any(grams(t) & val_grams for t in train_lines)
    assert "validation lines found in training: 0" in printed


def test_default_val_file_name(tmp_path: Path, capsys) -> None:
    out = tmp_path / "aug.txt"
    assert expand("--in_txt", str(TRAIN_TXT), "--out_txt", str(out), "--target", "400",
                  "--val_fraction", "0.2") == 0
    assert (tmp_path / "aug_val.txt").is_file()


def test_refuses_to_overwrite_unless_asked(tmp_path: Path, capsys) -> None:
    out = tmp_path / "mine.txt"
    out.write_text("my precious work\n", encoding="utf-8")
    assert expand("--in_txt", str(TRAIN_TXT), "--out_txt", str(out), "--target", "400") == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err
    assert out.read_text(encoding="utf-8") == "my precious work\n"
    assert expand("--in_txt", str(TRAIN_TXT), "--out_txt", str(out), "--target", "400", "--overwrite") == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 400


@pytest.mark.parametrize(
    ("content", "target", "message"),
    [
        (None, "10", "file not found"),
        (b"", "10", "is empty"),
        (b"\n  \n\n", "10", "is empty"),
        (b"good line\nbad \xff byte\n", "10", "not valid UTF-8 (first bad byte at offset 14"),
        (b"one\ntwo\nthree\n", "2", "--target 2 is smaller than the 3 lines"),
        (b"one\ntwo\nthree\n", "0", "--target"),
        (b"one\ntwo\nthree\n", "10000001", "--target 10,000,001 is more lines than course expand makes: at most"),
        (b"one\ntwo\nthree\n", str(10**15), "at most 10,000,000"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, capsys, content, target, message) -> None:
    src = tmp_path / "in.txt"
    if content is not None:
        src.write_bytes(content)
    out = tmp_path / "out.txt"
    assert expand("--in_txt", str(src), "--out_txt", str(out), "--target", target) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("course expand: error:") and message in err
    assert "in.txt" in err or "--target" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_other_bad_flags(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.txt"
    assert expand("--in_txt", str(TRAIN_TXT), "--out_txt", str(out), "--target", "400", "--val_fraction", "1.5") == 2
    assert "--val_fraction" in capsys.readouterr().err
    assert expand("--in_txt", str(TRAIN_TXT), "--out_txt", str(out), "--target", "400", "--val_txt", "v.txt") == 2
    assert "--val_txt needs --val_fraction" in capsys.readouterr().err
    assert expand("--in_txt", str(TRAIN_TXT), "--out_txt", str(TRAIN_TXT), "--target", "400", "--overwrite") == 2
    assert "is the input file" in capsys.readouterr().err


def test_command_line_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\u00e9 au lait\n".encode("latin-1"))
    r = subprocess.run(
        [sys.executable, "-m", "course_lib", "expand", "--in_txt", str(bad), "--out_txt",
         str(tmp_path / "o.txt"), "--target", "5"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "not valid UTF-8" in r.stderr and "offset 3" in r.stderr


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("content", "target"),
    [
        ("hello world\nfoo bar\n", 100),  # issue 14's command: it never returned
        ("".join(f"the cat sat on the mat number {i % 3}\n" for i in range(50)), 500),
    ],
)
def test_no_variety_fills_the_target_with_repeats_and_says_so(tmp_path: Path, capsys, content, target) -> None:
    src, out = tmp_path / "t.txt", tmp_path / "o.txt"
    src.write_text(content, encoding="utf-8")
    assert expand("--in_txt", str(src), "--out_txt", str(out), "--target", str(target), "--seed", "7") == 0
    printed = capsys.readouterr().out
    total, orig, new, rep = _report_counts(printed)
    assert (total, new, rep) == (target, 0, target - orig)
    assert "no operation could make a new line after" in printed and "exact repeats" in printed
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == target and set(lines) == set(content.splitlines())
