"""course_lib.io: UTF-8 reading, output folders that are never silently overwritten, atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from course_lib.errors import CourseInputError
from course_lib.io import (
    atomic_dir,
    current_umask,
    prepare_output_dir,
    read_text,
    usual_permissions,
)


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


@pytest.fixture(params=[0o022, 0o027])
def umask(request: pytest.FixtureRequest) -> int:
    """Run the test under a given umask (restored afterwards)."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


posix_only = pytest.mark.skipif(os.name == "nt", reason="Windows has no POSIX permission bits")


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@posix_only
def test_atomic_dir_output_has_the_users_usual_permissions(tmp_path: Path, umask: int) -> None:
    from safetensors.torch import save_file

    assert current_umask() == umask
    final = tmp_path / "model"
    with atomic_dir(final) as d:
        (d / "sub").mkdir()
        (d / "sub" / "a.txt").write_text("1", encoding="utf-8")
        save_file({"w": torch.zeros(2)}, d / "model.safetensors")  # safetensors writes 0o600 itself
    assert _mode(final) == _mode(final / "sub") == 0o777 & ~umask  # not mkdtemp's 0o700
    assert _mode(final / "model.safetensors") == _mode(final / "sub" / "a.txt") == 0o666 & ~umask


@posix_only
def test_every_writer_of_outputs_respects_the_umask(tmp_path: Path, umask: int) -> None:
    from course_lib import data, lora
    from course_lib.io import write_atomic
    from course_lib.model import GPT, GPTConfig
    from course_lib.tokenizer import BPETokenizer

    files = tmp_path / "files"
    write_atomic(files / "corpus.txt", b"text")  # data's download cache and cli.expand's outputs
    write_atomic(files / "lines.txt", lambda f: f.write(b"a\nb\n"))  # encode_corpus' .npy
    model = GPT(GPTConfig(vocab_size=16, n_positions=8, n_embd=8, n_layer=1, n_head=1))
    model.save_pretrained(tmp_path / "gpt")
    lora.apply_lora(model, r=2)
    lora.save_lora(model, tmp_path / "lora")
    data.encode_corpus("some text", BPETokenizer.train("some text", 258), cache_dir=tmp_path / "enc", verbose=False)
    cached = list((tmp_path / "enc").glob("tokens-*.npy"))
    assert len(cached) == 1
    for p in [*cached, files / "corpus.txt", files / "lines.txt", tmp_path / "gpt" / "model.safetensors",
              tmp_path / "gpt" / "config.json", tmp_path / "lora" / lora.ADAPTER_WEIGHTS]:
        assert _mode(p) == 0o666 & ~umask, p


@posix_only
def test_usual_permissions_keeps_the_executable_bit(tmp_path: Path, umask: int) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    os.chmod(script, 0o700)
    usual_permissions(script)
    assert _mode(script) == 0o777 & ~umask
