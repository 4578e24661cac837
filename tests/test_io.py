"""course_lib.io: UTF-8 reading, output folders that are never silently overwritten, atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_lib.errors import CourseInputError
from course_lib.io import atomic_dir, prepare_output_dir, read_text


def test_read_text_names_the_file_and_the_bad_byte(tmp_path: Path) -> None:
    p = tmp_path / "latin1.txt"
    p.write_bytes(b"caf" + "é".encode("latin-1") + b" au lait")
    with pytest.raises(CourseInputError, match=r"--text: .*latin1.txt is not valid UTF-8 \(first bad byte at offset 3"):
        read_text(p, flag="--text")


def test_read_text_missing_empty_and_folder(tmp_path: Path) -> None:
    with pytest.raises(CourseInputError, match="file not found"):
        read_text(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(CourseInputError, match="is empty"):
        read_text(tmp_path / "empty.txt")
    with pytest.raises(CourseInputError, match="is a folder"):
        read_text(tmp_path)


def test_read_text_strips_a_bom(tmp_path: Path) -> None:
    p = tmp_path / "bom.txt"
    p.write_bytes(b"\xef\xbb\xbfhello")
    assert read_text(p) == "hello"


def test_prepare_output_dir_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(CourseInputError, match="already exists and is not empty; nothing was changed"):
        prepare_output_dir(out)
    assert (out / "keep.txt").read_text(encoding="utf-8") == "mine"
    assert prepare_output_dir(out, resume=True) == out and (out / "keep.txt").exists()
    prepare_output_dir(out, overwrite=True)
    assert out.is_dir() and not any(out.iterdir())


def test_atomic_dir_replaces_only_when_complete(tmp_path: Path) -> None:
    final = tmp_path / "ckpt"
    with atomic_dir(final) as d:
        (d / "a.txt").write_text("1", encoding="utf-8")
    assert (final / "a.txt").read_text(encoding="utf-8") == "1"
    with pytest.raises(RuntimeError), atomic_dir(final) as d:
        (d / "a.txt").write_text("2", encoding="utf-8")
        raise RuntimeError("interrupted")
    assert (final / "a.txt").read_text(encoding="utf-8") == "1"  # the old one survives
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary left behind
