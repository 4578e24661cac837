"""course_lib.pretrained: GPT-2 from the hub (a local GPT-2-format folder stands in) and the offline
fallback line to the course's shipped model (tests/test_course_model.py tests that model itself)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from course_lib import pretrained
from course_lib.errors import CourseInputError
from course_lib.model import GPT
from course_lib.tokenizer import gpt2_tokenizer


def save_gpt2_format(d: Path) -> Path:
    """A tiny random GPT2LMHeadModel and GPT-2's tokenizer, saved as the hub stores them."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64))
    hf.save_pretrained(d)
    gpt2_tokenizer().save(d)
    assert (d / "model.safetensors").is_file() and (d / "vocab.json").is_file()
    return d


@pytest.fixture(scope="module")
def hub_standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_gpt2_format(tmp_path_factory.mktemp("hub") / "gpt2")


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")


def assert_same_logits(model: GPT, hf_dir: Path) -> None:
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(hf_dir).eval()
    ids = torch.tensor([gpt2_tokenizer().encode("I enjoy walking with my cute dog")])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, hf(ids).logits, rtol=1e-5, atol=1e-5)


def test_a_hub_name_is_downloaded_and_matches_transformers(hub_standin: Path, online, monkeypatch, capsys) -> None:
    calls = []

    def fake_download(repo_id: str, local_only: bool) -> Path:
        calls.append((repo_id, local_only))
        return hub_standin

    monkeypatch.setattr(pretrained, "_download", fake_download)
    model, tok = pretrained.load_gpt2("gpt2-medium")
    assert calls == [("gpt2-medium", False)], "online, the hub is asked (not only the cache)"
    assert not pretrained.is_course_model(model) and pretrained.prompt_for(model) == pretrained.GPT2_PROMPT
    assert isinstance(model, GPT) and not model.training
    assert_same_logits(model, hub_standin)
    text = "Hello, world! GPT-2's tokenizer."
    assert tok.encode(text) == gpt2_tokenizer().encode(text)
    out = capsys.readouterr().out
    assert "gpt2-medium" in out and "2 layers x 2 heads" in out


def test_the_real_download_function_reads_the_huggingface_cache(hub_standin: Path, monkeypatch, tmp_path) -> None:
    """Offline, `_download` looks only at the cache: a stand-in snapshot placed there is found."""
    cache = tmp_path / "hf"
    snap = cache / "models--someone--gpt2-tiny" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    for f in hub_standin.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    (cache / "models--someone--gpt2-tiny" / "refs").mkdir()
    (cache / "models--someone--gpt2-tiny" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    model, _ = pretrained.load_gpt2("someone/gpt2-tiny", fallback=False, verbose=False)
    assert_same_logits(model, hub_standin)


def test_a_local_folder_wins_over_the_hub_name(hub_standin: Path, online, monkeypatch, tmp_path) -> None:
    def no_hub(repo_id: str, local_only: bool) -> Path:
        raise AssertionError("the hub was asked although a local folder exists")

    monkeypatch.setattr(pretrained, "_download", no_hub)
    save_gpt2_format(tmp_path / "gpt2")
    monkeypatch.chdir(tmp_path)
    model, _ = pretrained.load_gpt2("gpt2", verbose=False)
    assert_same_logits(model, tmp_path / "gpt2")


def test_offline_falls_back_to_the_course_model_with_one_line(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty_hf_cache"))
    model, tok = pretrained.load_gpt2("gpt2", verbose=False)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    assert "GPT-2 'gpt2' could not be downloaded: offline mode" in lines[0]
    assert "own pretrained model instead" in lines[0] and "Traceback" not in lines[0]
    assert pretrained.is_course_model(model) and model.source == "course:shakespeare-gpt2"
    assert pretrained.prompt_for(model) == "ROMEO:"
    with pytest.raises(pretrained.HubUnavailableError, match="offline mode"):
        pretrained.load_gpt2("gpt2", fallback=False)


def test_an_unreachable_hub_falls_back_and_an_unknown_name_is_an_error(online, monkeypatch, capsys) -> None:
    def unreachable(repo_id: str, local_only: bool) -> Path:
        raise ConnectionError("no route to host")

    monkeypatch.setattr(pretrained, "_download", unreachable)
    model, _ = pretrained.load_gpt2("gpt2", verbose=False)
    line = capsys.readouterr().out.strip()
    assert pretrained.is_course_model(model)
    assert line.count("\n") == 0 and "(ConnectionError)" in line and "own pretrained model" in line

    class RepositoryNotFoundError(Exception):
        pass

    def missing(repo_id: str, local_only: bool) -> Path:
        raise RepositoryNotFoundError(repo_id)

    monkeypatch.setattr(pretrained, "_download", missing)
    with pytest.raises(CourseInputError, match="'gpt3-huge': the Hugging Face hub has no such model"):
        pretrained.load_gpt2("gpt3-huge")
    with pytest.raises(CourseInputError, match="neither a folder nor a Hugging Face hub name"):
        pretrained.hub_folder("../not a name")
