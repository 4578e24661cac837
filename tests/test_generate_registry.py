"""The one table of decoding strategies (`course_lib.generate.STRATEGIES`): each entry runs its function
with its settings, the docs print the table from it, and bad names and options are one line.

Adding a strategy: its function and entry in course_lib/generate/registry.py, and its row in
`EXPECTED` below (what its entry must run, written without the registry).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from course_lib.errors import CourseInputError
from course_lib.generate import (
    STRATEGIES,
    DecodingSettings,
    TextStreamer,
    contrastive_search,
    diverse_beam_search,
    generate,
    strategy,
)
from course_lib.generate.registry import markdown_table
from course_lib.model import GPT, GPTConfig

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {  # name -> what the entry must give for (model, ids, n, mask, eos), with its documented defaults
    "greedy": lambda m, ids, n, mask, eos: generate(m, ids, n, attention_mask=mask, eos_token_id=eos),
    "sample": lambda m, ids, n, mask, eos: generate(m, ids, n, attention_mask=mask, eos_token_id=eos,
                                                    do_sample=True, seed=1),
    "top_k": lambda m, ids, n, mask, eos: generate(m, ids, n, attention_mask=mask, eos_token_id=eos,
                                                   do_sample=True, top_k=50, seed=1),
    "top_p": lambda m, ids, n, mask, eos: generate(m, ids, n, attention_mask=mask, eos_token_id=eos,
                                                   do_sample=True, top_p=0.9, seed=1),
    "min_p": lambda m, ids, n, mask, eos: generate(m, ids, n, attention_mask=mask, eos_token_id=eos,
                                                   do_sample=True, min_p=0.05, seed=1),
    "typical": lambda m, ids, n, mask, eos: generate(m, ids, n, attention_mask=mask, eos_token_id=eos,
                                                     do_sample=True, typical_p=0.9, seed=1),
    "beam": lambda m, ids, n, mask, eos: generate(m, ids, n, attention_mask=mask, eos_token_id=eos, num_beams=4),
    "diverse_beam": lambda m, ids, n, mask, eos: diverse_beam_search(
        m, ids, n, attention_mask=mask, eos_token_id=eos, num_beams=4, num_beam_groups=2,
        diversity_penalty=1.0).sequences,
    "contrastive": lambda m, ids, n, mask, eos: contrastive_search(m, ids, n, attention_mask=mask, eos_token_id=eos,
                                                                   penalty_alpha=0.6, top_k=4),
}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=53, n_positions=48, n_embd=16, n_layer=1, n_head=2)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" not in name:
                p.normal_(0, 0.3)
    ids = torch.tensor([[0, 0, 5, 9, 2], [7, 1, 4, 4, 8]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    return model, ids, mask


def test_every_strategy_has_its_test_and_valid_fields() -> None:
    assert set(STRATEGIES) == set(EXPECTED), "each strategy needs its row in EXPECTED"
    fields = {f.name for f in dataclasses.fields(DecodingSettings)}
    for s in STRATEGIES.values():
        assert set(s.defaults) <= fields and set(s.reads) <= fields and set(s.knobs) <= set(s.reads), s.name
        assert set(s.defaults) - {"do_sample"} <= set(s.reads), s.name
        assert s.summary and s.name == strategy(s.name).name


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_entry_runs_its_function_with_its_defaults(tiny, name: str) -> None:
    model, ids, mask = tiny
    s = STRATEGIES[name]
    got = s.run(model, ids, 6, s.settings(), attention_mask=mask, eos_token_id=3, seed=1)
    assert torch.equal(got, EXPECTED[name](model, ids, 6, mask, 3))


def test_the_docs_print_the_table_from_the_registry() -> None:
    import subprocess
    import sys

    table = subprocess.run([sys.executable, "-m", "course_lib.generate"], capture_output=True, text=True,
                           check=True, cwd=ROOT).stdout
    assert table.strip() == markdown_table()
    for s in STRATEGIES.values():
        assert f"| `{s.name}` | {s.summary} |" in table
        for k in s.knobs:
            assert f"`{k}`" in table
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python -m course_lib.generate" in readme and "course_lib.generate.STRATEGIES" in readme


def test_bad_names_and_options_are_one_line(tiny) -> None:
    model, ids, mask = tiny
    with pytest.raises(CourseInputError, match="unknown strategy 'magic'; choose one of greedy, sample"):
        strategy("magic")
    with pytest.raises(CourseInputError, match="streamer does not work with the diverse_beam strategy"):
        STRATEGIES["diverse_beam"].run(model, ids, 3, STRATEGIES["diverse_beam"].settings(), attention_mask=mask,
                                       streamer=TextStreamer(None, on_text=lambda r, p: None))
