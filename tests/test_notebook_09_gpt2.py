"""Notebook 09's GPT-2 branch (what an online learner runs), offline: a small random
GPT-2-format checkpoint stands in for the hub's ``gpt2`` in a temporary Hugging Face cache.

`tests/test_notebooks.py` runs the notebook on the demo model (offline, no ``gpt2`` cached);
this runs it in capped mode with ``load_gpt2("gpt2")`` finding the stand-in, so the GPT-2
tokenizer (50,257 tokens, ``<|endoftext|>`` as padding), the CPU settings (LoRA only, full
fine-tuning's memory measured) and the peft comparison on a GPT-2 export all run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from course_lib.model import GPT, GPTConfig
from course_lib.notebook import execute

ROOT = Path(__file__).resolve().parent.parent
REVISION = "0" * 40


def _stand_in_hub(home: Path) -> None:
    """A Hugging Face cache holding a tiny random model as ``gpt2`` (weights only: the
    course then uses GPT-2's own tokenizer, which ships with it)."""
    repo = home / "hub" / "models--gpt2"
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    torch.manual_seed(0)
    GPT(GPTConfig(vocab_size=50257, n_positions=128, n_embd=32, n_layer=1, n_head=2)).save_pretrained(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION, encoding="utf-8")


@pytest.mark.notebook
def test_notebook_09_runs_its_gpt2_branch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _stand_in_hub(tmp_path / "hf")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    work = tmp_path / "work"
    work.mkdir()
    nb, _ = execute(ROOT / "notebooks" / "09_fine_tuning.ipynb", work, mode="capped", cell_timeout=600)
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.output_type == "stream")
    assert "GPT-2 on cpu" in text or "GPT-2 on cuda" in text, text[:2000]
    assert "demo model:" not in text  # the stand-in was found: no fallback
    assert "outputs and merged weights equal peft's ✓" in text
    assert "✗" not in text
