"""Notebook 10's online branch: pretrained GPT-2 "from the hub", with a local GPT-2-format stand-in.

The test suite is offline, so the notebook normally fine-tunes the demo model. Here a tiny random
GPT-2-format checkpoint is placed in a fresh Hugging Face cache under the name ``gpt2``: offline,
`pretrained.load_gpt2("gpt2")` finds it there, and the notebook takes the branch learners take
online (GPT-2's tokenizer, lr 3e-5, Tiny Shakespeare or the offline corpus), in fast mode.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from course_lib.notebook import execute

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "10_scaling_up.ipynb"


def _hub_cache_with_gpt2(cache: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from course_lib.tokenizer import gpt2_tokenizer

    revision = "0" * 40
    snap = cache / "models--gpt2" / "snapshots" / revision
    snap.mkdir(parents=True)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64)).save_pretrained(snap)
    gpt2_tokenizer().save(snap)
    (cache / "models--gpt2" / "refs").mkdir()
    (cache / "models--gpt2" / "refs" / "main").write_text(revision)


def _stream_text(nb) -> str:  # noqa: ANN001
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs if o.output_type == "stream")


@pytest.mark.notebook
def test_notebook_10_fine_tunes_gpt2_when_the_hub_has_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hf"
    _hub_cache_with_gpt2(cache)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    nb, _ = execute(NOTEBOOK, tmp_path, mode="fast", cell_timeout=300)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = _stream_text(nb)
    assert "GPT-2 'gpt2': 2M parameters, 2 layers x 2 heads, from " in text
    assert "demo model" not in text and "with GPT-2's tokenizer" in text
    assert "at a constant lr 3e-05" in text and "val loss: before" in text
