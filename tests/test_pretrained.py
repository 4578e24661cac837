"""course_lib.pretrained: GPT-2 from the hub (a local GPT-2-format folder stands in), the offline
fallback line, and the demo model (trained once, cached, reused, deterministic)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from course_lib import data, pretrained
from course_lib.errors import CourseInputError
from course_lib.model import GPT
from course_lib.tokenizer import gpt2_tokenizer

TINY = pretrained.DemoSpec(vocab_size=300, n_layer=1, n_head=2, n_embd=32, seq_len=32, batch_size=4,
                           steps=8, max_chars=30_000)


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


@pytest.fixture
def tiny_demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The demo model at TINY size, cached in a fresh data folder."""
    monkeypatch.setattr(pretrained, "DEMO", TINY)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


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
    assert not pretrained.is_demo(model) and pretrained.prompt_for(model) == pretrained.GPT2_PROMPT
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


def test_offline_falls_back_to_the_demo_model_with_one_line(tiny_demo, monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty_hf_cache"))
    model, tok = pretrained.load_gpt2("gpt2", verbose=False)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    assert "GPT-2 'gpt2' could not be downloaded: offline mode" in lines[0]
    assert "demo model instead" in lines[0] and "Traceback" not in lines[0]
    assert pretrained.is_demo(model) and model.config.n_layer == TINY.n_layer
    assert pretrained.prompt_for(model) == "The import statement"
    with pytest.raises(pretrained.HubUnavailableError, match="offline mode"):
        pretrained.load_gpt2("gpt2", fallback=False)


def test_an_unreachable_hub_falls_back_and_an_unknown_name_is_an_error(tiny_demo, online, monkeypatch, capsys) -> None:
    def unreachable(repo_id: str, local_only: bool) -> Path:
        raise ConnectionError("no route to host")

    monkeypatch.setattr(pretrained, "_download", unreachable)
    model, _ = pretrained.load_gpt2("gpt2", verbose=False)
    line = capsys.readouterr().out.strip()
    assert pretrained.is_demo(model)
    assert line.count("\n") == 0 and "(ConnectionError)" in line and "demo model" in line

    class RepositoryNotFoundError(Exception):
        pass

    def missing(repo_id: str, local_only: bool) -> Path:
        raise RepositoryNotFoundError(repo_id)

    monkeypatch.setattr(pretrained, "_download", missing)
    with pytest.raises(CourseInputError, match="'gpt3-huge': the Hugging Face hub has no such model"):
        pretrained.load_gpt2("gpt3-huge")
    with pytest.raises(CourseInputError, match="neither a folder nor a Hugging Face hub name"):
        pretrained.hub_folder("../not a name")


def test_the_demo_model_is_trained_once_cached_and_reused(tiny_demo: Path, monkeypatch, capsys) -> None:
    d = pretrained.demo_dir()
    assert d.parent == tiny_demo / "demo_model" and d.name.startswith("offline-")
    info = json.loads((d / "demo.json").read_text(encoding="utf-8"))
    assert info["corpus"] == "offline" and info["prompt"] == pretrained.demo_prompt() == "The import statement"
    assert info["vocab_size"] == 300 and info["val_loss"] > 0 and info["train_seconds"] > 0
    assert "trained in" in capsys.readouterr().out
    assert not [p.name for p in d.parent.iterdir() if p != d], "no temporary folders are left behind"

    def no_training(*args, **kwargs):
        raise AssertionError("the cached demo model was trained again")

    monkeypatch.setattr(pretrained, "_train_demo", no_training)
    model, tok = pretrained.load_demo_model()
    assert "trained in" not in capsys.readouterr().out
    ids = tok.encode(pretrained.demo_prompt())
    assert 0 < len(ids) < len(pretrained.demo_prompt()), "BPE: fewer tokens than characters"
    hf = model.to_hf().eval()
    x = torch.tensor([ids])
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, hf(x).logits, rtol=1e-5, atol=1e-5)


def test_two_processes_training_at_once_leave_one_complete_copy(tiny_demo: Path, monkeypatch) -> None:
    """While we train, another process finishes first: its copy is kept, ours is discarded."""
    real = pretrained._train_demo
    other: list[Path] = []

    def train_while_another_finishes(spec, corpus, text, out, verbose):
        info = real(spec, corpus, text, out, verbose)
        final = tiny_demo / "demo_model" / f"{corpus}-{spec.key(text)}"
        final.mkdir(parents=True)
        (final / "demo.json").write_text(json.dumps({**info, "by": "the other process"}), encoding="utf-8")
        other.append(final)
        return info

    monkeypatch.setattr(pretrained, "_train_demo", train_while_another_finishes)
    d = pretrained.demo_dir(verbose=False)
    assert [d] == other
    assert json.loads((d / "demo.json").read_text(encoding="utf-8"))["by"] == "the other process"
    assert [p.name for p in d.parent.iterdir()] == [d.name], "the second copy was removed"


@pytest.mark.parametrize("spec", [TINY, pretrained.DemoSpec(vocab_size=280, n_layer=2, n_head=2, n_embd=16,
                                                           seq_len=16, batch_size=2, steps=5, max_chars=10_000)],
                         ids=["tiny", "tinier"])
def test_the_demo_model_is_deterministic(spec: pretrained.DemoSpec, monkeypatch, tmp_path: Path) -> None:
    weights = []
    for run in ("a", "b"):
        monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / run))
        d = pretrained.demo_dir(spec, verbose=False)
        weights.append(GPT.from_pretrained(d).state_dict())
        assert (d / "vocab.json").read_bytes() == (tmp_path / "a" / "demo_model" / d.name / "vocab.json").read_bytes()
    assert weights[0].keys() == weights[1].keys()
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k
    assert weights[0]["transformer.h.0.attn.c_attn.weight"].shape == (3 * spec.n_embd, spec.n_embd)


def test_the_demo_corpus_and_prompt_match(monkeypatch) -> None:
    # a machine without Tiny Shakespeare (whatever this one has cached)
    monkeypatch.setattr(data.corpora, "_find_shakespeare", lambda allow_download: (None, "not cached (test)"))
    name, text = pretrained.demo_corpus()
    lines = text.splitlines()
    assert name == "offline" and "\n\n" not in text and "  " not in text
    assert sum(map(len, lines)) / len(lines) > 200, "one paragraph per line, not the 70-character wraps"
    assert "import statement" in text
    monkeypatch.setattr(data.corpora, "_find_shakespeare",
                        lambda allow_download: ("ROMEO:\nO, she doth teach.\n", "test"))
    assert pretrained.demo_corpus() == ("shakespeare", "ROMEO:\nO, she doth teach.\n")
    assert pretrained.demo_prompt() == "ROMEO:"
    with pytest.raises(CourseInputError, match="not one of"):
        pretrained.demo_prompt("klingon")
